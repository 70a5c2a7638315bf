"""The playground's server: routing, limits and security headers only.

Every view is a function in ``views.py`` (or ``train.py``) that calls chainrule's public API;
this module checks the request (Host, size, fields), runs the view in a worker process under the
time budget and answers JSON. Errors are one line, ``{"error": "..."}``, shown as such by the page.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainrule.web import limits
from chainrule.web.limits import InputError
from chainrule.web.practice import MAX_INDEX as PRACTICE_MAX
from chainrule.web.practice import RULES as PRACTICE_RULES
from chainrule.web.train import StreamsBusy, Trainer, config_from
from chainrule.web.worker import BudgetExceeded, WorkerFailed, WorkerPool

STATIC = resources.files("chainrule.web") / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LANGS = ("en", "zh")


def _nothing() -> None:
    return None


class Guard:
    """ASGI middleware: refuse a foreign Host (DNS rebinding) or an oversized body; add the
    security headers to every response. ``on_exit`` is for the server's Ctrl+C handler: what
    must end before the server can shut down (the training streams)."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str], on_exit: Callable[[], None] = _nothing
    ) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}
        self.on_exit = on_exit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        host = headers.get("host", "").lower()
        if host not in self.allowed:
            refused = PlainTextResponse(f"unknown Host header {host[:60]!r}", status_code=400)
            await refused(scope, receive, send_secured)
            return
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > limits.MAX_BODY_BYTES:
            reply = _error(f"request over the {limits.MAX_BODY_BYTES} byte limit", 413)
            await reply(scope, receive, send_secured)
            return
        await self.app(scope, _capped(receive), send_secured)


def _capped(receive: Receive) -> Receive:
    """A body sent without Content-Length is cut off at the limit too."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limits.MAX_BODY_BYTES:
            raise InputError(f"request over the {limits.MAX_BODY_BYTES} byte limit")
        return message

    return wrapped


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"cache-control": "no-store"}
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request must be a JSON object")
    return body


Handler = Callable[[Request, dict[str, Any]], Awaitable[Any]]


def _api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """JSON in, JSON out; every failure becomes one line with a fitting status."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await _json_body(request) if request.method == "POST" else {}
            result = await handler(request, body)
        except BudgetExceeded as exc:
            return _error(str(exc), 503)
        except WorkerFailed as exc:
            return _error(str(exc), 500)
        except ValueError as exc:  # InputError, ParseError and the library's own ValueErrors
            return _error(str(exc).splitlines()[0] if str(exc) else "bad input", 400)
        return JSONResponse(result, headers={"cache-control": "no-store"})

    return endpoint


def _pool(request: Request) -> WorkerPool:
    pool: WorkerPool = request.app.state.pool
    return pool


async def derive(request: Request, body: dict[str, Any]) -> Any:
    return await _pool(request).call(
        "derive",
        expr=limits.text(body, "expr"),
        wrt=limits.name(body, "wrt", default="x"),
        lang=limits.choice(body, "lang", LANGS),
    )


async def point(request: Request, body: dict[str, Any]) -> Any:
    return await _pool(request).call(
        "point",
        expr=limits.text(body, "expr"),
        wrt=limits.name(body, "wrt", default="x"),
        x=limits.number(body, "x", bound=1e6),
        lang=limits.choice(body, "lang", LANGS),
    )


async def graph(request: Request, body: dict[str, Any]) -> Any:
    at = body.get("at")
    if not isinstance(at, dict) or not at or len(at) > 32:
        raise InputError('at: give a value for every input, e.g. {"x": 1}')
    for k in at:
        if not (isinstance(k, str) and k.isidentifier() and len(k) <= limits.MAX_NAME_CHARS):
            raise InputError(f"at: {str(k)[:20]!r} is not a variable name")
    values = {k: limits.number(at, k, bound=100.0) for k in at}
    return await _pool(request).call("graph", program=limits.text(body, "program"), at=values)


async def check(request: Request, body: dict[str, Any]) -> Any:
    return await _pool(request).call(
        "check",
        expr=limits.text(body, "expr"),
        wrt=limits.name(body, "wrt", default="x"),
        answer=limits.text(body, "answer"),
        lang=limits.choice(body, "lang", LANGS),
    )


