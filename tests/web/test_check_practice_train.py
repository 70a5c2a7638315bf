"""Check my answer, Practice and Train through the API."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import sympy as sp

from chainrule.data import make_circles
from chainrule.symbolic import explain, parse
from chainrule.web import answers, practice, train
from chainrule.web.train import DATASETS_2D, MAX_EPOCHS, MAX_UNITS

# (function, a learner's answer, the mistake it makes); None: the answer is right
ANSWERS = [
    ("(x^2+1)^3", "6*x*(x^2+1)^2", None),
    ("(x^2+1)^3", "3*(x^2+1)^2*2*x", None),  # unsimplified is still right
    ("x^2/(x+1)", "(x^2+2*x)/(x+1)^2", None),
    ("z = (u+v)^2; u = x*y; v = x + y", "2*(x*y+x+y)*(y+1)", None),
    # right in another notation than the derivation's: exponentials for its σ (was "wrong"),
    # a superscript pasted from a printed answer, relu's kink written away
    ("1/(1+e^(-x))", "e^(-x)/(1+e^(-x))^2", None),
    ("1/(1+e^(-x)) + k*x", "k + e⁻ˣ/(1 + e⁻ˣ)²", None),
    ("relu(x)^2", "2*relu(x)", None),
    ("(x^2+1)^3", "3*(x^2+1)^2", "inner"),
    ("sin(x^2)", "cos(x^2)", "inner"),
    ("e^(x^2)", "e^(x^2)", "inner"),
    ("sqrt(1+x^2)", "1/(2*sqrt(1+x^2))", "inner"),
    ("x^2/(x+1)", "(x^2 - 2*x*(x+1))/(x+1)^2", "quotient_sign"),
    ("sin(x)/x", "(sin(x) - x*cos(x))/x^2", "quotient_sign"),
    ("x^3", "3*x^3", "exponent"),
    ("(x^2+1)^3", "3*(x^2+1)^3*2*x", "exponent"),
    ("x^2*e^x", "2*x*e^x", "product_drop"),
    ("x^2*sin(x)", "x^2*cos(x)", "product_drop"),
    ("x^2*sin(x)", "2*x*cos(x)", "product_both"),
]


@pytest.mark.parametrize(("expr", "answer", "mistake"), ANSWERS)
def test_check_names_the_mistake(client, expr, answer, mistake) -> None:
    r = client.post("/api/check", json={"expr": expr, "answer": answer})
    assert r.status_code == 200, r.text
    data = r.json()
    if mistake is None:
        assert data["verdict"] == "correct"
        assert data["hints"] == []
        return
    assert data["verdict"] == "wrong"
    assert data["mistake"]["kind"] == mistake
    assert answers.MISTAKES[mistake, "en"] in " ".join(data["messages"])
    assert len(data["hints"]) >= 2  # the fix first, then the derivation's steps one by one
    assert data["hints"][0] == [{"text": answers.FIX_HINTS[mistake, "en"], "bold": False}]


def test_a_wrong_answer_with_a_kinked_derivative_is_answered_in_markup(client) -> None:
    """relu(x)²'s steps hold x < 0 (a piecewise derivative): SymPy's MathML printer wrote it as
    <mo><</mo>, which crashed the hints of every wrong answer there."""
    r = client.post("/api/check", json={"expr": "relu(x)^2", "answer": "2*x*relu(x)"})
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "wrong"
    assert "<" in str(r.json()["hints"])


def test_each_modelled_slip_is_a_wrong_derivative() -> None:
    """A slip that equals the true derivative would call a right answer a mistake."""
    for expr, _, mistake in ANSWERS:
        if mistake is None:
            continue
        d = explain(expr)
        x = d.wrt
        for slip in answers.slips(d.expr, x):
            diff = sp.lambdify([x], slip.derivative - d.result)
            assert any(abs(complex(diff(p))) > 1e-9 for p in answers.POINTS), (expr, slip)


def test_check_says_where_it_differs_and_in_chinese(client) -> None:
    data = client.post(
        "/api/check", json={"expr": "(x^2+1)^3", "answer": "3*(x^2+1)^2", "lang": "zh"}
    ).json()
    assert data["messages"][0].startswith("在 x = 0.37 处，你的导数等于")
    assert "漏乘内层函数的导数" in data["messages"][1]


# (function, a wrong answer no known mistake explains, the step it departs from, why, the key
# of the line the page highlights: the step's own, or its parent's when the step is not printed)
DEPARTURES = [
    ("sin(x)", "x", "TrigRule", "leaf", "TrigRule"),
    ("x^3 + sin(x^2)", "2*x^2 + 2*x*cos(x^2)", "PowerRule", "leaf", "PowerRule"),
    ("x^3 + 5", "3*x^2 + 5", "ConstantRule", "leaf", "SumRule"),  # d/dx 5 is not printed
    ("x^3 + sin(x^2)", "3*x^2 + 2*x*cos(x^2) + 1", "SumRule", "step", "SumRule"),
    ("x^2*sin(x)", "2*x*sin(x) + x^2*sin(x)", "TrigRule", "leaf", "TrigRule"),
    ("(x^2+1)^3", "3*(x^2+1)^2*x", "PowerRule", "leaf", "PowerRule"),  # du/dx = x
    ("(x^2+1)^3", "3*(x^2+1)^2*x^2", "PowerRule", "leaf", "PowerRule"),
    ("(x^2+1)^3", "6*x^3*(x^2+1)^2", "PowerRule", "leaf", "PowerRule"),  # 3·2 merged: du/dx
    ("sin(x^2)^3", "6*x*sin(x^2)^2", "ChainRule", "missing", "ChainRule"),  # no cos(x²)
    ("sin(cos(x^2))", "cos(cos(x^2))*sin(x^2)*2*x", "TrigRule", "leaf", "TrigRule"),
    ("cos(x+1)", "sin(x+1)", "TrigRule", "leaf", "TrigRule"),  # the sign: d cos = -sin
    ("x^2/(x+1)", "(2*x*(x+1) - 2*x^2)/(x+1)^2", "IdentityRule", "leaf", "SumRule"),
    ("x^2/(x+1)", "(x*(x+1) - x^2)/(x+1)^2", "PowerRule", "leaf", "PowerRule"),
    ("5*x^3", "10*x^2", "PowerRule", "leaf", "PowerRule"),
    ("x^x", "x*x^(x-1)", "LogDiffRule", "step", "LogDiffRule"),  # the power rule on xˣ
    ("z = (u+v)^2; u = x*y; v = x + y", "2*(x*y+x+y)*y", "MultivariableChainRule", "missing",
     "MultivariableChainRule"),  # the path through v left out
    ("z = (u+v)^2; u = x*y; v = x + y", "2*(x*y+x+y)*x + 2*(x*y+x+y)", "ConstantMultipleRule",
     "step", "ConstantMultipleRule"),  # du/dx = x: d/dx (xy) is y
]  # fmt: skip


@pytest.mark.parametrize(("expr", "answer", "rule", "reason", "key"), DEPARTURES)
def test_check_names_the_step_a_wrong_answer_departs_from(client, expr, answer, rule, reason, key):
    data = client.post("/api/check", json={"expr": expr, "answer": answer}).json()
    assert data["verdict"] == "wrong" and "mistake" not in data, data
    assert (data["departs"]["rule"], data["departs"]["reason"]) == (rule, reason)
    assert explain(expr).lines[data["departs"]["line"]].key == key
    head, tail = answers.MESSAGES[f"departs_{reason}", "en"].split("{node}")
    assert data["messages"][1].startswith(head) and data["messages"][1].endswith(tail[-40:])
    marked = [n for n in _flatten(data["steps"]) if n["line"] == data["departs"]["line"]]
    assert len(marked) == 1 and marked[0]["key"] == key  # the page's tree has that step


def _flatten(nodes: list[dict]) -> list[dict]:
    out, stack = [], list(nodes)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node["children"])
    return out


@pytest.mark.parametrize(
    ("expr", "answer"),
    [("x^2*sin(x)", "x^3"), ("(x^2+1)^3", "x"), ("x^2/(x+1)", "(x^2 + 1)/(x+1)")],
)
def test_an_answer_wrong_everywhere_says_no_step_can_be_named(client, expr, answer) -> None:
    data = client.post("/api/check", json={"expr": expr, "answer": answer}).json()
    assert data["verdict"] == "wrong" and "mistake" not in data and "departs" not in data
    assert data["messages"][1] == answers.MESSAGES["unknown", "en"]
    assert data["hints"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("<img src=x onerror=alert(1)>", "unexpected character '<'"),
        ("2*q", "answer: q does not appear in the function"),
        ("x" * 301, "answer: 301 characters is over the limit of 300"),
    ],
)
def test_check_rejects_bad_answers_in_one_line(client, answer, message) -> None:
    r = client.post("/api/check", json={"expr": "x^2", "answer": answer})
    assert r.status_code == 400
    assert message in r.json()["error"]


# ------------------------------------------------------------------------------------ practice


@pytest.mark.parametrize("rule", practice.RULES)
def test_practice_starts_with_the_seeds_then_generates(client, rule) -> None:
    seeds = practice.SEED_EXAMPLES[rule]
    got = [
        client.post("/api/practice", json={"rule": rule, "difficulty": 1, "index": i}).json()
        for i in range(len(seeds) + 2)
    ]
    assert [g["expr"] for g in got[: len(seeds)]] == [e for e, _ in seeds]
    assert all(g["source"].startswith("seed") for g in got[: len(seeds)])
    assert got[-1]["expr"] != got[-2]["expr"] and got[-1]["source"] == ""


@pytest.mark.parametrize("rule", practice.RULES)
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_every_generated_exercise_is_derivable_and_checkable(rule, difficulty) -> None:
    """The generator's exercises parse, derive, and their own answer checks as right."""
    for index in range(3):
        ex = practice.exercise(rule, difficulty, index + 5)
        d = explain(ex["expr"], wrt=ex["wrt"])
        assert d.steps is not None
        if rule == "multivariable":
            assert len(d.definitions) >= 2
        else:
            assert parse(ex["expr"]).has(sp.Symbol("x", real=True))
        verdict = answers.check(d, str(d.result).replace("**", "^"))
        assert verdict["verdict"] == "correct", (ex, verdict)


