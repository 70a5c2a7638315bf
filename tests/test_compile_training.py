"""chainrule.compile of whole training steps: zero_grad, forward, backward and the optimizer's
step inside the compiled function replay bitwise equal to eager over several steps, with the
optimizer's state, lr schedules, BatchNorm's running statistics and Dropout's masks evolving as
they do eagerly. Tables: optimizers, schedulers and models; one test body per table."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F
from chainrule.optim import lr_scheduler as sched

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd_nesterov_wd": lambda ps: optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2
    ),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adam_amsgrad_wd": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=1e-2, momentum=0.5),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
}

# A schedule changes lr between calls; `inside` schedules step inside the compiled function.
SCHEDULERS = {
    "step": lambda opt: sched.StepLR(opt, step_size=2, gamma=0.5),
    "cosine": lambda opt: sched.CosineAnnealingLR(opt, T_max=3),
    "exponential": lambda opt: sched.ExponentialLR(opt, gamma=0.7),
}


class _LastStep(nn.Module):
    """A recurrent layer's output at the last time step, then a linear head."""

    def __init__(self, rnn: nn.Module, width: int) -> None:
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(width, 4)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class _Pooled(nn.Module):
    """A sequence layer's mean over time, then a linear head."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer, self.head = layer, nn.Linear(4, 4)

    def forward(self, x):
        return self.head(self.layer(x).mean(axis=1))


# name -> (model factory, one batch's input shape); every model ends in 4 logits
MODELS = {
    "mlp_dropout": (
        lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4)),
        (8, 6),
    ),
    "conv1d_batchnorm_maxpool": (
        lambda: nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1),
            nn.BatchNorm1d(4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(20, 4),
        ),
        (8, 2, 10),
    ),
    "conv2d_batchnorm_avgpool_dropout2d": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Dropout2d(0.25),
            nn.Flatten(),
            nn.Linear(36, 4),
        ),
        (8, 1, 8, 8),
    ),
    "conv2d_maxpool_groupnorm_layernorm": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, stride=2),
            nn.MaxPool2d(2, stride=1, padding=1),
            nn.GroupNorm(2, 4),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.LayerNorm(16),
            nn.Linear(16, 4),
        ),
        (8, 1, 8, 8),
    ),
    "gru_bidirectional": (
        lambda: _LastStep(nn.GRU(3, 5, batch_first=True, bidirectional=True), 10),
        (8, 6, 3),
    ),
    "lstm_two_layers_dropout": (
        lambda: _LastStep(nn.LSTM(3, 5, num_layers=2, dropout=0.3, batch_first=True), 5),
        (8, 6, 3),
    ),
    "rnn_tanh": (lambda: _LastStep(nn.RNN(3, 5, batch_first=True), 5), (8, 6, 3)),
    "transformer_encoder_dropout": (
        lambda: _Pooled(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.2, batch_first=True)),
        (8, 5, 4),
    ),
}


def _state_arrays(model, opt):
    """Every array a training step changes: parameters, buffers, the optimizer's state."""
    out = [np.asarray(getattr(v, "data", v)) for v in model.state_dict().values()]
    for s in opt.state_dict()["state"].values():
        out += [np.asarray(v) for _, v in sorted(s.items())]
    return [np.array(a, copy=True) for a in out]


def _run(compiled, make_model, shape, make_opt, make_sched=None, steps=6, inside=False):
    """Train `steps` steps (eager or compiled); returns losses, logits, gradients and state."""
    cr.manual_seed(0)
    model = make_model()
    opt = make_opt(model.parameters())
    schedule = make_sched(opt) if make_sched else None
    cr.manual_seed(1)  # Dropout's masks: the same stream in both runs

    def train_step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        if inside and schedule is not None:
            schedule.step()
        return loss, logits

    step = cr.compile(train_step) if compiled else train_step
    rng = np.random.default_rng(7)
    record = []
    for _ in range(steps):
        x = cr.tensor(rng.standard_normal(shape).astype(np.float32))
        y = rng.integers(0, 4, shape[0])
        loss, logits = step(x, y)
        grads = [p.grad.data.copy() for p in model.parameters()]
        record.append([loss.data.copy(), logits.data.copy(), *grads])
        if schedule is not None and not inside:
            schedule.step()
    return record, _state_arrays(model, opt), step


def _assert_bitwise(eager, compiled):
    (rec_e, state_e, _), (rec_c, state_c, step) = eager, compiled
    for row_e, row_c in zip(rec_e, rec_c, strict=True):
        for u, v in zip(row_e, row_c, strict=True):
            assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
    for u, v in zip(state_e, state_c, strict=True):
        assert u.dtype == v.dtype and u.tobytes() == v.tobytes()
    assert any(p.checked for p in step.plans.values())  # calls 3.. were replays


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_inside_replays_bitwise(name):
    make_model, shape = MODELS["mlp_dropout"]
    args = (make_model, shape, OPTIMIZERS[name], SCHEDULERS["step"])
    _assert_bitwise(_run(False, *args), _run(True, *args))


