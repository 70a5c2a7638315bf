"""Optimizers' first steps against hand-computed updates; schedules; clipping; state."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ReduceLROnPlateau,
    StepLR,
    clip_grad_norm_,
)


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def _run(opt_cls, grads, p0=(1.0, -2.0), **kw):
    """Apply the given gradient sequence; return the parameter after each step."""
    p = _param(p0)
    opt = opt_cls([p], **kw)
    out = []
    for g in grads:
        p.grad = cr.tensor(np.array(g, dtype=np.float64))
        opt.step()
        out.append(p.data.copy())
    return out


G = [[0.5, -1.0], [0.25, 2.0], [-1.0, 0.5]]


def test_sgd_plain_and_weight_decay():
    p = np.array([1.0, -2.0])
    (p1,) = _run(SGD, G[:1], lr=0.1)
    np.testing.assert_allclose(p1, p - 0.1 * np.array(G[0]))
    (p1,) = _run(SGD, G[:1], lr=0.1, weight_decay=0.01)
    np.testing.assert_allclose(p1, p - 0.1 * (np.array(G[0]) + 0.01 * p))


def test_sgd_momentum_and_nesterov_by_hand():
    lr, mu = 0.1, 0.9
    g = [np.array(x) for x in G]
    p = np.array([1.0, -2.0])
    buf, expected = None, []
    q, nbuf, nexpected = p.copy(), None, []
    for gi in g:
        buf = gi.copy() if buf is None else mu * buf + gi
        p = p - lr * buf
        expected.append(p)
        nbuf = gi.copy() if nbuf is None else mu * nbuf + gi
        q = q - lr * (gi + mu * nbuf)
        nexpected.append(q)
    for got, want in zip(_run(SGD, G, lr=lr, momentum=mu), expected):
        np.testing.assert_allclose(got, want)
    for got, want in zip(_run(SGD, G, lr=lr, momentum=mu, nesterov=True), nexpected):
        np.testing.assert_allclose(got, want)


def _adam_by_hand(grads, p, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    m = v = np.zeros_like(p)
    out = []
    for t, g in enumerate(map(np.array, grads), start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam_first_steps_by_hand():
    for got, want in zip(_run(Adam, G, lr=0.01), _adam_by_hand(G, np.array([1.0, -2.0]))):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adam_bias_correction_makes_the_first_step_lr_sized():
    # Without correction m_1 = 0.1 g and v_1 = 0.001 g^2 would give a step of ~3.2 lr.
    (p1,) = _run(Adam, [[1e-3, -50.0]], lr=0.01)
    np.testing.assert_allclose(np.array([1.0, -2.0]) - p1, [0.01, -0.01], rtol=1e-4)  # eps


def test_adam_l2_versus_adamw_decoupled_decay():
    p0 = np.array([1.0, -2.0])
    l2 = _run(Adam, G, lr=0.01, weight_decay=0.1)
    decoupled = _run(AdamW, G, lr=0.01, weight_decay=0.1)
    for got, want in zip(l2, _adam_by_hand(G, p0, wd=0.1)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for got, want in zip(decoupled, _adam_by_hand(G, p0, wd=0.1, decoupled=True)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert not np.allclose(l2[-1], decoupled[-1])
    # With zero gradients Adam's L2 decay is normalised away (step ~lr * sign(p)), while
    # AdamW shrinks p by exactly the factor (1 - lr * wd).
    (w,) = _run(AdamW, [[0.0, 0.0]], lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(w, p0 * (1 - 0.01 * 0.1))
    (a,) = _run(Adam, [[0.0, 0.0]], lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(p0 - a, 0.01 * np.sign(p0), rtol=1e-6)


def test_parameters_without_grad_are_skipped_and_zero_grad_clears():
    p, q = _param([1.0]), _param([2.0])
    opt = SGD([p, q], lr=0.5)
    p.grad = cr.tensor(np.array([1.0]))
    opt.step()
    assert p.data.tolist() == [0.5] and q.data.tolist() == [2.0]
    opt.zero_grad()
    assert p.grad is None


def test_step_invalidates_graphs_built_before_it():
    p = _param([1.0, 2.0])
    loss = (p * p).sum()
    p.grad = cr.tensor(np.ones(2))
    SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="lr must be"):
        SGD([_param([1.0])], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        Adam([_param([1.0])], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])


def test_optimizer_state_dict_round_trip_continues_identically(tmp_path):
    from chainrule.serialization import load, save

    a = _param([1.0, -2.0])
    opt = Adam([a], lr=0.01)
    for g in G[:2]:
        a.grad = cr.tensor(np.array(g))
        opt.step()
    save({"p": a.data, "opt": opt.state_dict()}, tmp_path / "o.npz")
    state = load(tmp_path / "o.npz")
    b = _param(state["p"])
    opt_b = Adam([b], lr=123.0)
    opt_b.load_state_dict(state["opt"])
    assert opt_b.param_groups[0]["lr"] == 0.01 and opt_b.param_groups[0]["betas"] == (0.9, 0.999)
    a.grad = b.grad = cr.tensor(np.array(G[2]))
    opt.step()
    opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_optimizer_load_state_dict_rejects_other_shapes():
    opt = Adam([_param([1.0, 2.0])])
    opt.param_groups[0]["params"][0].grad = cr.tensor(np.ones(2))
    opt.step()
    other = Adam([_param([1.0, 2.0, 3.0])])
    with pytest.raises(ValueError, match=r"has shape \(2,\), the parameter has \(3,\)"):
        other.load_state_dict(opt.state_dict())


def test_step_and_cosine_schedules():
    opt = SGD([_param([1.0])], lr=1.0)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    opt = SGD([_param([1.0])], lr=1.0)
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    want = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(6)]
    np.testing.assert_allclose(lrs, want)
    state = sched.state_dict()
    fresh = CosineAnnealingLR(SGD([_param([1.0])], lr=1.0), T_max=4, eta_min=0.1)
    fresh.load_state_dict(state)
    assert fresh.get_last_lr() == sched.get_last_lr()


def test_clip_grad_norm():
    p, q = _param([0.0, 0.0]), _param([0.0])
    p.grad, q.grad = cr.tensor(np.array([3.0, 0.0])), cr.tensor(np.array([4.0]))
    assert clip_grad_norm_([p, q], max_norm=10.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [3.0, 0.0])  # under the limit: unchanged
    assert clip_grad_norm_([p, q], max_norm=1.0) == pytest.approx(5.0)
    total = math.sqrt(float(np.sum(p.grad.data**2) + np.sum(q.grad.data**2)))
    assert total == pytest.approx(1.0, rel=1e-5)
    q.grad = cr.tensor(np.array([np.inf]))
    with pytest.raises(FloatingPointError, match="norm is inf"):
        clip_grad_norm_([p, q], 1.0, error_if_nonfinite=True)


def test_cosine_schedule_cycles_past_t_max_as_torch():
    torch = pytest.importorskip("torch")
    opt = SGD([_param([1.0])], lr=0.5)
    sched = CosineAnnealingLR(opt, T_max=3, eta_min=0.05)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=3, eta_min=0.05)
    ours, theirs = [], []
    for _ in range(13):  # two full periods of 2 T_max, and one more step
        ours.append(sched.get_last_lr()[0])
        theirs.append(tsched.get_last_lr()[0])
        topt.step()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert max(ours[4:]) == pytest.approx(0.5)  # back up to the base rate at epoch 6


def test_duplicate_parameters_warn_within_a_group_and_are_refused_across_groups():
    p, q = _param([1.0]), _param([2.0])
    with pytest.warns(UserWarning, match="lists 1 parameter\\(s\\) more than once"):
        opt = SGD([p, q, p], lr=0.1)
    p.grad = cr.tensor(np.array([1.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [0.9])  # stepped once, not twice
    with pytest.raises(ValueError, match="a parameter appears in two groups"):
        SGD([{"params": [p]}, {"params": [q, p]}], lr=0.1)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("RMSprop", {}),
        ("RMSprop", {"lr": 0.05, "alpha": 0.9, "momentum": 0.8, "weight_decay": 0.1}),
        ("RMSprop", {"centered": True, "eps": 1e-3}),
        ("RMSprop", {"centered": True, "momentum": 0.5}),
        ("Adagrad", {}),
        ("Adagrad", {"lr": 0.3, "lr_decay": 0.1, "weight_decay": 0.05}),
        ("Adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-4}),
    ],
)
def test_adaptive_optimizers_match_torch(name, kw, rng):
    torch = pytest.importorskip("torch")
    from chainrule import optim

    p0 = rng.standard_normal((3, 2))
    p, tp = _param(p0), torch.tensor(p0, requires_grad=True)
    opt, topt = getattr(optim, name)([p], **kw), getattr(torch.optim, name)([tp], **kw)
    for _ in range(6):
        g = rng.standard_normal((3, 2))
        p.grad, tp.grad = cr.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("ExponentialLR", {"gamma": 0.8}),
        ("LinearLR", {}),
        ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 4}),
        ("LambdaLR", {"lr_lambda": lambda e: 1 / (1 + e)}),
    ],
)
def test_more_schedules_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    from chainrule import optim

    opt = SGD([_param([1.0])], lr=0.3)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = getattr(optim, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(8):
        assert sched.get_last_lr()[0] == pytest.approx(tsched.get_last_lr()[0], rel=1e-12)
        topt.step()
        sched.step()
        tsched.step()


@pytest.mark.parametrize(
    ("opt_name", "kw"),
    [
        ("SGD", {"max_lr": 0.5, "total_steps": 20}),
        ("Adam", {"max_lr": 0.1, "total_steps": 15, "anneal_strategy": "linear", "pct_start": 0.4}),
        ("SGD", {"max_lr": 1.0, "epochs": 3, "steps_per_epoch": 7, "three_phase": True}),
        ("Adam", {"max_lr": 0.2, "total_steps": 12, "cycle_momentum": False, "div_factor": 5.0}),
    ],
)
def test_one_cycle_matches_torch(opt_name, kw):
    torch = pytest.importorskip("torch")
    from chainrule import optim

    extra = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt = getattr(optim, opt_name)([_param([1.0])], lr=0.01, **extra)
    topt = getattr(torch.optim, opt_name)([torch.zeros(1, requires_grad=True)], lr=0.01, **extra)
    sched = optim.OneCycleLR(opt, **kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    key = "momentum" if opt_name == "SGD" else "betas"
    for _ in range(sched.total_steps):
        assert sched.get_last_lr()[0] == pytest.approx(tsched.get_last_lr()[0], rel=1e-12)
        assert opt.param_groups[0][key] == pytest.approx(topt.param_groups[0][key], rel=1e-12)
        topt.step()
        sched.step()
        tsched.step()


@pytest.mark.parametrize(
    "kw",
    [
        {"patience": 2},
        {"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 2, "threshold_mode": "abs"},
        {"patience": 0, "min_lr": 0.05, "threshold": 0.1},
    ],
)
def test_reduce_on_plateau_matches_torch(kw, rng):
    torch = pytest.importorskip("torch")
    from chainrule import optim

    opt = SGD([_param([1.0])], lr=1.0)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for metric in np.concatenate([np.linspace(1, 0.5, 4), rng.uniform(0.4, 0.6, 16)]):
        sched.step(metric)
        tsched.step(metric)
        assert sched.get_last_lr()[0] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"optimizer": None}, "unknown key"),
        ({"lr_at": "x"}, "unknown key"),
        ({"last_epoch": "abc"}, "'last_epoch' must be a number"),
        ([1, 2], "expected a dict"),
    ],
)
def test_scheduler_load_state_dict_refuses_what_it_never_saved(bad, match):
    """A scheduler state read from a checkpoint cannot replace the optimizer or a method."""
    for make in (
        lambda o: CosineAnnealingLR(o, T_max=4),
        lambda o: ReduceLROnPlateau(o),
    ):
        sched = make(SGD([_param([1.0])], lr=1.0))
        with pytest.raises(ValueError, match=match):
            sched.load_state_dict(bad)
        assert isinstance(sched.optimizer, SGD)
