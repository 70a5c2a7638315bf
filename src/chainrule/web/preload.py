"""Imported by the worker pool's forkserver only (``worker.py``), never by the server: loads
the views and runs each kind of interaction once, so every worker forked from it starts warm.
"""

from chainrule.web.views import warm

warm()
