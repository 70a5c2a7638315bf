"""`chainrule serve`: the playground, a local page served on 127.0.0.1 (see `chainrule.web`).

Starlette and uvicorn come with the `web` extra and are imported inside `run`; without them the
command exits 2 with the line that installs them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import webbrowser
from typing import Any

HELP = "open the playground: derive, draw the graph, step through backprop, check answers, train"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else is reachable from other machines)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for derivations (default 2)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from chainrule.web.app import create_app, hosts_for
    except ImportError:
        print("chainrule serve: needs the web extra: pip install 'chainrule[web]'", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"chainrule serve: --port must be 1..65535, got {args.port}", file=sys.stderr)
        return 2
    if not 1 <= args.workers <= 16:
        print(f"chainrule serve: --workers must be 1..16, got {args.workers}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        print(
            f"chainrule serve: WARNING: binding {args.host}: anyone who can reach this machine "
            "on that address can use the playground",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    app = create_app(hosts_for(args.host, args.port), workers=args.workers)
    print(f"chainrule playground on {url}  (Ctrl+C to stop)", flush=True)
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # An open training stream (Server-Sent Events) would hold the shutdown until its
            # tab closes, then be cancelled with a traceback: the streams end first.
            app.on_exit()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2
    )
    with contextlib.suppress(KeyboardInterrupt):  # the Ctrl+C, raised again once it stopped
        Server(config).run()
    return 0