def test_practice_is_deterministic_and_checked_like_check(client) -> None:
    one = practice.exercise("chain", 2, 7)
    assert one == practice.exercise("chain", 2, 7)
    with pytest.raises(ValueError, match="difficulty: choose 1, 2 or 3"):
        practice.exercise("chain", 4, 0)
    r = client.post("/api/practice", json={"rule": "limits", "difficulty": 1, "index": 0})
    assert r.status_code == 400
    assert r.json()["error"] == "rule: choose one of power, product, quotient, chain, multivariable"


# ------------------------------------------------------------------------------------ train


def test_circles_are_two_rings() -> None:
    X, y = make_circles(400, factor=0.5, noise=0.0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.allclose(r[y == 0], 1.0, atol=1e-6) and np.allclose(r[y == 1], 0.5, atol=1e-6)
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
        make_circles(10, factor=1.5)


def _wait(client, job: str, status: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/train/{job}").json()
        if data["status"] == status or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def _events(client, job: str, headers: dict | None = None, on_first=None) -> list[dict]:
    """The run's Server-Sent Events as they arrive, until the server ends the stream."""
    out: list[dict] = []
    with client.stream("GET", f"/api/train/{job}/events", headers=headers or {}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict = {}
        for line in r.iter_lines():
            if line.startswith(("id: ", "event: ", "data: ")):
                key, value = line.split(": ", 1)
                event[key] = json.loads(value) if key == "data" else value
            elif not line and event:
                out.append(event)
                event = {}
                if on_first is not None and len(out) == 1:
                    on_first()
    return out


@pytest.mark.parametrize("dataset", DATASETS_2D)
def test_training_streams_loss_and_boundary_until_done(client, dataset) -> None:
    body = {"dataset": dataset, "hidden": [16, 16], "activation": "tanh", "lr": 0.03, "epochs": 12}
    job = client.post("/api/train/start", json=body).json()["id"]
    events = _events(client, job)
    assert {e["event"] for e in events} == {"progress"}
    ids = [int(e["id"]) for e in events]  # the epochs the page has: never goes back
    assert ids == sorted(ids) and ids[-1] == 12
    data = events[-1]["data"]
    assert data["status"] == "done" and data["error"] is None
    history = [h for e in events for h in e["data"]["history"]]  # each epoch sent once
    assert [h["epoch"] for h in history] == list(range(1, 13))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    b = data["boundary"]
    assert len(b["classes"]) == len(b["confidence"]) == b["size"] ** 2
    assert len(b["points"]) == 300 and b["extent"][0] < b["extent"][1]
    n_classes = 3 if dataset == "spirals" else 2
    assert {k for *_, k in b["points"]} == set(range(n_classes))
    later = client.get(f"/api/train/{job}?since=10").json()
    assert [h["epoch"] for h in later["history"]] == [11, 12]
    # a reconnecting EventSource says how many epochs it has; it gets the rest, then the end
    again = _events(client, job, headers={"last-event-id": "10"})
    assert [[h["epoch"] for h in e["data"]["history"]] for e in again] == [[11, 12]]


def test_the_stream_follows_pause_and_ends_when_the_run_is_reset(client) -> None:
    body = {"dataset": "moons", "hidden": [8], "epochs": MAX_EPOCHS}
    job = client.post("/api/train/start", json=body).json()["id"]

    def pause_then_reset() -> None:
        client.post(f"/api/train/{job}/pause", json={})
        threading.Timer(0.5, lambda: client.post(f"/api/train/{job}/stop", json={})).start()

    events = _events(client, job, on_first=pause_then_reset)
    statuses = [e["data"]["status"] for e in events]
    assert "paused" in statuses and statuses[-1] == "stopped"
    assert statuses.index("paused") < len(statuses) - 1
    assert len(events[-1]["data"]["history"]) <= 2  # paused: at most the epoch in flight
    assert _trainer(client).streams == 0


def _trainer(client):
    return client.app.app.state.trainer  # the Starlette app inside the Host guard


def test_streams_are_bounded_and_a_closed_one_frees_its_slot(client, monkeypatch) -> None:
    monkeypatch.setattr(train, "MAX_STREAMS", 1)
    job = client.post("/api/train/start", json={"dataset": "moons", "epochs": MAX_EPOCHS})
    job = job.json()["id"]
    client.post(f"/api/train/{job}/pause", json={})
    with client.stream("GET", f"/api/train/{job}/events") as held:
        lines = held.iter_lines()  # kept: a dropped iterator closes the response
        assert next(lines).startswith("id: ")  # open, counted (an epoch may end before pause)
        assert _trainer(client).streams == 1
        r = client.get(f"/api/train/{job}/events")
        assert r.status_code == 503
        assert r.json()["error"] == "1 training streams are open already; close a tab and retry"
    deadline = time.monotonic() + 5  # the tab closed: the server's generator is cancelled
    while _trainer(client).streams and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _trainer(client).streams == 0
    client.post(f"/api/train/{job}/stop", json={})
    assert _events(client, job)[-1]["data"]["status"] == "stopped"


@pytest.mark.parametrize(
    ("path", "headers", "status", "message"),
    [
        ("/api/train/{job}/events", {"host": "evil.example:8000"}, 400, "unknown Host header"),
        ("/api/train/{job}/events?since=x", {}, 400, "since: expected a count, got 'x'"),
        ("/api/train/{job}/events", {"last-event-id": "-1"}, 400, "Last-Event-ID: expected a"),
        ("/api/train/run999/events", {}, 400, "no training run 'run999'"),
    ],
)
def test_stream_requests_are_checked(client, path, headers, status, message) -> None:
    job = client.post("/api/train/start", json={"dataset": "moons", "epochs": 2}).json()["id"]
    r = client.get(path.format(job=job), headers=headers)
    assert r.status_code == status
    assert message in r.text


def test_training_pauses_resumes_and_stops(client) -> None:
    body = {"dataset": "moons", "hidden": [8], "epochs": MAX_EPOCHS}
    job = client.post("/api/train/start", json=body).json()["id"]
    assert client.post(f"/api/train/{job}/pause", json={}).json() == {"status": "paused"}
    time.sleep(0.4)
    seen = len(client.get(f"/api/train/{job}").json()["history"])
    time.sleep(0.6)
    assert len(client.get(f"/api/train/{job}").json()["history"]) <= seen + 1  # one may finish
    assert client.post(f"/api/train/{job}/resume", json={}).json() == {"status": "running"}
    assert client.post(f"/api/train/{job}/stop", json={}).json() == {"status": "stopped"}
    assert _wait(client, job, "stopped")["status"] == "stopped"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataset": "digits"}, "dataset: choose one of moons, circles, spirals"),
        ({"hidden": [MAX_UNITS + 1]}, "hidden layers: 1 to 4 sizes of 1 to 64"),
        ({"hidden": "16,16"}, "hidden layers"),
        ({"activation": "gelu"}, "activation: choose one of tanh, relu, sigmoid"),
        ({"lr": 5}, "learning rate: a number from 0.00001 to 1, got 5"),
        ({"epochs": MAX_EPOCHS + 1}, f"epochs: 1 to {MAX_EPOCHS}"),
    ],
)
def test_training_input_errors_are_one_line(client, body, message) -> None:
    r = client.post("/api/train/start", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_an_unknown_run_is_a_clear_error(client) -> None:
    r = client.get("/api/train/run999")
    assert r.status_code == 400
    assert r.json()["error"] == "no training run 'run999' (reset and start again)"