async def practice(request: Request, body: dict[str, Any]) -> Any:
    return await _pool(request).call(
        "practice",
        rule=limits.choice(body, "rule", PRACTICE_RULES),
        difficulty=int(limits.number(body, "difficulty", default=1, bound=3)),
        index=int(limits.number(body, "index", default=0, bound=PRACTICE_MAX)),
        lang=limits.choice(body, "lang", LANGS),
    )


def _trainer(request: Request) -> Trainer:
    trainer: Trainer = request.app.state.trainer
    return trainer


async def train_start(request: Request, body: dict[str, Any]) -> Any:
    return {"id": _trainer(request).start(config_from(body))}


async def train_poll(request: Request, body: dict[str, Any]) -> Any:
    since = _count(request.query_params.get("since", "0"), "since")
    return _trainer(request).poll(request.path_params["job"], since)


async def train_events(request: Request) -> Response:
    """The run streamed as Server-Sent Events (the page's EventSource); a reconnecting
    EventSource sends Last-Event-ID, the number of epochs it has, and gets the rest."""
    trainer = _trainer(request)
    try:
        since = max(
            _count(request.query_params.get("since", "0"), "since"),
            _count(request.headers.get("last-event-id", "0") or "0", "Last-Event-ID"),
        )
        job = trainer.open_stream(request.path_params["job"])
    except StreamsBusy as exc:
        return _error(str(exc), 503)
    except ValueError as exc:
        return _error(str(exc), 400)
    return StreamingResponse(
        trainer.events(job, since),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _count(value: str, field: str) -> int:
    if not value.isdigit() or len(value) > 6:
        raise InputError(f"{field}: expected a count, got {value[:12]!r}")
    return int(value)


async def train_action(request: Request, body: dict[str, Any]) -> Any:
    action = request.path_params["action"]
    if action not in ("pause", "resume", "stop"):
        raise InputError(f"unknown training action {action[:12]!r}")
    return getattr(_trainer(request), action)(request.path_params["job"])


async def examples(request: Request, body: dict[str, Any]) -> Any:
    from chainrule.web.views import EXAMPLES

    return EXAMPLES


async def index(request: Request) -> Response:
    return FileResponse(str(STATIC / "index.html"), headers={"cache-control": "no-store"})


def create_app(
    allowed_hosts: Iterable[str], *, workers: int = 2, budget: float = limits.TIME_BUDGET_S
) -> Guard:
    """The playground as an ASGI app that answers only to ``allowed_hosts`` ("127.0.0.1:8000");
    a server calls its ``on_exit()`` when asked to stop (``chainrule serve`` on Ctrl+C)."""
    pool = WorkerPool(size=workers, budget=budget)
    trainer = Trainer()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.start()
        app.state.pool = pool
        app.state.trainer = trainer
        try:
            yield
        finally:
            trainer.stop_all()
            await pool.close()

    routes = [
        Route("/", index),
        Route("/api/examples", _api(examples)),
        Route("/api/derive", _api(derive), methods=["POST"]),
        Route("/api/point", _api(point), methods=["POST"]),
        Route("/api/graph", _api(graph), methods=["POST"]),
        Route("/api/check", _api(check), methods=["POST"]),
        Route("/api/practice", _api(practice), methods=["POST"]),
        Route("/api/train/start", _api(train_start), methods=["POST"]),
        Route("/api/train/{job}", _api(train_poll)),
        Route("/api/train/{job}/events", train_events),
        Route("/api/train/{job}/{action}", _api(train_action), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, allowed_hosts, on_exit=trainer.close_streams)


def hosts_for(host: str, port: int) -> set[str]:
    """The Host headers a browser sends for this server: loopback names for a loopback bind;
    for a wildcard bind (0.0.0.0, ::) also this machine's name and addresses."""
    names = {host}
    loopback = {"127.0.0.1", "localhost", "[::1]"}
    if host in ("127.0.0.1", "localhost", "::1"):
        names |= loopback
    elif host in ("0.0.0.0", "::", ""):
        names |= loopback | _machine_names()
    names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
    return {f"{n}:{port}" for n in names} | (names if port == 80 else set())


def _machine_names() -> set[str]:
    import socket

    names = {socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):  # a name that does not resolve: the names alone
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    return {n.lower() for n in names if n}
