"""autograd.test_util's checks, run on chainrule: `check_grads`, `combo_check`, `scalar_close`.

Reverse mode is chainrule's own `gradcheck` (central differences, to the requested order),
or for a function returning a list, tuple or dict, chainrule's pytree `vjp` against them;
forward mode compares `chainrule.jvp` with a central difference along a random tangent, and
its second order checks the jvp's own gradient. Complex inputs are recorded and left out:
chainrule's gradients are real.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as _onp

import chainrule as _cr

TOL = RTOL = 1e-6
EPS = 1e-6
NOTES: list[str] = []  # what a test left out; the plugin puts them in its report


def scalar_close(a: Any, b: Any) -> bool:
    return bool(abs(a - b) < TOL or abs(a - b) / abs(a + b) < RTOL)


def check_equivalent(x: Any, y: Any) -> None:
    x, y = _onp.asarray(_value(x)), _onp.asarray(_value(y))
    assert x.shape == y.shape, f"shapes differ: {x.shape} vs {y.shape}"
    v = _onp.random.default_rng(0).standard_normal(x.shape)
    assert scalar_close(_onp.sum(x * v), _onp.sum(y * v)), f"values differ:\n{x}\n{y}"


def _value(x: Any) -> Any:
    return x.data if isinstance(x, _cr.Tensor) else x


def _leaves(out: Any) -> list[Any]:
    """A pytree output's leaves in order (lists, tuples, dicts: a function of several values)."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


def _flat(out: Any) -> _onp.ndarray:
    """An output as one float64 array: a single array as itself, a pytree's leaves joined."""
    if not isinstance(out, (list, tuple, dict)):
        return _onp.asarray(_value(out), dtype=_onp.float64)
    parts = [_onp.ravel(_onp.asarray(_value(o), dtype=_onp.float64)) for o in _leaves(out)]
    return _onp.concatenate(parts or [_onp.zeros(0)])


def _like(out: Any, rng: _onp.random.Generator) -> Any:
    """A random cotangent with the output's structure."""
    if isinstance(out, dict):
        return {k: _like(v, rng) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_like(v, rng) for v in out)
    return _cr.tensor(rng.standard_normal(_onp.shape(_value(out))))


def _vjp_close(f: Any, xs: list[_onp.ndarray], order: int) -> None:
    """Reverse mode for a pytree output, through chainrule's pytree vjp: <vjp(u), v> against
    the central difference of <u, f> along v; higher orders gradcheck <vjp(u), v> itself."""
    rng = _onp.random.default_rng(len(xs))
    out = f(*[_cr.tensor(x) for x in xs])
    u, vs = _like(out, rng), [rng.standard_normal(x.shape) for x in xs]

    def contracted(*ts: Any) -> Any:
        grads = _cr.vjp(f, *ts)[1](u)
        return sum(_cr.sum(g * _cr.tensor(v)) for g, v in zip(grads, vs))

    def at(step: float) -> float:
        return float(
            _onp.sum(_flat(u) * _flat(f(*[_cr.tensor(x + step * v) for x, v in zip(xs, vs)])))
        )

    a = float(_value(contracted(*[_cr.tensor(x) for x in xs])))
    b = (at(EPS / 2) - at(-EPS / 2)) / EPS
    assert scalar_close(a, b), f"reverse-mode check failed: analytic {a}, numeric {b}"
    if order > 1:
        _cr.gradcheck(contracted, xs, atol=TOL, rtol=RTOL, order=order - 1)


def _jvp_close(f: Any, xs: list[_onp.ndarray], rng: _onp.random.Generator) -> None:
    ts = [rng.standard_normal(x.shape) for x in xs]
    _, exact = _cr.jvp(f, [_cr.tensor(x) for x in xs], [_cr.tensor(t) for t in ts])

    def at(step: float) -> _onp.ndarray:
        return _flat(f(*[_cr.tensor(x + step * t) for x, t in zip(xs, ts)]))

    numeric = (at(EPS / 2) - at(-EPS / 2)) / EPS
    w = rng.standard_normal(numeric.shape)
    a, b = float(_onp.sum(w * _flat(exact))), float(_onp.sum(w * numeric))
    assert scalar_close(a, b), f"forward-mode check failed: analytic {a}, numeric {b}"


def check_grads(fun: Any, argnum: Any = 0, modes: Any = ("fwd", "rev"), order: int = 2) -> Any:
    nums = (argnum,) if isinstance(argnum, int) else tuple(argnum)

    def check(*args: Any, **kwargs: Any) -> None:
        # a list/tuple argument is differentiated element by element and rebuilt for fun
        groups = [args[i] if isinstance(args[i], (list, tuple)) else None for i in nums]
        flat = [a for i, grp in zip(nums, groups) for a in (grp if grp is not None else [args[i]])]
        if any(_onp.iscomplexobj(_value(a)) for a in flat):
            NOTES.append("complex inputs left out (chainrule's gradients are real)")
            return

        def f(*xs: Any) -> Any:
            full, k = list(args), 0
            for i, grp in zip(nums, groups):
                n = 1 if grp is None else len(grp)
                full[i] = xs[k] if grp is None else type(grp)(xs[k : k + n])
                k += n
            return fun(*full, **kwargs)

        xs = [_onp.asarray(_value(a), dtype=_onp.float64) for a in flat]
        tree = isinstance(f(*[_cr.tensor(x) for x in xs]), (list, tuple, dict))
        if "rev" in modes and tree:  # several outputs: chainrule's pytree vjp
            _vjp_close(f, xs, order)
        elif "rev" in modes:
            _cr.gradcheck(f, xs, atol=TOL, rtol=RTOL, order=order)
        if "fwd" in modes:
            rng = _onp.random.default_rng(len(xs))
            _jvp_close(f, xs, rng)
            if order > 1:  # the jvp is itself differentiable in the primals and tangents
                n = len(xs)

                def jvp_of(*xt: Any) -> Any:
                    tangent = _cr.jvp(f, list(xt[:n]), list(xt[n:]))[1]
                    if not tree:
                        return tangent
                    return _cr.concatenate([_cr.reshape(t, (-1,)) for t in _leaves(tangent)])

                tangents = [rng.standard_normal(x.shape) for x in xs]
                _cr.gradcheck(jvp_of, xs + tangents, atol=TOL, rtol=RTOL, order=order - 1)

    return check


def combo_check(fun: Any, *args: Any, **kwargs: Any) -> Any:
    """check_grads over every combination of the given argument and keyword values."""

    def check(*arg_lists: Any, **kwarg_lists: Any) -> None:
        keys = list(kwarg_lists)
        for values in itertools.product(*arg_lists):
            for kw in itertools.product(*(kwarg_lists[k] for k in keys)):
                check_grads(fun, *args, **kwargs)(*values, **dict(zip(keys, kw)))

    return check