@pytest.mark.parametrize("inside", [False, True], ids=["between_calls", "inside"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_lr_schedules_are_honoured(name, inside):
    make_model, shape = MODELS["mlp_dropout"]
    args = (make_model, shape, OPTIMIZERS["adam"], SCHEDULERS[name])
    _assert_bitwise(_run(False, *args, inside=inside), _run(True, *args, inside=inside))


@pytest.mark.parametrize("name", MODELS)
def test_models_train_step_replays_bitwise(name):
    make_model, shape = MODELS[name]
    args = (make_model, shape, OPTIMIZERS["adam"], SCHEDULERS["step"])
    _assert_bitwise(_run(False, *args), _run(True, *args))


def test_adam_bias_correction_follows_the_step_count():
    """Each replay is Adam's step t + 1, with its own bias correction, not the traced step."""
    w = cr.tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = (w * x).sum()
        loss.backward()
        opt.step()
        return loss

    f = cr.compile(step)
    g = np.array([1.0, -2.0, 3.0])
    for _ in range(5):
        f(cr.tensor(g))
    assert opt.state[id(w)]["step"] == 5
    # A constant gradient g: m_t / (1 - b1^t) = g and v_t / (1 - b2^t) = g^2 at every t, so
    # each step moves lr * sign(g) (up to eps) only if every step corrects with its own t.
    np.testing.assert_allclose(w.data, 1 - 5 * 0.1 * np.sign(g), rtol=1e-6)


def test_reduce_lr_on_plateau_inside_reads_the_fresh_loss():
    def run(compiled):
        cr.manual_seed(0)
        w = cr.tensor(np.ones(3), requires_grad=True)
        opt = optim.SGD([w], lr=0.5)
        plateau = sched.ReduceLROnPlateau(opt, patience=0, factor=0.5)

        def step(x):
            opt.zero_grad()
            loss = ((w * x).sum() - 1.0) ** 2
            loss.backward()
            opt.step()
            plateau.step(loss)  # a traced tensor: each replay passes its own loss
            return loss

        f = cr.compile(step) if compiled else step
        losses = [f(cr.tensor(np.full(3, v))).item() for v in (1.0, 0.5, 2.0, 0.1, 3.0, 0.2)]
        return losses, opt.param_groups[0]["lr"], w.data.copy()

    (le, lr_e, we), (lc, lr_c, wc) = run(False), run(True)
    assert le == lc and lr_e == lr_c and we.tobytes() == wc.tobytes()
    assert lr_e < 0.5  # the schedule did react


def test_dropout_masks_differ_per_replay_and_follow_the_generator():
    drop = nn.Dropout(0.5)
    f = cr.compile(lambda x: drop(x))
    x = cr.ones(64)
    cr.manual_seed(3)
    eager = [drop(x).data.copy() for _ in range(5)]
    cr.manual_seed(3)
    compiled = [f(x).data.copy() for _ in range(5)]
    assert all(e.tobytes() == c.tobytes() for e, c in zip(eager, compiled, strict=True))
    assert len({c.tobytes() for c in compiled}) == 5  # a new mask on every call
    cr.manual_seed(3)  # reseeding between calls restarts the replayed draws too
    assert f(x).data.tobytes() == eager[0].tobytes()


def test_batchnorm_train_then_eval_retraces_and_reads_running_stats_fresh():
    def run(compiled):
        cr.manual_seed(0)
        bn = nn.BatchNorm1d(3)
        calls = []

        def f(x):
            calls.append(bn.training)
            return bn(x)

        f = cr.compile(f) if compiled else f
        rng = np.random.default_rng(0)
        outs = []
        for mode in ["train"] * 4 + ["eval"] * 3 + ["train"] * 3 + ["eval"] * 3:
            bn.train(mode == "train")
            outs.append(f(cr.tensor(rng.standard_normal((5, 3), np.float32))).data.copy())
        return outs, bn.running_mean.data.copy(), bn.running_var.data.copy(), calls

    *eager, _ = run(False)
    *compiled, calls = run(True)
    assert [o.tobytes() for o in eager[0]] == [o.tobytes() for o in compiled[0]]
    assert eager[1].tobytes() == compiled[1].tobytes()
    assert eager[2].tobytes() == compiled[2].tobytes()
    # a trace and its check per training flag; the other 9 calls replay the plan of their flag
    assert calls == [True, True, False, False]


def test_module_zero_grad_and_clip_grad_norm_inside():
    def run(compiled):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            model.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), max_norm=0.05)
            opt.step()
            return loss

        f = cr.compile(step) if compiled else step
        rng = np.random.default_rng(2)
        for _ in range(5):
            f(
                cr.tensor(rng.standard_normal((6, 4), np.float32)),
                cr.tensor(rng.random((6, 2), np.float32)),
            )
        return [p.data.copy() for p in model.parameters()]

    for u, v in zip(run(False), run(True), strict=True):
        assert u.tobytes() == v.tobytes()


def test_the_docs_example_runs():
    """docs/compile.md's first example: a compiled conv net training step and a hessian."""
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "compile.md"
    if not page.exists():
        pytest.skip("docs/compile.md is not part of an installed package")
    text = page.read_text()
    start = text.index("```python\n") + len("```python\n")
    scope: dict = {}
    exec(text[start : text.index("```", start)], scope)
    assert any(p.checked for p in scope["train_step"].plans.values())
    assert scope["opt"].param_groups[0]["lr"] == 1e-3 / 4
    assert scope["h"].shape == (3, 3)
