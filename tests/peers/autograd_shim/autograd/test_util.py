"""autograd.test_util's checks, run on chainrule: `check_grads`, `combo_check`, `scalar_close`.

Reverse mode is chainrule's own `gradcheck` (central differences, to the requested order);
forward mode compares `chainrule.jvp` with a central difference along a random tangent, and
its second order checks the jvp's own gradient. Complex inputs are recorded and left out:
chainrule's gradients are real.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as _onp

import chainrule as _cr
from autograd import Unsupported

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


def _jvp_close(f: Any, xs: list[_onp.ndarray], rng: _onp.random.Generator) -> None:
    ts = [rng.standard_normal(x.shape) for x in xs]
    _, exact = _cr.jvp(f, [_cr.tensor(x) for x in xs], [_cr.tensor(t) for t in ts])

    def at(step: float) -> _onp.ndarray:
        out = f(*[_cr.tensor(x + step * t) for x, t in zip(xs, ts)])
        return _onp.asarray(_value(out), dtype=_onp.float64)

    numeric = (at(EPS / 2) - at(-EPS / 2)) / EPS
    w = rng.standard_normal(numeric.shape)
    a, b = float(_onp.sum(w * _value(exact))), float(_onp.sum(w * numeric))
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
        out = f(*[_cr.tensor(x) for x in xs])
        if isinstance(out, (list, tuple, dict)):
            raise Unsupported(f"chainrule differentiates Tensor outputs, not {type(out).__name__}s")
        if "rev" in modes:
            _cr.gradcheck(f, xs, atol=TOL, rtol=RTOL, order=order)
        if "fwd" in modes:
            rng = _onp.random.default_rng(len(xs))
            _jvp_close(f, xs, rng)
            if order > 1:  # the jvp is itself differentiable in the primals and tangents
                n = len(xs)

                def jvp_of(*xt: Any) -> Any:
                    return _cr.jvp(f, list(xt[:n]), list(xt[n:]))[1]

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
