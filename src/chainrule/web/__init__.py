"""``chainrule serve``: the playground, a local page that derives, draws, checks and trains.

Needs the ``web`` extra (Starlette and uvicorn): ``pip install 'chainrule[web]'``. Nothing here
is imported by ``import chainrule``; ``chainrule.web.app.create_app`` builds the ASGI app.
"""
