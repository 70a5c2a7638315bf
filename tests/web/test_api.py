"""The playground's API through Starlette's test client: safety first, then each view's answers
against the library calls the CLI makes (so the page cannot disagree with them)."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
import sympy as sp

from chainrule.symbolic import explain
from chainrule.symbolic.functions import lambdify
from chainrule.symbolic.mathprint import TextMath
from chainrule.web import limits, mathml, views
from chainrule.web.app import CSP, hosts_for
from chainrule.web.views import EXAMPLES

# Over 30 s of SymPy on the development machine (the smaller quotient that stood here took
# 2.5 s once explain stopped factoring large answers, and slipped under the 3 s budget)
SLOW = "(x^2+3*x+1)^90/(x^3-2)^87 + (x+1)^99/(x-1)^95 + (x^5+1)^60/(2x-1)^70"


def tags(tree: Any) -> set[str]:
    if isinstance(tree, str):
        return set()
    tag, attrs, *children = tree
    assert all(not k.lower().startswith("on") and "href" not in k.lower() for k in attrs)
    return {tag}.union(*(tags(c) for c in children))


def texts(tree: Any) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    return [s for c in tree[2:] for s in texts(c)]


# ------------------------------------------------------------------------------------ safety


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/", None),
        ("GET", "/static/app.js", None),
        ("GET", "/api/examples", None),
        ("POST", "/api/derive", {"expr": "x^2"}),
        ("POST", "/api/derive", {"expr": "x^"}),  # an error answer has them too
        ("GET", "/no-such-page", None),
    ],
)
def test_every_response_carries_the_security_headers(client, method, path, body) -> None:
    r = client.request(method, path, json=body)
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1:8000", "localhost", "testserver.evil"])
def test_a_foreign_host_header_is_refused(client, host) -> None:
    """DNS rebinding: a page on another name that resolves here must get nothing."""
    r = client.get("/", headers={"host": host})
    assert r.status_code == 400
    assert "unknown Host header" in r.text
    assert r.headers["content-security-policy"] == CSP


def test_hosts_for_loopback_lists_the_names_a_browser_sends() -> None:
    assert hosts_for("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert hosts_for("10.1.2.3", 9000) == {"10.1.2.3:9000"}


def test_an_oversized_body_is_refused_before_it_is_read(client) -> None:
    big = json.dumps({"expr": "x" * (limits.MAX_BODY_BYTES + 1)})
    r = client.post("/api/derive", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": f"request over the {limits.MAX_BODY_BYTES} byte limit"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "the request is not valid JSON"),
        ("[1, 2]", "the request must be a JSON object"),
        (json.dumps({"expr": "x" * 301}), "expr: 301 characters is over the limit of 300"),
        (json.dumps({"expr": 42}), "expr: expected text, got int"),
        (json.dumps({"expr": "   "}), "expr: type something first"),
        (json.dumps({"expr": "x\u0000"}), "expr: control characters are not allowed"),
        (json.dumps({"expr": "x^2", "wrt": "x y"}), "wrt: 'x y' is not a variable name"),
        (json.dumps({"expr": "x^2", "lang": "fr"}), "lang: choose one of en, zh"),
        (json.dumps({"expr": "x^", "lang": "en"}), "found end of input at column 3"),
        # the library's own limits apply inside the worker, named in the line
        (
            json.dumps({"expr": "(" * 120 + "x" + ")" * 120}),
            "nested more than 100 deep (limit max_depth)",
        ),
        (json.dumps({"expr": "9^9^9*x"}), "(limit max_digits ="),
        (json.dumps({"expr": "x^2", "wrt": "Χ"}), "Greek"),
    ],
)
def test_bad_input_is_one_friendly_line(client, body, message) -> None:
    r = client.post("/api/derive", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert message in error
    assert "\n" not in error and "Traceback" not in error


def test_markup_typed_as_an_expression_is_an_error_not_markup(client) -> None:
    r = client.post("/api/derive", json={"expr": "<img src=x onerror=alert(1)>"})
    assert r.status_code == 400
    assert r.json() == {"error": "unexpected character '<' at column 1"}


def test_a_hostile_expression_is_cut_at_the_budget_and_others_are_served(client, budget) -> None:
    """One slow derivation holds one worker until the budget kills it; a second tab is served
    meanwhile by the other worker, and the killed worker is replaced."""
    answers: dict[str, Any] = {}

    def slow() -> None:
        t0 = time.monotonic()
        answers["slow"] = client.post("/api/derive", json={"expr": SLOW})
        answers["slow_s"] = time.monotonic() - t0

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    quick = client.post("/api/derive", json={"expr": "sin(x^2)"})
    quick_s = time.monotonic() - t0
    thread.join()
    assert quick.status_code == 200 and quick_s < budget
    assert answers["slow"].status_code == 503
    assert answers["slow"].json()["error"].startswith("this took longer than the 3 s budget")
    assert answers["slow_s"] < budget + 2
    for _ in range(3):  # the pool is whole again
        assert client.post("/api/derive", json={"expr": "x^3"}).status_code == 200


# ------------------------------------------------------------------------------------ derive

SEED_EXPRESSIONS = ["(x^2+1)^3", "sqrt(1+x^2)", "x^2*e^x", "1/(1+e^(-x))", "sin(x)/x", "ln(x)"]


@pytest.mark.parametrize("expr", SEED_EXPRESSIONS)
def test_derive_shows_what_explain_derives(client, expr) -> None:
    d = explain(expr)
    r = client.post("/api/derive", json={"expr": expr})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["result_text"] == TextMath().expr(d.result)
    keys: list[str] = []
    stack = list(reversed(data["steps"]))
    while stack:
        node = stack.pop()
        keys.append(node["key"])
        stack.extend(reversed(node["children"]))
    assert keys == [line.key for line in d.lines]  # every line, in order, nested by depth
    for node in data["steps"]:
        for seg in node["segments"]:
            if "math" in seg:
                assert tags(seg["math"]) <= mathml.MATHML_TAGS
    assert tags(data["result"]) <= mathml.MATHML_TAGS


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_derive_gives_the_seed_example_in_sigma(client, lang) -> None:
    """The playground's seed example ends as seed 000 writes σ', never 1/(4cosh²(x/2))."""
    r = client.post("/api/derive", json={"expr": "1/(1+exp(-x)) + k*x", "lang": lang})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["result_text"] == "k + σ(x)(1 − σ(x))"
    assert [node["key"] for node in data["steps"]][-2:] == ["sigmoid", "result"]
    assert "cosh" not in r.text


def test_derive_names_the_rules_in_both_languages(client) -> None:
    rules = {}
    for lang in ("en", "zh"):
        data = client.post("/api/derive", json={"expr": "(x^2+1)^3", "lang": lang}).json()
        rules[lang] = [c["rule"] for c in data["steps"][1]["children"]]
        rules[lang].insert(0, data["steps"][1]["rule"])
    assert rules["en"][:3] == ["Chain rule", "Power rule", "Sum rule"]
    assert rules["zh"][:3] == ["链式法则", "幂法则", "和的求导法则"]


def test_mathml_escapes_what_it_is_given() -> None:
    tree = mathml.to_tree(
        "<math><mi>&lt;img src=x onerror=alert(1)&gt;</mi></math>", mathml.MATHML_TAGS
    )
    assert tree == ["math", {}, ["mi", {}, "<img src=x onerror=alert(1)>"]]  # text, never a tag
    with pytest.raises(ValueError, match="tag <script> is not allowed"):
        mathml.to_tree("<math><script>1</script></math>", mathml.MATHML_TAGS)
    with pytest.raises(ValueError, match="attribute 'onload' is not allowed"):
        mathml.to_tree('<svg onload="x"/>', mathml.SVG_TAGS)


def _stacked_powers(tree: Any) -> list[Any]:
    """Every msup whose base is an msup without brackets: (x²)² or (eˣ)² drawn as a tower."""
    if isinstance(tree, str):
        return []
    tag, _, *children = tree
    here = (
        [tree]
        if tag == "msup" and not isinstance(children[0], str) and children[0][0] == "msup"
        else []
    )
    return here + [t for c in children for t in _stacked_powers(c)]


_x, _y = sp.symbols("x y", real=True)


@pytest.mark.parametrize(
    "e",
    [
        sp.Pow(sp.Pow(_x, 2), 2, evaluate=False),
        sp.exp(-sp.Pow(sp.Pow(_x, 2), 2, evaluate=False)),
        (_x**_y) ** _y,
        sp.Pow(sp.exp(_x), 2, evaluate=False),
        sp.Pow(sp.exp(_x), _y, evaluate=False),
    ],
    ids=str,
)
def test_mathml_brackets_a_power_of_a_power(e) -> None:
    tree = mathml.math(mathml.MathMLMath().expr(e))
    assert not _stacked_powers(tree) and "(" in texts(tree)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_derive_brackets_nested_powers(client, lang) -> None:
    data = client.post("/api/derive", json={"expr": "exp(-(x^y)^y)", "lang": lang}).json()
    assert "(xʸ)ʸ" in data["result_text"]
    assert not _stacked_powers(data["result"])
    assert not [
        t
        for node in data["steps"]
        for seg in node["segments"]
        if "math" in seg
        for t in _stacked_powers(seg["math"])
    ]


@pytest.mark.parametrize("expr", ["(x^2+1)^3", "ln(x)", "1/x", "sigmoid(x)"])
def test_the_plot_samples_f_and_its_derivative(client, expr) -> None:
    data = client.post("/api/derive", json={"expr": expr}).json()
    plot = data["plot"]
    d = explain(expr)
    xs = np.array(plot["x"])
    with np.errstate(all="ignore"):
        f = np.asarray(lambdify([d.wrt], d.expr)(xs), dtype=float) * np.ones_like(xs)
        df = np.asarray(lambdify([d.wrt], d.result)(xs), dtype=float) * np.ones_like(xs)
    for got, want in ((plot["f"], f), (plot["df"], df)):
        for g, w in zip(got, want):
            assert (g is None) == (not math.isfinite(w))
            if g is not None:
                assert g == pytest.approx(w, rel=1e-12, abs=1e-12)
    assert plot["y"][0] < plot["y"][1]


def test_a_function_of_several_variables_has_no_plot_but_a_variable_choice(client) -> None:
    data = client.post(
        "/api/derive", json={"expr": "z = (u+v)^2; u = x*y; v = x + y", "wrt": "y"}
    ).json()
    assert data["plot"] is None
    assert data["variables"] == ["x", "y"] and data["wrt"] == "y"
    assert data["result_text"] == TextMath().expr(
        explain("z = (u+v)^2; u = x*y; v = x + y", wrt="y").result
    )


@pytest.mark.parametrize(
    ("expr", "x", "slope"),
    [("(x^2+1)^3", 2.0, 300.0), ("sin(x^2)", 1.0, 2 * math.cos(1.0)), ("e^(2*x)", 0.5, 2 * math.e)],
)
def test_the_point_check_agrees_three_ways(client, expr, x, slope) -> None:
    data = client.post("/api/point", json={"expr": expr, "x": x}).json()
    assert data["analytic"] == pytest.approx(slope, rel=1e-12)
    assert data["autodiff"] == pytest.approx(slope, rel=1e-12)
    assert data["central"] == pytest.approx(slope, rel=1e-5)
    assert data["agree"] is True


def test_the_point_check_reports_undefined_values(client) -> None:
    data = client.post("/api/point", json={"expr": "ln(x)", "x": -1.0}).json()
    assert data["f"] is None and data["agree"] is False


# ------------------------------------------------------------------------------------ graph


def test_the_seed_network_has_the_seeds_numbers(client) -> None:
    ex = EXAMPLES["seed-network"]
    data = client.post("/api/graph", json={"program": ex["program"], "at": ex["at"]}).json()
    grads = {i["name"]: i["grad"] for i in data["inputs"]}
    # seed 003 §6.1: dL/dw2 = -0.037, dL/db2 = -0.056, dL/dw1 = dL/db1 = -0.010
    for name, seed in {"w2": -0.037, "b2": -0.056, "w1": -0.010, "b1": -0.010}.items():
        assert abs(grads[name] - seed) < 1e-3
    lines = {s["label"]: s["line"] for s in data["steps"]}
    assert (
        lines["z1"]
        == "dL/dz1 = dL/da1 * da1/dz1 = -0.045 * a1*(1 - a1) = -0.045 * 0.668 * 0.332 = -0.010"
    )
    assert "z1 = w1*x + b1 = 0.500*1.000 + 0.200 = 0.700" in data["forward"]
    assert tags(data["svg"]) <= mathml.SVG_TAGS
    node_ids = {c[1].get("id") for c in data["svg"][2:] if isinstance(c, list) and c[0] == "g"}
    assert {s["node"] for s in data["steps"]} <= node_ids  # every step highlights a drawn box


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_slider_move_recomputes_every_gradient(client, name) -> None:
    """Moved inputs give the gradients central differences of the program give there."""
    from chainrule.commands.backprop import build

    ex = EXAMPLES[name]
    at = {k: v + 0.25 for k, v in ex["at"].items()}
    data = client.post("/api/graph", json={"program": ex["program"], "at": at}).json()
    assert [i["name"] for i in data["inputs"]] == list(at)
    h = 1e-6
    for item in data["inputs"]:
        k = item["name"]
        up = build(ex["program"], {**at, k: at[k] + h}).item()
        down = build(ex["program"], {**at, k: at[k] - h}).item()
        assert item["value"] == at[k]
        assert item["grad"] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"program": "x*y", "at": {"x": 1}}, "no value for y"),
        ({"program": "x*y", "at": {}}, "at: give a value for every input"),
        ({"program": "x*y", "at": {"x": 1, "y": "2"}}, "y: expected a number, got str"),
        ({"program": "x*y", "at": {"x": 1, "y": 1e9}}, "y: 1000000000.0 is outside [-100, 100]"),
        ({"program": "x*y", "at": {"x y": 1}}, "at: 'x y' is not a variable name"),
        ({"program": "2*3", "at": {"x": 1}}, "--at gives x, which EXPR does not use"),
    ],
)
def test_graph_input_errors_are_one_line(client, body, message) -> None:
    r = client.post("/api/graph", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]


# ------------------------------------------------------------------------------------ command


def test_import_chainrule_stays_light() -> None:
    heavy = ("starlette", "uvicorn", "sympy", "chainrule.web")
    code = f"import sys, chainrule; print(any(m in sys.modules for m in {heavy!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_serve_without_the_web_extra_exits_2_with_the_install_line(monkeypatch, capsys) -> None:
    from chainrule.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["serve", "--no-browser"]) == 2
    assert (
        capsys.readouterr().err
        == "chainrule serve: needs the web extra: pip install 'chainrule[web]'\n"
    )


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serve_binds_loopback_and_warns_for_another_host(monkeypatch, capsys, host, warned) -> None:
    import uvicorn

    from chainrule.cli import main

    calls: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(self.config))
    assert main(["serve", "--no-browser", "--port", "8123", "--host", host]) == 0
    out = capsys.readouterr()
    (config,) = calls
    # the grace period: a connection left open must not hold Ctrl+C
    assert (config.host, config.port, config.log_level) == (host, 8123, "warning")
    assert config.timeout_graceful_shutdown == 2
    assert f"chainrule playground on http://{host}:8123/" in out.out
    assert ("WARNING" in out.err) is warned


def test_chainrule_serve_serves_the_page_on_loopback() -> None:
    """The real command: uvicorn on 127.0.0.1, the page, the Host check, a clean stop."""
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "chainrule", "serve", "--no-browser", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    page = r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert 'data-testid="expr-input"' in page
        request = urllib.request.Request(url, headers={"Host": f"evil.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 400
        refused.value.close()  # the error holds the open response
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert out.startswith(f"chainrule playground on http://127.0.0.1:{port}/")
    assert "Traceback" not in err


# Ctrl+C ends the command (status 0); SIGTERM, once the server has stopped, ends the process
# as that signal does (uvicorn raises it again), so a supervisor sees what stopped it
@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, 0), (signal.SIGTERM, -signal.SIGTERM)],
    ids=["ctrl-c", "term"],
)
def test_chainrule_serve_stops_while_a_training_stream_is_open(sig, status) -> None:
    """A tab that keeps an event stream open (a paused run) does not hold the server's stop,
    and the stop is clean: the stream ends before the server shuts down, so uvicorn never
    cancels it (which printed a traceback per stream)."""
    import http.client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "chainrule", "serve", "--no-browser", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn.request("POST", "/api/train/start", body=json.dumps({"epochs": 200}))
                job = json.loads(conn.getresponse().read())["id"]
                break
            except ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                conn.close()
                time.sleep(0.2)
        conn.request("POST", f"/api/train/{job}/pause", body="{}")
        assert json.loads(conn.getresponse().read()) == {"status": "paused"}
        conn.request("GET", f"/api/train/{job}/events")
        stream = conn.getresponse()
        assert stream.readline().startswith(b"id: ")  # the stream is open, the run paused
        proc.send_signal(sig)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10
        assert proc.returncode == status
        assert "Traceback" not in err and "ERROR" not in err, err
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_wildcard_bind_answers_to_this_machines_names(monkeypatch) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "lab-box")
    monkeypatch.setattr(socket, "getfqdn", lambda: "lab-box.example.org")
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda name: (name, [], ["10.0.0.7"]))
    hosts = hosts_for("0.0.0.0", 8000)
    assert {"lab-box:8000", "lab-box.example.org:8000", "10.0.0.7:8000", "127.0.0.1:8000"} <= hosts
    assert "evil.example:8000" not in hosts
    assert hosts_for("::1", 9000) == {"127.0.0.1:9000", "localhost:9000", "[::1]:9000"}


def _raise(exc: BaseException) -> Any:
    raise exc


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (ValueError("x: bad\n  ^ here"), "input", "x: bad"),
        (MemoryError(), "input", "this needs more than the 2 GB a derivation may use"),
        (KeyError("oops"), "bug", "KeyError: 'oops'"),
    ],
)
def test_a_workers_failures_become_one_line(error, status, line, capsys) -> None:
    from chainrule.web.worker import answer

    assert answer({"v": lambda: _raise(error)}, "v", {}) == (status, line)
    assert answer({"v": lambda x: x + 1}, "v", {"x": 1}) == ("ok", 2)
    capsys.readouterr()  # a bug's traceback goes to the server's log


@pytest.mark.parametrize("entry", views.WARM_UP, ids=lambda e: e[0])
def test_every_warm_up_interaction_answers(entry) -> None:
    """The forkserver's warm-up swallows errors (a cold worker beats a dead forkserver), so a
    warm-up entry that fails would go unnoticed but for this."""
    from chainrule.web.worker import _PRELOAD, answer

    name, kwargs = entry
    status, payload = answer(views.VIEWS, name, kwargs)
    assert status == "ok", payload
    assert _PRELOAD == ["chainrule.web.preload"]


@pytest.mark.parametrize(
    "program",
    [
        # too long to write out: derived statement by statement (limits.max_output)
        "a1 = x*sin(x); " + "; ".join(f"a{i} = a{i - 1}*sin(a{i - 1})" for i in range(2, 13)),
        # each statement uses the two before it: exponential written out
        "a1 = x^2/9; a2 = a1*a1 + a1; "
        + "; ".join(f"a{i} = a{i - 1}*a{i - 2}/4 + a{i - 1}/2" for i in range(3, 31)),
    ],
    ids=["chain", "diamond"],
)
def test_a_program_derived_statement_by_statement_is_plotted_and_checked(program) -> None:
    """The plot and the point check evaluate the program one statement at a time, as the
    derivation was made, and agree with central differences of f (never written out)."""
    d = explain(program)
    assert d.rates, "the case must exercise the statement-by-statement answer"
    out = views.derive(program)
    plot = out["plot"]
    xs, f, df = (np.array(plot[k], dtype=float) for k in ("x", "f", "df"))
    inside = np.isfinite(f) & np.isfinite(df)
    assert inside.sum() > len(xs) // 2
    checked = 0
    for i in np.flatnonzero(inside)[::16]:
        at = views.point(program, "x", float(xs[i]))
        assert at["agree"], at  # the derivative, central differences and autodiff agree
        assert df[i] == pytest.approx(at["analytic"], rel=1e-9, abs=1e-12)
        assert f[i] == pytest.approx(at["f"], rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 4
    assert views.point(program, "x", 0.7)["analytic"] == pytest.approx(d.evaluate(x=0.7))
