"""THE op table: one OpDef per op (forward, one vjp per input, SymPy twin, domain, doc), and
everything else chainrule knows about it: the names the parser reads, the explainer's rule,
the trace's formula per input, the graph label (see OpDef). The parser, the explainer, the
engine evaluator, the trace, the graph and docs/ops.md derive their tables from `OPS`.

Every vjp is written once against an array namespace `xp`: `NUMPY_NS` for the fast path (plain
arrays) and `TENSOR_NS` (chainrule's own differentiable functions, filled in by `composite.py`)
when the backward pass is itself recorded for higher-order derivatives. Rules never unbroadcast:
the engine sums a gradient back to its input's shape. Imports NumPy only; SymPy twins are
functions of the `sympy` module, called lazily by tests, docs and the explainer. Functions a
learner types that are formulas of the primitives (gelu, sec, log10) are entries too
(`defcomposite`): the engine runs their formula, the parser and the explainer know their name.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from chainrule import blas as _blas
from chainrule import random as _random
from chainrule.errors import OpError
from chainrule.mode import _state
from chainrule.tensor import Tensor, _batched, _vmap, apply

# --------------------------------------------------------------------------- the table types


@dataclass(frozen=True)
class Domain:
    """Where tests sample an op's inputs: uniform in [lo, hi], keeping |x| >= gap (kinks)."""

    lo: float = -2.0
    hi: float = 2.0
    gap: float = 0.1

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        x = rng.uniform(self.lo, self.hi, size=shape)
        if self.gap:
            x = np.where(np.abs(x) < self.gap, np.copysign(self.gap, x) + x, x)
        return np.asarray(x, dtype=dtype)


REALS = Domain()
POSITIVE = Domain(0.2, 3.0, 0.0)
UNIT = Domain(-0.9, 0.9, 0.05)
SMALL = Domain(-1.2, 1.2, 0.0)

Case = tuple[tuple[Any, ...], dict[str, Any]]  # (inputs, params)


# A trace formula: a template in the input names, `out` and `g` (see OpDef.local), or a function
# of (labels, params) that returns one (a formula that depends on a parameter or a constant).
Local = str | Callable[[dict[str, str], dict[str, Any]], str]


@dataclass(frozen=True)
class OpDef:
    """One op: `forward(*arrays, **params)` and `vjps[i](g, out, *inputs, xp, **params)`.

    Besides the engine's fields, the entry carries what the rest of chainrule knows about the
    op, so that the parser, the explainer, the trace, the graph and docs/ops.md read one place:

    - `names`: what a learner types for it (the parser's names and aliases, `ln` and `log`);
      `nargs` the argument counts the parser accepts (default: `arity`); `expand` makes the
      parser write the twin itself (log10 x -> ln x / ln 10) instead of a named function.
    - `rule`: the explainer's named rule, a rule class of `symbolic/rules.py` (`"TrigRule"`) or
      a title for the generic named rule (`"GELU"`); `dsym(sp, F, u)` is f'(u) as a textbook
      writes it (`F.sigmoid(u)` names another op's SymPy function; default: SymPy's diff of
      the twin); `kink` says where the derivative does not exist and what chainrule uses there.
    - `local`: the trace's formula per input (one for a variadic op): the local derivative
      d out / d input written in the input names (`args`, default x, y, z), `out` and
      functions of the trace's evaluator (`"out*(1 - out)"`, `"[x > 0]"`), or, when the
      vjp is not the upstream `g` times an elementwise factor, the vjp itself (`"g @ y^T"`).
    - `infix`: the graph label (template, precedence of the result, least precedence of each
      operand left bare); without it the label is `name(args)`.
    - `compose`: a composite (a function a learner types, built from primitives): the engine
      function, which the entry runs instead of `forward` and `vjps`.
    - `differs`: how it differs from PyTorch and NumPy (docs/ops.md lists these).
    - `returns`: for an op with no derivative (a predicate, indices, a new tensor; see
      `defconst`), what it returns; its result carries no gradient at all, as PyTorch's.
    """

    name: str
    forward: Callable[..., Any] | None
    vjps: tuple[Callable[..., Any] | None, ...]
    sym: Callable[..., Any] | None = None  # sym(sympy, *symbols) -> expression
    domain: Domain = REALS
    doc: str = ""
    variadic: bool = False  # one vjp for every input, called with argnum=i
    cases: Callable[[np.random.Generator, Any, OpDef], list[Case]] | None = None
    nosym: str = ""  # why there is no SymPy twin
    arity: int = field(default=1)
    names: tuple[str, ...] = ()
    nargs: tuple[int, ...] = ()
    expand: bool = False
    rule: str = ""
    dsym: Callable[..., Any] | None = None
    kink: str = ""
    local: tuple[Local, ...] = ()
    infix: tuple[str, int, tuple[int, ...]] | None = None
    args: tuple[str, ...] = ()
    compose: Callable[..., Any] | None = None
    differs: str = ""
    user: bool = False  # defined by a user through chainrule.defop (not in docs/ops.md)
    # vmap's rule (batching.Batched -> the result, batch at axis 0); None: the op broadcasts
    # elementwise, and batching.py's generic rule moves the batch axes to the front.
    batch: Callable[..., Any] | None = None
    # What an op without a derivative returns ("bool", "int64 indices"; see `defconst`);
    # empty for every differentiable op.
    returns: str = ""

    @property
    def differentiable(self) -> bool:
        """Whether a gradient flows through the op (else its result never joins the graph)."""
        return not self.returns

    @property
    def primitive(self) -> bool:
        """Whether the engine records it as one node (else it runs `compose`)."""
        return self.compose is None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input names the trace formulas use."""
        return self.args or ("x", "y", "z", "w")[: builtins.max(self.arity, 1)]

    def __call__(self, *args: Any, **params: Any) -> Tensor:
        if params and ("dim" in params or "keepdim" in params):  # PyTorch's axis/keepdims
            params = _numpy_axis_names(self.name, params)
        if self.compose is not None:
            ts = tuple(a if isinstance(a, Tensor) else Tensor(a) for a in args)
            if _state.levels and _batched(ts, params):  # inside vmap: see batching.py
                return _vmap.batch_apply(self, ts, params)
            return self.compose(*ts, **params)
        return apply(self, *args, **params)

    def __repr__(self) -> str:
        kind = "op" if self.primitive else "composite"
        return f"<{kind} {self.name}: {self.doc}>"


def _numpy_axis_names(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """params with dim=/keepdim= renamed axis=/keepdims=; both spellings at once is an error."""
    params = dict(params)
    for torch_name, numpy_name in (("dim", "axis"), ("keepdim", "keepdims")):
        if torch_name in params:
            if numpy_name in params:
                raise TypeError(f"{name}: got both {numpy_name}= and {torch_name}=; give one")
            params[numpy_name] = params.pop(torch_name)
    return params


OPS: dict[str, OpDef] = {}
NAMES: dict[str, OpDef] = {}  # every name a learner may type -> its entry


def defop(
    name: str, forward: Callable[..., Any], *vjps: Callable[..., Any] | None, **fields: Any
) -> OpDef:
    """Register a primitive. Rejects duplicate names and a vjp count that disagrees with arity."""
    arity = fields.pop("arity", len(vjps))
    if not fields.get("variadic") and len(vjps) != arity:
        raise ValueError(f"defop {name!r}: {len(vjps)} vjps for {arity} inputs")
    return _register(OpDef(name, forward, tuple(vjps), arity=arity, **fields))


def defcomposite(name: str, compose: Callable[..., Any], **fields: Any) -> OpDef:
    """Register a function a learner types that the engine builds from primitives (`compose`),
    so the parser, the explainer and the docs know it (gelu, silu, sec, log10, ...)."""
    return _register(OpDef(name, None, (), compose=compose, **fields))


def defconst(name: str, compute: Callable[..., Any], returns: str, **fields: Any) -> OpDef:
    """Register an op without a derivative: a predicate, indices, a count or a new tensor
    (`returns` says which). `compute(*arrays, **params)` runs on the inputs' values, and its
    result never joins the graph (requires_grad False, as PyTorch's isnan, argsort or
    one_hot): no gradient reaches the inputs through it, not even a zero one."""

    def run(*xs: Any, **params: Any) -> Tensor:
        return Tensor(np.asarray(compute(*(_np(x) for x in xs), **params)))

    fields.setdefault("nosym", f"not differentiable: returns {returns}")
    return _register(OpDef(name, None, (), compose=run, returns=returns, **fields))


def _register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"defop: an op named {op.name!r} is already defined")
    if not (op.sym or op.nosym):
        raise ValueError(f"defop {op.name!r}: give a SymPy twin (sym=) or the reason for none")
    if taken := [n for n in op.names if n in NAMES]:
        raise ValueError(f"defop {op.name!r}: the name {taken[0]!r} is {NAMES[taken[0]].name}'s")
    if op.names and op.sym is None:
        raise ValueError(f"defop {op.name!r}: a name for the parser needs a SymPy twin (sym=)")
    wanted = 1 if op.variadic else op.arity
    if op.local and len(op.local) != wanted:
        raise ValueError(f"defop {op.name!r}: {len(op.local)} trace formulas for {wanted} inputs")
    OPS[op.name] = op
    NAMES.update(dict.fromkeys(op.names, op))
    return op


# --------------------------------------------------------------------------- helpers


def _np(a: Any) -> Any:
    """The raw array of a Tensor (masks and counts in vjps are constants: no graph needed)."""
    return a.data if isinstance(a, Tensor) else a


def _axes(ndim: int, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim if ndim else 0 for a in axis)


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """`shape` with the reduced axes set to 1 (the keepdims shape)."""
    axes = _axes(len(shape), axis)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _np_sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to `shape` (the one unbroadcast of the engine)."""
    lead = g.ndim - len(shape)
    if lead == 1 and shape and g.shape[1:] == shape:  # a bias over a batch: one reduce
        return np.add.reduce(g, axis=0)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return builtins.all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _unsqueeze_example(x: Any, rank: int) -> Any:
    """A batched value (batch at axis 0) with singleton axes after the batch axis, so one
    example has `rank` axes."""
    lack = rank - (x.ndim - 1)
    return reshape(x, shape=(x.shape[0], *(1,) * lack, *x.shape[1:])) if lack > 0 else x


def _moveaxis(x: Any, src: int, dst: int) -> Any:
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return transpose(x, axes=tuple(perm))


def batch_loop(b: Any) -> Any:
    """A batching rule for any op: the op once per example, the results stacked. Correct for
    every op and as slow as a Python loop; the rule to start from for an op vmap cannot batch
    otherwise (a dedicated rule calls the op once)."""
    rows = []
    for i in range(b.size):
        args = (a[i] if batched else a for a, batched in zip(b.args, b.batched))
        params = {k: (v[i] if k in b.bparams else v) for k, v in b.params.items()}
        r = b.op(*args, **params)
        rows.append(reshape(r, shape=(1, *r.shape)))
    return concatenate(*rows, axis=0)


def batch_along(default: Any = None, *, flat: bool = False) -> Callable[[Any], Any]:
    """The batching rule of an op that works along one `axis` of its first input (`default`
    when not given): the batch axis goes in front and the axis shifts past it, so the op
    runs once. `flat`: axis None means NumPy's flattened input (cumsum), not every axis."""

    def rule(b: Any) -> Any:
        if b.bparams:
            return batch_loop(b)
        x, r = b.value(0), b.rank(0)
        axis = b.params.get("axis", default)
        if axis is None and flat:
            out = b.op(reshape(x, shape=(b.size, -1)), *b.args[1:], **{**b.params, "axis": 1})
            # keepdims of a flattened reduction (argmax): one singleton per example axis
            return reshape(out, shape=(b.size, *(1,) * r)) if b.params.get("keepdims") else out
        if axis is None:
            axis = tuple(range(1, r + 1))
        else:
            axis = _axes(builtins.max(r, 1), axis)[0] + 1 if r else 1
        return b.op(x, *b.args[1:], **{**b.params, "axis": axis})

    rule.__doc__ = "vmap along one axis: the batch axis in front, the op's axis shifted past it" + (
        " (None: the flattened example)" if flat else ""
    )
    return rule


def batch_compose(b: Any) -> Any:
    """vmap of a composite: its formula run once on the whole batch, each primitive by its
    own rule (a batched parameter, a constant to the formula, runs per example)."""
    if b.bparams:
        return batch_loop(b)
    return b.via(lambda *xs: b.op.compose(*xs, **b.params))


def _np_scatter_add(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        z[index] = g  # basic indexing cannot repeat an element
    else:
        np.add.at(z, index, g)  # duplicate indices accumulate
    return z


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows, so sigmoid(-1000) is 0 with no warning.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    # initial=-inf: an empty slice's logsumexp is log(0) = -inf, as torch (no max error)
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)  # a slice of all -inf stays -inf, not NaN
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer there
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return (
        out
        if keepdims
        else out.reshape([n for i, n in enumerate(out.shape) if i not in _axes(x.ndim, axis)])
    )


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # NumPy has no erf; math.erf is exact but elementwise
        return np.vectorize(math.erf, otypes=[np.asarray(x).dtype])(x)
    return erf(x)


def _concat(*xs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def _swap(x: Any) -> Any:
    # the method, not np.swapaxes: a third of the time on the small matrices of a W2 step
    if type(x) is np.ndarray:
        return x.swapaxes(-1, -2)
    return TENSOR_NS.swapaxes(x, -1, -2) if isinstance(x, Tensor) else np.swapaxes(x, -1, -2)


def _ext_weights(x: Any, y: Any, g: Any, sign: int) -> np.ndarray:
    """x's share of g in max (sign 1) or min (sign -1), as torch: 0 where x loses, 1/2 at a tie,
    1 where x wins or either is NaN (the NaN output then keeps its gradient on both inputs)."""
    xa, ya = _np(x), _np(y)
    loses = xa < ya if sign > 0 else xa > ya
    return (1 - loses - 0.5 * (xa == ya)).astype(g.dtype)


def _cases(*shape_sets: tuple[tuple[int, ...], ...], **params: Any) -> Callable[..., list[Case]]:
    """Test inputs for elementwise ops: the op's domain sampled at each tuple of shapes."""

    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        return [
            (tuple(op.domain.sample(rng, s, dtype) for s in shapes), dict(params))
            for shapes in shape_sets
        ]

    return make


UNARY = _cases(((),), ((4,),), ((2, 3),))
BINARY = _cases(((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((), (2, 2)))

# --------------------------------------------------------------------------- elementwise

add = defop(
    "add",
    np.add,
    lambda g, out, x, y, xp: g,
    lambda g, out, x, y, xp: g,
    sym=lambda sp, x, y: x + y,
    cases=BINARY,
    doc="d(x + y) = dx + dy",
    infix=("{0} + {1}", 1, (1, 1)),
    local=("1", "1"),
)
mul = defop(
    "mul",
    np.multiply,
    lambda g, out, x, y, xp: g * y,
    lambda g, out, x, y, xp: g * x,
    sym=lambda sp, x, y: x * y,
    cases=BINARY,
    doc="d(xy) = y dx + x dy",
    infix=("{0}*{1}", 2, (2, 2)),
    local=("y", "x"),
)
div = defop(
    "div",
    np.divide,
    lambda g, out, x, y, xp: g / y,
    lambda g, out, x, y, xp: -g * out / y,
    sym=lambda sp, x, y: x / y,
    cases=BINARY,
    domain=POSITIVE,
    doc="d(x/y) = dx/y - x dy/y^2",
    infix=("{0}/{1}", 2, (2, 3)),
    local=("1/y", "-x/y^2"),
)
# sub is x + (-y) mathematically; a primitive so `a - b` costs one op, not two.
sub = defop(
    "sub",
    np.subtract,
    lambda g, out, x, y, xp: g,
    lambda g, out, x, y, xp: -g,
    sym=lambda sp, x, y: x - y,
    cases=BINARY,
    doc="d(x - y) = dx - dy",
    infix=("{0} - {1}", 1, (1, 2)),
    local=("1", "-1"),
)
neg = defop(
    "neg",
    np.negative,
    lambda g, out, x, xp: -g,
    sym=lambda sp, x: -x,
    cases=UNARY,
    doc="d(-x) = -dx",
    infix=("-{0}", 3, (3,)),
    local=("-1",),
)


def _power_local(labels: dict[str, str], params: dict[str, Any]) -> str:
    """d x^n/dx for a literal integer exponent as a learner writes it (2*x, 3*x^2)."""
    n = labels["y"]
    if n.isdigit():
        return {"0": "0", "1": "1", "2": "2*x"}.get(n, f"{n}*x^{int(n) - 1}")
    return "y*x^(y - 1)"


def _pow_vjp_exponent(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """d(x^y)/dy = x^y ln x, as torch: 0 where x = 0 and y >= 0, x^y ln 0 (+-inf) where y < 0."""
    if isinstance(x, (int, float)):
        if x > 0:
            return g * out * math.log(x)
        if x < 0:
            return g * math.nan
    xa, ya = _np(x), _np(y)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = NaN here
        edge = np.where((xa == 0) & (ya >= 0), 0, _np(out) * np.log(xa)).astype(g.dtype)
    if not (isinstance(g, Tensor) and isinstance(x, Tensor)):  # the fast path, or x constant
        return g * edge
    # recorded: x > 0 differentiates through log; elsewhere the value is a constant (+-inf, NaN)
    positive = xa > 0
    return xp.where(positive, g * out * xp.log(xp.where(positive, x, 1)), g * edge)


def _pow_vjp_base(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """d(x^y)/dx = y x^(y-1), and exactly 0 where y = 0, as torch (0 * 0^-1 would be NaN)."""
    if isinstance(y, (int, float)):
        return g * 0 if y == 0 else g * y * x ** (y - 1)
    zero = _np(y) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = g * y * x ** (y - 1)
    return xp.where(zero, 0, d) if zero.any() else d


power = defop(
    "power",
    np.power,
    _pow_vjp_base,
    _pow_vjp_exponent,
    sym=lambda sp, x, y: x**y,
    domain=POSITIVE,
    cases=BINARY,
    doc="d(x^y) = y x^(y-1) dx + x^y ln(x) dy",
    infix=("{0}^{1}", 4, (5, 4)),
    local=(_power_local, "out*log(x)"),
    differs="NumPy's pow: (-inf)^0.5 is NaN (PyTorch inf); at x = -0 with y = ±0.5 NumPy's "
    "values, not PyTorch's sqrt/rsqrt",
)
exp = defop(
    "exp",
    np.exp,
    lambda g, out, x, xp: g * out,
    sym=lambda sp, x: sp.exp(x),
    cases=UNARY,
    doc="d e^x = e^x dx",
    names=("exp",),
    local=("out",),
)
log = defop(
    "log",
    np.log,
    lambda g, out, x, xp: g / x,
    sym=lambda sp, x: sp.log(x),
    domain=POSITIVE,
    cases=UNARY,
    doc="d ln x = dx / x",
    names=("log", "ln"),
    nargs=(1, 2),
    local=("1/x",),
)
sin = defop(
    "sin",
    np.sin,
    lambda g, out, x, xp: g * xp.cos(x),
    sym=lambda sp, x: sp.sin(x),
    cases=UNARY,
    doc="d sin x = cos x dx",
    names=("sin",),
    rule="TrigRule",
    local=("cos(x)",),
)
cos = defop(
    "cos",
    np.cos,
    lambda g, out, x, xp: -g * xp.sin(x),
    sym=lambda sp, x: sp.cos(x),
    cases=UNARY,
    doc="d cos x = -sin x dx",
    names=("cos",),
    rule="TrigRule",
    local=("-sin(x)",),
)
tan = defop(
    "tan",
    np.tan,
    lambda g, out, x, xp: g * (1 + out * out),
    sym=lambda sp, x: sp.tan(x),
    domain=SMALL,
    cases=UNARY,
    doc="d tan x = sec^2 x dx",
    names=("tan",),
    rule="TrigRule",
    dsym=lambda sp, F, u: sp.sec(u) ** 2,
    local=("1 + out^2",),
)
arcsin = defop(
    "arcsin",
    np.arcsin,
    lambda g, out, x, xp: g / xp.sqrt(1 - x * x),
    sym=lambda sp, x: sp.asin(x),
    domain=UNIT,
    cases=UNARY,
    doc="d asin x = dx / sqrt(1 - x^2)",
    names=("arcsin", "asin"),
    rule="InverseTrigRule",
    local=("1/sqrt(1 - x^2)",),
)
arccos = defop(
    "arccos",
    np.arccos,
    lambda g, out, x, xp: -g / xp.sqrt(1 - x * x),
    sym=lambda sp, x: sp.acos(x),
    domain=UNIT,
    cases=UNARY,
    doc="d acos x = -dx / sqrt(1 - x^2)",
    names=("arccos", "acos"),
    rule="InverseTrigRule",
    local=("-1/sqrt(1 - x^2)",),
)
arctan = defop(
    "arctan",
    np.arctan,
    lambda g, out, x, xp: g / (1 + x * x),
    sym=lambda sp, x: sp.atan(x),
    cases=UNARY,
    doc="d atan x = dx / (1 + x^2)",
    names=("arctan", "atan"),
    rule="InverseTrigRule",
    local=("1/(1 + x^2)",),
)
sinh = defop(
    "sinh",
    np.sinh,
    lambda g, out, x, xp: g * xp.cosh(x),
    sym=lambda sp, x: sp.sinh(x),
    cases=UNARY,
    doc="d sinh x = cosh x dx",
    names=("sinh",),
    rule="HyperbolicRule",
    local=("cosh(x)",),
)
cosh = defop(
    "cosh",
    np.cosh,
    lambda g, out, x, xp: g * xp.sinh(x),
    sym=lambda sp, x: sp.cosh(x),
    cases=UNARY,
    doc="d cosh x = sinh x dx",
    names=("cosh",),
    rule="HyperbolicRule",
    local=("sinh(x)",),
)
# tanh, sigmoid and softplus are primitives for stability: their forwards never overflow, and
# their vjps reuse the output (tanh' = 1 - tanh^2, sigmoid' = s(1 - s)) as the seeds derive.
tanh = defop(
    "tanh",
    np.tanh,
    lambda g, out, x, xp: g * (1 - out * out),
    sym=lambda sp, x: sp.tanh(x),
    cases=UNARY,
    doc="d tanh x = (1 - tanh^2 x) dx",
    names=("tanh",),
    rule="HyperbolicRule",
    dsym=lambda sp, F, u: 1 - sp.tanh(u) ** 2,
    local=("1 - out^2",),
)
sigmoid = defop(
    "sigmoid",
    _sigmoid,
    lambda g, out, x, xp: g * out * (1 - out),
    sym=lambda sp, x: 1 / (1 + sp.exp(-x)),
    cases=UNARY,
    doc="d s(x) = s(x)(1 - s(x)) dx",
    names=("sigmoid", "sigma", "σ"),
    rule="SigmoidRule",
    dsym=lambda sp, F, u: F.sigmoid(u) * (1 - F.sigmoid(u)),
    local=("out*(1 - out)",),
)
softplus = defop(
    "softplus",
    lambda x: np.logaddexp(0, x),
    lambda g, out, x, xp: g * xp.sigmoid(x),
    sym=lambda sp, x: sp.log(1 + sp.exp(x)),
    cases=UNARY,
    doc="d ln(1 + e^x) = s(x) dx",
    names=("softplus",),
    rule="SoftplusRule",
    dsym=lambda sp, F, u: F.sigmoid(u),
    local=("sigmoid(x)",),
    differs="the parser and the explainer use beta = 1 (cr.softplus takes beta and threshold)",
)
sqrt = defop(
    "sqrt",
    np.sqrt,
    lambda g, out, x, xp: g / (2 * out),
    sym=lambda sp, x: sp.sqrt(x),
    domain=POSITIVE,
    cases=UNARY,
    doc="d sqrt x = dx / (2 sqrt x); inf at 0, as torch",
    names=("sqrt",),
    expand=True,
    kink="at x = 0 the derivative is inf, as PyTorch (NumPy has no gradients)",
    local=("1/(2*out)",),
)
erf = defop(
    "erf",
    _erf,
    lambda g, out, x, xp: g * (2 / math.sqrt(math.pi)) * xp.exp(-x * x),
    sym=lambda sp, x: sp.erf(x),
    cases=UNARY,
    doc="d erf x = 2/sqrt(pi) e^(-x^2) dx",
    names=("erf",),
    rule="Error function",
    dsym=lambda sp, F, u: 2 / sp.sqrt(sp.pi) * sp.exp(-(u**2)),
    local=("2/sqrt(pi)*exp(-x^2)",),
    differs="without SciPy the forward runs math.erf per element (exact, slower)",
)
# abs'(0) := 0 and relu'(0) := 0, as in PyTorch (the seed's convention for relu).
abs = defop(
    "abs",
    np.abs,
    lambda g, out, x, xp: g * np.sign(_np(x)).astype(g.dtype),
    sym=lambda sp, x: sp.Abs(x),
    cases=UNARY,
    doc="d|x| = sign(x) dx",
    names=("abs",),
    rule="AbsRule",
    dsym=lambda sp, F, u: sp.sign(u),
    kink="at x = 0 abs has no derivative; chainrule uses sign(0) = 0, as PyTorch",
    differs="abs'(NaN) is NaN, as autograd (PyTorch gives 0)",
    local=("sign(x)",),
)
relu = defop(
    "relu",
    lambda x: np.maximum(x, 0),
    # g * mask rather than where(mask, g, 0): the same values, 5x faster on (32, 128) arrays.
    lambda g, out, x, xp: g * (_np(x) > 0),
    sym=lambda sp, x: _off_reals(sp, x) or sp.Max(0, x),
    cases=UNARY,
    doc="d max(0, x) = [x > 0] dx",
    names=("relu", "ReLU"),
    rule="ReluRule",
    dsym=lambda sp, F, u: sp.Heaviside(u, 0),
    kink="at x = 0 relu has no derivative; chainrule uses relu'(0) = 0, as PyTorch",
    differs="relu'(NaN) is 0, as autograd (PyTorch passes g): the mask x > 0 is the fast path",
    local=("[x > 0]",),
)
maximum = defop(
    "maximum",
    np.maximum,
    lambda g, out, x, y, xp: g * _ext_weights(x, y, g, 1),
    lambda g, out, x, y, xp: g * _ext_weights(y, x, g, 1),
    sym=lambda sp, *xs: sp.Max(*xs),
    cases=BINARY,
    doc="d max(x, y) = [x > y] dx + [y > x] dy; ties split the gradient",
    names=("max", "maximum"),
    nargs=(2, 3, 4),
    local=("[x > y] + [x == y]/2", "[y > x] + [x == y]/2"),
    differs="ties split the gradient equally; a NaN operand sends the full gradient to both "
    "(both as torch.maximum; autograd gives 0)",
)
minimum = defop(
    "minimum",
    np.minimum,
    lambda g, out, x, y, xp: g * _ext_weights(x, y, g, -1),
    lambda g, out, x, y, xp: g * _ext_weights(y, x, g, -1),
    sym=lambda sp, *xs: sp.Min(*xs),
    cases=BINARY,
    doc="d min(x, y) = [x < y] dx + [y < x] dy; ties split the gradient",
    names=("min", "minimum"),
    nargs=(2, 3, 4),
    local=("[x < y] + [x == y]/2", "[y < x] + [x == y]/2"),
    differs="ties split the gradient equally; a NaN operand sends the full gradient to both "
    "(both as torch.minimum; autograd gives 0)",
)


def _where_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    c = rng.uniform(size=(2, 3)) > 0.5
    return [((c, REALS.sample(rng, (2, 3), dtype), REALS.sample(rng, (3,), dtype)), {})]


where = defop(
    "where",
    np.where,
    None,
    lambda g, out, c, x, y, xp: xp.where(_np(c), g, 0),
    lambda g, out, c, x, y, xp: xp.where(_np(c), 0, g),
    cases=_where_cases,
    nosym="selects by a boolean array",
    doc="d where(c, x, y) = [c] dx + [not c] dy",
    args=("c", "x", "y"),
    local=("", "where(c, g, 0)", "where(c, 0, g)"),
)


def _clip_mask(x: Any, a_min: Any, a_max: Any) -> np.ndarray:
    xa = _np(x)
    keep = np.ones(xa.shape, dtype=bool)
    if a_min is not None:
        keep &= xa >= a_min
    if a_max is not None:
        keep &= xa <= a_max
    return keep


def _clip_local(labels: dict[str, str], params: dict[str, Any]) -> str:
    lo, hi = (params.get(k) for k in ("a_min", "a_max"))
    tests = [f"x >= {lo}" if np.ndim(lo) == 0 else "x >= a_min"] if lo is not None else []
    tests += [f"x <= {hi}" if np.ndim(hi) == 0 else "x <= a_max"] if hi is not None else []
    return "*".join(f"[{t}]" for t in tests) or "1"


clip = defop(
    "clip",
    lambda x, a_min=None, a_max=None: np.clip(x, a_min, a_max),
    lambda g, out, x, xp, a_min=None, a_max=None: xp.where(_clip_mask(x, a_min, a_max), g, 0),
    cases=_cases(((3, 4),), a_min=-0.5, a_max=0.7),
    nosym="piecewise by its bounds",
    doc="d clip(x, lo, hi) = [lo <= x <= hi] dx (bounds included, as torch)",
    local=(_clip_local,),
    differs="the gradient passes at the bounds themselves (a_min <= x <= a_max), as torch.clamp",
)
astype = defop(
    "astype",
    lambda x, dtype: x.astype(dtype),
    lambda g, out, x, xp, dtype: xp.astype(g, _np(x).dtype),
    cases=_cases(((3,),), dtype=np.float64),
    nosym="changes precision only",
    doc="d x.astype(t) = dx, cast back to x's dtype",
    local=("1",),
)

# --------------------------------------------------------------------------- reductions


def _reduce_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    x = op.domain.sample(rng, (3, 4), dtype)
    return [
        ((x,), {"axis": a, "keepdims": k})
        for a, k in [(None, False), (0, False), (1, True), ((0, 1), False), (-1, False)]
    ]


def _expand(g: Any, shape: tuple[int, ...], axis: Any, xp: Any) -> Any:
    """A reduced gradient reshaped to keepdims form, ready to broadcast over `shape`."""
    return xp.reshape(g, _kept_shape(shape, axis))


def _extremum_vjp(
    g: Any,
    out: Any,
    x: Any,
    xp: Any,
    axis: Any = None,
    keepdims: bool = False,
) -> Any:
    """max/min: ties share the gradient equally; a slice whose result is NaN gets a NaN gradient
    everywhere (torch.amax's and autograd's convention: no element equals NaN, 0/0 counts)."""
    shape = _kept_shape(x.shape, axis)
    mask = _np(x) == np.reshape(_np(out), shape)
    count = mask.sum(axis=_axes(len(shape), axis), keepdims=True)
    with np.errstate(invalid="ignore"):
        share = (mask / count).astype(g.dtype)
    return xp.reshape(g, shape) * share


def _reduce_batch(b: Any) -> Any:
    """vmap of a reduction: the example's axes sit one past the batch axis; None is all of them."""
    r, axis = b.rank(0), b.params.get("axis")
    axes = tuple(range(1, r + 1)) if axis is None else tuple(a + 1 for a in _axes(r, axis))
    return b.op(b.args[0], **{**b.params, "axis": axes})


sum = defop(
    "sum",
    lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    lambda g, out, x, xp, axis=None, keepdims=False: xp.broadcast_to(
        _expand(g, x.shape, axis, xp), x.shape
    ),
    cases=_reduce_cases,
    nosym="a reduction",
    doc="d sum(x) = sum(dx)",
    local=("broadcast(g)",),
    batch=_reduce_batch,
)
max = defop(
    "max",
    lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
    _extremum_vjp,
    cases=_reduce_cases,
    nosym="a reduction",
    doc="d max(x) = dx at the maximum (ties share)",
    local=("g at argmax(x)",),
    differs="tied maxima share the gradient and a NaN slice gets NaN everywhere (as torch.amax; "
    "torch.max(x, dim) picks one index)",
    batch=_reduce_batch,
)
min = defop(
    "min",
    lambda x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
    _extremum_vjp,
    cases=_reduce_cases,
    nosym="a reduction",
    doc="d min(x) = dx at the minimum (ties share)",
    local=("g at argmin(x)",),
    differs="tied minima share the gradient and a NaN slice gets NaN everywhere (as torch.amin; "
    "torch.min(x, dim) picks one index)",
    batch=_reduce_batch,
)
# logsumexp is a primitive for stability (shift by the max) and speed (softmax cross-entropy).
logsumexp = defop(
    "logsumexp",
    _logsumexp,
    lambda g, out, x, xp, axis=None, keepdims=False: (
        _expand(g, x.shape, axis, xp) * xp.exp(x - _expand(out, x.shape, axis, xp))
    ),
    cases=_reduce_cases,
    nosym="a reduction",
    doc="d lse(x) = softmax(x) . dx",
    local=("g * softmax(x)",),
    batch=_reduce_batch,
)


def _label_index(z: Any, labels: np.ndarray) -> Any:
    """The index that picks z[..., labels]: rows and labels for (N, C), the label for (C,)."""
    return (np.arange(labels.shape[0]), labels) if labels.ndim else (labels,)


def _np_softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row max so exp never overflows."""
    e = np.exp(z - np.maximum.reduce(z, axis=-1, keepdims=True))
    e /= np.add.reduce(e, axis=-1, keepdims=True)
    return e


# What the last cross-entropy forward of this thread computed for its vjp: (z, softmax(z),
# labels, the index that picks the labels). Recomputing the softmax from z (a row max, exp and
# sum) was 8 of the vjp's 11 us on W2's (32, 10) logits. The vjp takes it only if handed the
# same z array (the engine and compile's replay hand it the forward's own), and takes it out
# of the slot, since it then edits it in place. The saved and the recomputed softmax are the
# same floats (the same operations as `_np_softmax`). At most one (z, softmax) pair per thread
# stays alive after a forward without a backward.
_XENT_SAVED = threading.local()


def _xent_forward(z: np.ndarray, labels: np.ndarray, mean: bool = False) -> np.ndarray:
    # logsumexp shifted by the row max, without _logsumexp's guard for all -inf rows: there
    # the loss is -inf - (-inf) = NaN either way, and the guard was a fifth of this op's time.
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    s = np.add.reduce(e, axis=-1, keepdims=True)
    index = _label_index(z, labels)
    losses = np.log(s[..., 0]) - shifted[index]
    if _state.grad_enabled and type(z) is np.ndarray:  # a backward may follow
        e /= s
        _XENT_SAVED.last = (z, e, labels, index)
    if not mean or losses.ndim == 0:
        return losses
    return np.add.reduce(losses) / losses.size  # ufunc reduce: a quarter of .mean()'s cost


def _xent_vjp(g: Any, out: Any, z: Any, xp: Any, labels: np.ndarray, mean: bool = False) -> Any:
    """(softmax(z) - onehot(labels)) times g per row (seed 002); with mean, g / N per row."""
    rows = labels.size if labels.ndim else 1
    if type(z) is np.ndarray:  # fast path: subtract the one-hot in place, no mask array
        saved = getattr(_XENT_SAVED, "last", None)
        if saved is not None and saved[0] is z:
            _XENT_SAVED.last = None
            p = saved[1]
            index = saved[3] if saved[2] is labels else _label_index(z, labels)
        else:
            p, index = _np_softmax(z), _label_index(z, labels)
        p[index] -= 1
        if mean:  # g is the mean's 0-d gradient: a Python scalar multiplies faster, same floats
            p *= g.item() / rows
            return p
        return g[..., None] * p
    onehot = (np.arange(z.shape[-1]) == labels[..., None]).astype(_np(z).dtype)
    scale = g / rows if mean else xp.reshape(g, (*g.shape, 1))
    return scale * (xp.softmax(z) - onehot)


def _xent_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    return [
        ((REALS.sample(rng, (4, 5), dtype),), {"labels": np.array([0, 4, 2, 2])}),
        ((REALS.sample(rng, (5,), dtype),), {"labels": np.array(3)}),
        ((REALS.sample(rng, (3, 4), dtype),), {"labels": np.array([1, 1, 3]), "mean": True}),
    ]


def _xent_local(labels: dict[str, str], params: dict[str, Any]) -> str:
    """seed 002's delta_L = softmax(z) - onehot(y), over the N rows when the op takes the mean."""
    text = "g * (softmax(z) - onehot(y))"
    rows = np.size(params["labels"]) if params.get("mean") else 1
    return text if rows == 1 else f"{text} / {rows}"


def _xent_batch(b: Any) -> Any:
    """vmap of softmax cross-entropy: every example's rows become rows of one (B*N, C) call."""
    z, labels = b.value(0), b.params["labels"]
    labels = (
        _np(labels)
        if "labels" in b.bparams
        else np.broadcast_to(labels, (b.size, *np.shape(labels)))
    )
    flat = softmax_cross_entropy(reshape(z, shape=(-1, z.shape[-1])), labels=labels.reshape(-1))
    losses = reshape(flat, shape=labels.shape)
    if b.params.get("mean") and labels.ndim > 1:
        return div(sum(losses, axis=1), labels.shape[1])
    return losses


# Softmax cross-entropy with integer labels, per row: mathematically logsumexp(z) - z[label],
# a primitive for speed. Composed it costs 3 ops and an np.add.at scatter in backward (61 us
# fwd+bwd on a (32, 10) batch, more than the whole hand-written NumPy W2 step); fused, one op.
softmax_cross_entropy = defop(
    "softmax_cross_entropy",
    _xent_forward,
    _xent_vjp,
    cases=_xent_cases,
    nosym="indexes by integer labels",
    doc="d CE(z, y) = (softmax(z) - onehot(y)) . dz",
    args=("z",),
    local=(_xent_local,),
    batch=_xent_batch,
)

# --------------------------------------------------------------------------- linear algebra


def _matmul_vjp_lhs(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """dL/dx = g y^T, with 1-D operands promoted to matrices and back."""
    if y.ndim == 1:
        return xp.reshape(g, (*g.shape, 1)) * y if x.ndim > 1 else g * y
    if x.ndim == 1:  # (..., 1, p) @ (..., p, n) -> (..., 1, n): drop the promoted axis
        gx = xp.matmul(xp.reshape(g, (*g.shape[:-1], 1, g.shape[-1])), _swap(y))
        return xp.reshape(gx, (*gx.shape[:-2], gx.shape[-1]))
    if g.shape[-1] == 1:  # a sum of one product: the outer product, the same floats
        return g * _swap(y)
    return xp.matmul(g, _swap(y))


def _matmul_vjp_rhs(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """dL/dy = x^T g, with 1-D operands promoted to matrices and back."""
    if x.ndim == 1:
        gm = xp.reshape(g, (*g.shape[:-1], 1, g.shape[-1])) if y.ndim > 1 else g
        return xp.reshape(x, (-1, 1)) * gm if y.ndim > 1 else g * x
    if y.ndim == 1:  # (..., n, m) @ (..., m, 1) -> (..., n, 1): drop the promoted axis
        gy = xp.matmul(_swap(x), xp.reshape(g, (*g.shape, 1)))
        return xp.reshape(gy, gy.shape[:-1])
    if x.shape[-2] == 1:  # a sum of one product: the outer product, the same floats
        return _swap(x) * g
    return xp.matmul(_swap(x), g)


def _matmul_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    pairs = [
        ((3, 4), (4, 2)),
        ((4,), (4,)),
        ((3, 4), (4,)),
        ((4,), (4, 2)),
        ((2, 3, 4), (4, 2)),
        ((2, 1, 3, 4), (3, 4, 5)),
        ((2, 1, 4), (2, 4, 3)),  # one row: the weight gradient is an outer product
        ((3, 4), (4, 1)),  # one column: so is the input gradient
    ]
    return [
        ((op.domain.sample(rng, a, dtype), op.domain.sample(rng, b, dtype)), {}) for a, b in pairs
    ]


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if getattr(x, "dtype", None) is not getattr(y, "dtype", 0):  # one dtype: nothing to check
        _same_dtype("matmul", x, y)
    try:
        return _blas.matmul(x, y)  # np.matmul on the BLAS thread count for its size
    except ValueError:  # diagnose only on failure: the hot path is one NumPy call
        raise ValueError(_matmul_mismatch(np.shape(x), np.shape(y))) from None


def _same_dtype(name: str, x: Any, y: Any) -> None:
    """Matrix products refuse mixed dtypes, as PyTorch's do: float64 data fed into float32
    weights would otherwise make every later activation and gradient float64, silently."""
    dx, dy = getattr(x, "dtype", None), getattr(y, "dtype", None)
    if dx is not None and dy is not None and dx != dy and "f" in (dx.kind, dy.kind):
        raise TypeError(
            f"dtypes {dx} and {dy} differ; cast one first (x.float(), x.double(), "
            f"x.astype(...)): {name} does not promote, as in PyTorch"
        )


def _matmul_mismatch(xs: tuple[int, ...], ys: tuple[int, ...]) -> str:
    if not xs or not ys:
        return f"shapes {xs} and {ys}: matmul needs at least 1-D operands (use * for scalars)"
    k1, k2 = xs[-1], ys[-2] if len(ys) > 1 else ys[0]
    why = f"{k1} != {k2}" if k1 != k2 else "batch dimensions do not broadcast"
    return f"shapes {xs} and {ys} are not aligned ({why})"


def _matmul_batch(b: Any) -> Any:
    """vmap of matmul: vectors promoted to matrices (NumPy's rule), the batch axis becomes one
    more leading batch axis of matmul, and the promoted axes are dropped again."""
    (x, y), (bx, by), (rx, ry) = b.args, b.batched, (b.rank(0), b.rank(1))
    if not by and ry == 2:  # rows times one matrix: the batch is more rows (5x faster on W7)
        return matmul(x, y)
    x = reshape(x, shape=(*x.shape[:-1], 1, x.shape[-1])) if rx == 1 else x
    y = reshape(y, shape=(*y.shape, 1)) if ry == 1 else y
    rank = builtins.max(rx, ry, 2)
    out = matmul(_unsqueeze_example(x, rank) if bx else x, _unsqueeze_example(y, rank) if by else y)
    if rx == 1:
        out = reshape(out, shape=(*out.shape[:-2], out.shape[-1]))
    return reshape(out, shape=out.shape[:-1]) if ry == 1 else out


matmul = defop(
    "matmul",
    _matmul,
    _matmul_vjp_lhs,
    _matmul_vjp_rhs,
    cases=_matmul_cases,
    nosym="matrix product",
    doc="d(XY) = dX Y + X dY",
    infix=("{0} @ {1}", 2, (2, 3)),
    local=("g @ y^T", "x^T @ g"),
    batch=_matmul_batch,
)


def _linear(x: np.ndarray, w: np.ndarray, b: Any = None) -> np.ndarray:
    x, w = np.asarray(x), np.asarray(w)  # no copy for arrays; .ndim is cheaper than np.ndim
    if w.ndim != 2 or x.ndim == 0:
        raise ValueError(
            f"shapes {np.shape(x)} and {np.shape(w)}: linear needs x of at least 1-D and a "
            "weight of shape (out_features, in_features)"
        )
    if x.dtype is not w.dtype:  # one dtype (the common case): nothing to check
        _same_dtype("linear", x, w)
    y = _matmul(x, w.T)
    if b is None:
        return y
    if type(b) is np.ndarray and b.shape == y.shape[-1:] and b.dtype == y.dtype:
        y += b  # y is a fresh array: adding in place saves an allocation per call
        return y
    _same_dtype("linear", y, b)
    return y + b


# The vjps take `*rest` = (b, xp) or (xp,): the bias is an optional third input.
def _linear_vjp_x(g: Any, out: Any, x: Any, w: Any, *rest: Any) -> Any:
    """dL/dx = g W (a 1-D x gets a 1-D g, so no promotion is needed)."""
    return rest[-1].matmul(g, w)  # xp.matmul: NUMPY_NS's picks the BLAS thread count


def _linear_vjp_w(g: Any, out: Any, x: Any, w: Any, *rest: Any) -> Any:
    """dL/dW = g^T x, summed over every leading (batch) axis of x."""
    xp = rest[-1]
    if x.ndim == 2:
        return xp.matmul(g.T, x)
    g2 = xp.reshape(g, (-1, g.shape[-1]))
    return xp.matmul(g2.T, xp.reshape(x, (-1, x.shape[-1])))


def _linear_vjp_b(g: Any, out: Any, x: Any, w: Any, b: Any, xp: Any) -> Any:
    """dL/db = g summed over the leading axes (the engine unbroadcasts any other bias shape)."""
    if g.ndim > 1 and b.ndim == 1:
        return g.sum(axis=tuple(range(g.ndim - 1)))
    return g


def _linear_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    def s(*shape: int) -> np.ndarray:
        return op.domain.sample(rng, shape, dtype)

    return [
        ((s(3, 4), s(2, 4), s(2)), {}),
        ((s(4), s(2, 4), s(2)), {}),
        ((s(2, 3, 4), s(5, 4), s(5)), {}),
        ((s(3, 4), s(2, 4)), {}),
        ((s(3, 4), s(2, 4), s(3, 2)), {}),
    ]


def _linear_batch(b: Any) -> Any:
    """vmap of linear: a batch of inputs is one more leading axis; batched weights (per-example
    gradients make them) go through matmul's rule."""
    if not builtins.any(b.batched[1:]):
        return linear(*b.args)
    return b.via(
        lambda x, w, *bias: (
            add(matmul(x, transpose(w)), bias[0]) if bias else matmul(x, transpose(w))
        )
    )


# x W^T + b (PyTorch's layout: W is (out_features, in_features)) as one primitive for speed:
# composed it is transpose, matmul and a broadcast add (3 ops, and a sum_to of the bias
# gradient); fused it is one op, about 7 us less per layer fwd+bwd on W2 (benchmarks/).
linear = defop(
    "linear",
    _linear,
    _linear_vjp_x,
    _linear_vjp_w,
    _linear_vjp_b,
    cases=_linear_cases,
    nosym="matrix product",
    doc="d(x W^T + b) = dx W^T + x dW^T + db",
    args=("x", "W", "b"),
    infix=("{0} @ {1}^T + {2}", 1, (2, 5, 1)),
    local=("g @ W", "g^T @ x", "sum_rows(g)"),
    batch=_linear_batch,
)

# --------------------------------------------------------------------------- shape and indexing


def _shape_cases(**params: Any) -> Callable[..., list[Case]]:
    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        return [((op.domain.sample(rng, (2, 3, 4), dtype),), dict(params))]

    return make


def _reshape_batch(b: Any) -> Any:
    """vmap of reshape: the batch axis is kept in front of the new shape."""
    shape = b.params["shape"]
    return reshape(b.args[0], shape=(b.size, *((shape,) if isinstance(shape, int) else shape)))


def _transpose_batch(b: Any) -> Any:
    """vmap of transpose: the permutation shifted past the batch axis, which stays first."""
    r, axes = b.rank(0), b.params.get("axes")
    perm = range(r, 0, -1) if axes is None else (a % r + 1 for a in axes)
    return transpose(b.args[0], axes=(0, *perm))


def _broadcast_batch(b: Any) -> Any:
    """vmap of broadcast_to: singleton axes after the batch axis, then the batched shape."""
    shape = tuple(b.params["shape"])
    return broadcast_to(_unsqueeze_example(b.args[0], len(shape)), shape=(b.size, *shape))


def _batch_index(index: Any) -> tuple[Any, int]:
    """`index` for a value with a batch axis in front, and where NumPy puts that axis in the
    result: at 0, except when advanced indices are split by a slice (their axes go first)."""
    items = index if isinstance(index, tuple) else (index,)
    adv = [
        k for k, i in enumerate(items) if not (i is None or i is Ellipsis or isinstance(i, slice))
    ]
    arrays = [np.asarray(items[k]) for k in adv]
    split = builtins.any(a.ndim for a in arrays) and adv != list(range(adv[0], adv[-1] + 1))
    moved = builtins.max(1 if a.dtype == bool else a.ndim for a in arrays) if split else 0
    return (slice(None), *items), moved


def _getitem_batch(b: Any) -> Any:
    """vmap of x[i]: a full slice for the batch axis, moved back to the front when advanced
    indices split by a slice put their axes first."""
    index, moved = _batch_index(b.params["index"])
    out = getitem(b.args[0], index=index)
    return _moveaxis(out, moved, 0) if moved else out


def _scatter_batch(b: Any) -> Any:
    """vmap of scatter_add: getitem's index, into zeros with the batch axis in front."""
    index, moved = _batch_index(b.params["index"])
    x = _moveaxis(b.args[0], 0, moved) if moved else b.args[0]
    return scatter_add(x, index=index, shape=(b.size, *b.params["shape"]))


def _concat_batch(b: Any) -> Any:
    """vmap of concatenate: shared inputs repeated per example, the axis shifted by one."""
    axis = b.params.get("axis", 0) % builtins.max(b.rank(0), 1) + 1
    return concatenate(*(b.value(i) for i in range(len(b.args))), axis=axis)


reshape = defop(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    lambda g, out, x, xp, shape: xp.reshape(g, x.shape),
    cases=_shape_cases(shape=(4, -1)),
    nosym="rearranges elements",
    doc="d reshape(x) = reshape(dx)",
    local=("reshape(g)",),
    batch=_reshape_batch,
)
transpose = defop(
    "transpose",
    lambda x, axes=None: np.transpose(x, axes),
    lambda g, out, x, xp, axes=None: xp.transpose(
        g, None if axes is None else tuple(np.argsort(_axes(x.ndim, axes)))
    ),
    cases=_shape_cases(axes=(1, 2, 0)),
    nosym="rearranges elements",
    doc="d x^T = (dx)^T",
    infix=("{0}^T", 4, (5,)),
    local=("g^T",),
    batch=_transpose_batch,
)
broadcast_to = defop(
    "broadcast_to",
    lambda x, shape: np.broadcast_to(x, shape),
    lambda g, out, x, xp, shape: g,  # the engine sums g back to x's shape
    cases=lambda rng, dt, op: [((REALS.sample(rng, (3, 1), dt),), {"shape": (2, 3, 4)})],
    nosym="repeats elements",
    doc="d broadcast(x) = sum of dx over the copies",
    local=("sum_to(g)",),
    batch=_broadcast_batch,
)
getitem = defop(
    "getitem",
    lambda x, index: x[index],
    lambda g, out, x, xp, index: xp.scatter_add(g, index, x.shape),
    cases=lambda rng, dt, op: [
        ((REALS.sample(rng, (4, 5), dt),), {"index": i})
        for i in [
            (1, slice(1, 4)),
            (np.array([0, 2, 2]),),
            (np.array([3, 0, 3]), np.array([1, 1, 1])),
            (Ellipsis, None, 2),
        ]
    ],
    nosym="selects elements",
    doc="d x[i] = dx[i]; repeated indices accumulate",
    local=("scatter(g)",),
    batch=_getitem_batch,
)
scatter_add = defop(
    "scatter_add",
    _np_scatter_add,
    lambda g, out, x, xp, index, shape: xp.getitem(g, index),
    cases=lambda rng, dt, op: [
        ((REALS.sample(rng, (3,), dt),), {"index": np.array([0, 2, 0]), "shape": (4,)})
    ],
    nosym="places elements",
    doc="the transpose of getitem: zeros, x added at i",
    local=("g[index]",),
    batch=_scatter_batch,
)


def _concat_vjp(g: Any, out: Any, *args: Any, argnum: int, axis: int = 0) -> Any:
    """Input i's gradient is its own slice of g along the joined axis."""
    *xs, xp = args
    ax = axis % xs[0].ndim
    start = int(np.sum([x.shape[ax] for x in xs[:argnum]], dtype=int))
    return xp.getitem(g, (slice(None),) * ax + (slice(start, start + xs[argnum].shape[ax]),))


concatenate = defop(
    "concatenate",
    _concat,
    _concat_vjp,
    variadic=True,
    arity=-1,
    cases=lambda rng, dt, op: [
        (
            (
                REALS.sample(rng, (2, 3), dt),
                REALS.sample(rng, (2, 1), dt),
                REALS.sample(rng, (2, 2), dt),
            ),
            {"axis": 1},
        )
    ],
    nosym="joins arrays",
    doc="d concat(x, y) = concat(dx, dy)",
    local=("slice(g)",),
    batch=_concat_batch,
)


# --------------------------------------------------------------------------- functions by name
# Entries the parser and the explainer know by name. Primitives where the forward is one NumPy
# call and the derivative is 0 or one expression; composites (built from the primitives above,
# so their gradients need no rule of their own) where the function is a formula of them.


def _zero_vjp(g: Any, out: Any, x: Any, xp: Any) -> Any:
    """0 wherever the derivative exists (a step function), as torch.floor/ceil/sign."""
    return g * 0


cbrt = defop(
    "cbrt",
    np.cbrt,
    lambda g, out, x, xp: g / (3 * out * out),
    sym=lambda sp, x: sp.cbrt(x),
    domain=POSITIVE,
    cases=UNARY,
    doc="d x^(1/3) = dx / (3 x^(2/3))",
    names=("cbrt",),
    expand=True,
    local=("1/(3*out^2)",),
)
floor = defop(
    "floor",
    np.floor,
    _zero_vjp,
    sym=lambda sp, x: sp.floor(x),
    cases=UNARY,
    doc="d floor(x) = 0 between the integers",
    names=("floor",),
    rule="Floor",
    dsym=lambda sp, F, u: sp.S.Zero,
    kink="floor jumps at every integer and has no derivative there (chainrule gives 0)",
    local=("0",),
)
ceil = defop(
    "ceil",
    np.ceil,
    _zero_vjp,
    sym=lambda sp, x: sp.ceiling(x),
    cases=UNARY,
    doc="d ceil(x) = 0 between the integers",
    names=("ceil", "ceiling"),
    rule="Ceiling",
    dsym=lambda sp, F, u: sp.S.Zero,
    kink="ceil jumps at every integer and has no derivative there (chainrule gives 0)",
    local=("0",),
)
sign = defop(
    "sign",
    np.sign,
    _zero_vjp,
    sym=lambda sp, x: sp.sign(x),
    cases=UNARY,
    doc="d sign(x) = 0 for x != 0",
    names=("sign", "sgn"),
    rule="Sign",
    dsym=lambda sp, F, u: sp.S.Zero,
    kink="sign jumps at x = 0 and has no derivative there (chainrule gives 0, as PyTorch)",
    differs="sign(NaN) is NaN, as NumPy (PyTorch gives 0)",
    local=("0",),
)


def _reciprocal(f: OpDef) -> Callable[[Tensor], Tensor]:
    return lambda x: div(1.0, f(x))


sec = defcomposite(
    "sec",
    _reciprocal(cos),
    sym=lambda sp, x: sp.sec(x),
    domain=SMALL,
    cases=UNARY,
    doc="d sec x = sec x tan x dx (1/cos x)",
    names=("sec",),
    rule="TrigRule",
    dsym=lambda sp, F, u: sp.sec(u) * sp.tan(u),
)
csc = defcomposite(
    "csc",
    _reciprocal(sin),
    sym=lambda sp, x: sp.csc(x),
    domain=SMALL,
    cases=UNARY,
    doc="d csc x = -csc x cot x dx (1/sin x)",
    names=("csc",),
    rule="TrigRule",
    dsym=lambda sp, F, u: -sp.csc(u) * sp.cot(u),
)
cot = defcomposite(
    "cot",
    _reciprocal(tan),
    sym=lambda sp, x: sp.cot(x),
    domain=SMALL,
    cases=UNARY,
    doc="d cot x = -csc^2 x dx (1/tan x)",
    names=("cot",),
    rule="TrigRule",
    dsym=lambda sp, F, u: -(sp.csc(u) ** 2),
)
arccot = defcomposite(
    "arccot",
    lambda x: arctan(div(1.0, x)),
    sym=lambda sp, x: sp.acot(x),
    cases=UNARY,
    doc="d acot x = -dx / (1 + x^2) (atan(1/x))",
    names=("arccot", "acot"),
    rule="InverseTrigRule",
)
sech = defcomposite(
    "sech",
    _reciprocal(cosh),
    sym=lambda sp, x: sp.sech(x),
    cases=UNARY,
    doc="d sech x = -sech x tanh x dx (1/cosh x)",
    names=("sech",),
    rule="HyperbolicRule",
    dsym=lambda sp, F, u: -sp.sech(u) * sp.tanh(u),
)
csch = defcomposite(
    "csch",
    _reciprocal(sinh),
    sym=lambda sp, x: sp.csch(x),
    cases=UNARY,
    doc="d csch x = -csch x coth x dx (1/sinh x)",
    names=("csch",),
    rule="HyperbolicRule",
    dsym=lambda sp, F, u: -sp.csch(u) * sp.coth(u),
)
coth = defcomposite(
    "coth",
    _reciprocal(tanh),
    sym=lambda sp, x: sp.coth(x),
    cases=UNARY,
    doc="d coth x = (1 - coth^2 x) dx (1/tanh x)",
    names=("coth",),
    rule="HyperbolicRule",
    dsym=lambda sp, F, u: 1 - sp.coth(u) ** 2,
)
# Primitives, not ln(x + sqrt(x^2 + 1)) and friends: that composite cancels to log(0) = -inf at
# x = -1e10 (asinh is -23.7 there), loses every digit of atanh(1e-17), and its gradient at
# x = inf is inf/inf = NaN where 1/sqrt(x^2 + 1) gives 0.
arcsinh = defop(
    "arcsinh",
    np.arcsinh,
    lambda g, out, x, xp: g / xp.sqrt(x * x + 1),
    sym=lambda sp, x: sp.asinh(x),
    cases=UNARY,
    doc="d asinh x = dx / sqrt(x^2 + 1)",
    names=("arcsinh", "asinh"),
    rule="HyperbolicRule",
    local=("1/sqrt(x^2 + 1)",),
)
arccosh = defop(
    "arccosh",
    np.arccosh,
    # (x - 1)(x + 1) keeps the digits of x^2 - 1 near 1; + 0.0 turns x = -1's -0 into +0, so
    # the gradient there is inf as torch's, not -inf
    lambda g, out, x, xp: g / xp.sqrt((x - 1) * (x + 1) + 0.0),
    sym=lambda sp, x: sp.acosh(x),
    domain=Domain(1.2, 3.0, 0.0),
    cases=UNARY,
    doc="d acosh x = dx / sqrt(x^2 - 1)",
    names=("arccosh", "acosh"),
    rule="HyperbolicRule",
    dsym=lambda sp, F, u: 1 / sp.sqrt(u**2 - 1),
    local=("1/sqrt(x^2 - 1)",),
)
arctanh = defop(
    "arctanh",
    np.arctanh,
    lambda g, out, x, xp: g / ((1 - x) * (1 + x)),
    sym=lambda sp, x: sp.atanh(x),
    domain=UNIT,
    cases=UNARY,
    doc="d atanh x = dx / (1 - x^2)",
    names=("arctanh", "atanh"),
    rule="HyperbolicRule",
    local=("1/(1 - x^2)",),
)
log10 = defcomposite(
    "log10",
    lambda x: div(log(x), math.log(10)),
    sym=lambda sp, x: sp.log(x, 10),
    domain=POSITIVE,
    cases=UNARY,
    doc="d log10 x = dx / (x ln 10)",
    names=("log10", "lg"),
    expand=True,
)
log2 = defcomposite(
    "log2",
    lambda x: div(log(x), math.log(2)),
    sym=lambda sp, x: sp.log(x, 2),
    domain=POSITIVE,
    cases=UNARY,
    doc="d log2 x = dx / (x ln 2)",
    names=("log2",),
    expand=True,
)
gelu = defcomposite(
    "gelu",
    lambda x: mul(mul(0.5, x), add(1.0, erf(mul(x, 1 / math.sqrt(2))))),
    sym=lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
    cases=UNARY,
    doc="d x Phi(x) = (Phi(x) + x phi(x)) dx, Phi the normal CDF, phi its density",
    names=("gelu", "GELU"),
    rule="GELU",
    dsym=lambda sp, F, u: (
        (1 + sp.erf(u / sp.sqrt(2))) / 2 + u * sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    ),
    differs="approximate='tanh' is a separate formula of cr.gelu, not this entry",
)
silu = defcomposite(
    "silu",
    lambda x: mul(x, sigmoid(x)),
    sym=lambda sp, x: x / (1 + sp.exp(-x)),
    cases=UNARY,
    doc="d x s(x) = s(x)(1 + x(1 - s(x))) dx",
    names=("silu", "swish", "SiLU"),
    rule="SiLU",
    dsym=lambda sp, F, u: F.sigmoid(u) * (1 + u * (1 - F.sigmoid(u))),
)
leaky_relu = defcomposite(
    "leaky_relu",
    lambda x, alpha=0.01: where(_np(x) > 0, x, mul(x, alpha)),
    sym=lambda sp, x: _off_reals(sp, x) or sp.Piecewise((x, x > 0), (x / 100, True)),
    cases=UNARY,
    doc="d leaky_relu(x) = [x > 0] dx + 0.01 [x <= 0] dx",
    names=("leaky_relu", "LeakyReLU"),
    rule="Leaky ReLU",
    dsym=lambda sp, F, u: sp.Piecewise((1, u > 0), (sp.Rational(1, 100), True)),
    kink="at x = 0 leaky_relu has no derivative; chainrule uses the left slope 0.01, as PyTorch",
    differs="the parser and the explainer use the default slope 0.01; leaky_relu'(NaN) is 0",
)


def _off_reals(sp: Any, x: Any) -> Any:
    """NaN for a number off the reals (atanh(2), NaN), as the engine gives: x > 0 cannot be
    asked of it; None otherwise."""
    return sp.nan if x.is_extended_real is False or x is sp.nan else None


elu = defcomposite(
    "elu",
    # clip, not minimum: the gradient passes at the bound, so elu'(0) = 1 (minimum splits ties)
    lambda x, alpha=1.0: where(_np(x) > 0, x, mul(sub(exp(clip(x, a_max=0.0)), 1.0), alpha)),
    sym=lambda sp, x: _off_reals(sp, x) or sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
    cases=UNARY,
    doc="d elu(x) = [x > 0] dx + e^x [x <= 0] dx",
    names=("elu", "ELU"),
    rule="ELU",
    dsym=lambda sp, F, u: sp.Piecewise((1, u > 0), (sp.exp(u), True)),
    differs="the parser and the explainer use alpha = 1; elu'(NaN) is 0 (torch passes g)",
)


# --------------------------------------------------------------------------- more elementwise
# Functions a NumPy or PyTorch user reaches for (issue 11). Primitives where NumPy has a more
# accurate forward than the formula (log1p, expm1, exp2, erfc, logaddexp, hypot) or the
# derivative has a convention of its own (sinc at 0, fmax's NaNs, copysign, lerp's two forms);
# composites where the function is a formula of the entries above and a learner may type it.


def _erfc(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erfc
    except ImportError:  # as _erf: math.erfc per element, exact but slower
        return np.vectorize(math.erfc, otypes=[np.asarray(x).dtype])(x)
    return erfc(x)


# log1p and expm1: log(1 + 1e-17) is 0 and exp(1e-17) - 1 is 0; NumPy's own keep every digit.
log1p = defop(
    "log1p",
    np.log1p,
    lambda g, out, x, xp: g / (1 + x),
    sym=lambda sp, x: sp.log(1 + x),
    domain=Domain(-0.5, 2.0, 0.0),
    cases=UNARY,
    doc="d ln(1 + x) = dx / (1 + x)",
    names=("log1p",),
    expand=True,
    local=("1/(1 + x)",),
)
expm1 = defop(
    "expm1",
    np.expm1,
    lambda g, out, x, xp: g * (out + 1),
    sym=lambda sp, x: sp.exp(x) - 1,
    cases=UNARY,
    doc="d (e^x - 1) = e^x dx",
    names=("expm1",),
    expand=True,
    local=("out + 1",),
)
# exp2, not exp(x ln 2): 2^10 is 1024 exactly, and the output serves the vjp.
exp2 = defop(
    "exp2",
    np.exp2,
    lambda g, out, x, xp: g * out * math.log(2),
    sym=lambda sp, x: 2**x,
    cases=UNARY,
    doc="d 2^x = 2^x ln 2 dx",
    names=("exp2",),
    expand=True,
    local=("out*log(2)",),
)
# erfc, not 1 - erf: erfc(5) = 1.5e-12 and 1 - erf(5) keeps none of its digits.
erfc = defop(
    "erfc",
    _erfc,
    lambda g, out, x, xp: -g * (2 / math.sqrt(math.pi)) * xp.exp(-x * x),
    sym=lambda sp, x: sp.erfc(x),
    cases=UNARY,
    doc="d erfc x = -2/sqrt(pi) e^(-x^2) dx",
    names=("erfc",),
    rule="Complementary error function",
    dsym=lambda sp, F, u: -2 / sp.sqrt(sp.pi) * sp.exp(-(u**2)),
    local=("-2/sqrt(pi)*exp(-x^2)",),
    differs="without SciPy the forward runs math.erfc per element (exact, slower)",
)


def _sinc_vjp(g: Any, out: Any, x: Any, xp: Any) -> Any:
    """d sinc x = (cos(pi x) - sinc x) / x, and 0 at x = 0 (the limit), as torch."""
    zero = _np(x) == 0
    if not zero.any():
        return g * (xp.cos(math.pi * x) - out) / x
    safe = xp.where(zero, 1.0, x)  # 0/0 never computed; the value there is masked
    return xp.where(zero, 0.0, g * (xp.cos(math.pi * safe) - out) / safe)


sinc = defop(
    "sinc",
    np.sinc,
    _sinc_vjp,
    # NumPy's sinc is normalized, SymPy's is not (sympy.sinc(x) = sin(x)/x): the twin is
    # SymPy's at pi x, which is 1 at 0 where sin(pi x)/(pi x) is 0/0. Its parser name is a
    # function of its own (printed sinc, NumPy's), never SymPy's sinc.
    sym=lambda sp, x: sp.sinc(sp.pi * x),
    cases=UNARY,
    doc="d sin(pi x)/(pi x) = (cos(pi x) - sinc x) / x dx, 0 at x = 0",
    names=("sinc",),
    rule="Normalized sinc",
    dsym=lambda sp, F, u: (sp.cos(sp.pi * u) - F.sinc(u)) / u,
    kink="at x = 0 the derivative is the limit 0, as PyTorch",
    local=("(cos(pi*x) - out)/x",),
)
round = defop(
    "round",
    lambda x, decimals=0: np.round(x, decimals),
    lambda g, out, x, xp, decimals=0: g * 0,
    nosym="rounds half to even (SymPy has no such function)",
    cases=UNARY,
    doc="d round(x) = 0 between the jumps (half to even, as NumPy and torch)",
    local=("0",),
)
trunc = defop(
    "trunc",
    np.trunc,
    _zero_vjp,
    nosym="floor for x >= 0, ceil below: a step function of two pieces",
    cases=UNARY,
    doc="d trunc(x) = 0 between the integers",
    local=("0",),
)
reciprocal = defcomposite(
    "reciprocal",
    lambda x: div(1.0, x),
    sym=lambda sp, x: 1 / x,
    domain=POSITIVE,
    cases=UNARY,
    doc="d (1/x) = -dx / x^2",
    names=("reciprocal",),
    expand=True,
)
rsqrt = defcomposite(
    "rsqrt",
    lambda x: div(1.0, sqrt(x)),
    sym=lambda sp, x: 1 / sp.sqrt(x),
    domain=POSITIVE,
    cases=UNARY,
    doc="d x^(-1/2) = -dx / (2 x^(3/2))",
    names=("rsqrt",),
    expand=True,
)
square = defcomposite(
    "square",
    lambda x: mul(x, x),
    sym=lambda sp, x: x**2,
    cases=UNARY,
    doc="d x^2 = 2x dx",
    names=("square",),
    expand=True,
)
# logaddexp: log(e^x + e^y) overflows at x = 710; NumPy's shifts by the larger input first.
logaddexp = defop(
    "logaddexp",
    np.logaddexp,
    lambda g, out, x, y, xp: g * xp.sigmoid(x - y),
    lambda g, out, x, y, xp: g * xp.sigmoid(y - x),
    sym=lambda sp, x, y: sp.log(sp.exp(x) + sp.exp(y)),
    cases=BINARY,
    doc="d ln(e^x + e^y) = s(x - y) dx + s(y - x) dy",
    local=("sigmoid(x - y)", "sigmoid(y - x)"),
)
# hypot: sqrt(x^2 + y^2) overflows at x = 1e200; NumPy's scales first.
hypot = defop(
    "hypot",
    np.hypot,
    lambda g, out, x, y, xp: g * x / out,
    lambda g, out, x, y, xp: g * y / out,
    sym=lambda sp, x, y: sp.sqrt(x**2 + y**2),
    cases=BINARY,
    doc="d sqrt(x^2 + y^2) = (x dx + y dy) / sqrt(x^2 + y^2)",
    local=("x/out", "y/out"),
)


def _over_norm2(g: Any, y: Any, x: Any, xp: Any) -> Any:
    """g / (x^2 + y^2), and 0 at the origin, where atan2 has no derivative (torch's choice)."""
    n2 = x * x + y * y
    zero = np.asarray(_np(n2)) == 0
    return xp.where(zero, 0.0, g / xp.where(zero, 1.0, n2)) if zero.any() else g / n2


arctan2 = defop(
    "arctan2",
    np.arctan2,
    lambda g, out, y, x, xp: _over_norm2(g, y, x, xp) * x,
    lambda g, out, y, x, xp: -_over_norm2(g, y, x, xp) * y,
    sym=lambda sp, y, x: sp.atan2(y, x),
    cases=BINARY,
    doc="d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)",
    args=("y", "x"),
    local=("x/(x^2 + y^2)", "-y/(x^2 + y^2)"),
)


def _lerp(x: np.ndarray, y: np.ndarray, w: Any) -> np.ndarray:
    # torch's two forms: exact at w = 0 (x) and at w = 1 (y), even when y - x overflows
    return np.where(np.abs(w) < 0.5, x + w * (y - x), y - (y - x) * (1 - w))


lerp = defop(
    "lerp",
    _lerp,
    lambda g, out, x, y, w, xp: g * (1 - w),
    lambda g, out, x, y, w, xp: g * w,
    lambda g, out, x, y, w, xp: g * (y - x),
    sym=lambda sp, x, y, w: x + w * (y - x),
    cases=_cases(((2, 3), (2, 3), (2, 3)), ((3,), (2, 3), ())),
    doc="d lerp(x, y, w) = (1 - w) dx + w dy + (y - x) dw",
    args=("x", "y", "w"),
    local=("1 - w", "w", "y - x"),
)


def _fext_wins(x: Any, y: Any, g: Any, sign: int) -> np.ndarray:
    """x's share of g in fmax (sign 1) or fmin (-1), as torch: all of it where x wins or ties,
    or where y is NaN (then x is the result); none elsewhere."""
    xa, ya = _np(x), _np(y)
    wins = (xa >= ya if sign > 0 else xa <= ya) | np.isnan(ya)
    return wins.astype(g.dtype)


fmax = defop(
    "fmax",
    np.fmax,
    lambda g, out, x, y, xp: g * _fext_wins(x, y, g, 1),
    lambda g, out, x, y, xp: g * (1 - _fext_wins(x, y, g, 1)),
    sym=lambda sp, x, y: sp.Max(x, y),
    cases=BINARY,
    doc="d fmax(x, y) = [x >= y] dx + [x < y] dy; NaN loses",
    local=("[x >= y]", "1 - [x >= y]"),
    differs="a tie sends the whole gradient to x (as torch.fmax; maximum splits it)",
)
fmin = defop(
    "fmin",
    np.fmin,
    lambda g, out, x, y, xp: g * _fext_wins(x, y, g, -1),
    lambda g, out, x, y, xp: g * (1 - _fext_wins(x, y, g, -1)),
    sym=lambda sp, x, y: sp.Min(x, y),
    cases=BINARY,
    doc="d fmin(x, y) = [x <= y] dx + [x > y] dy; NaN loses",
    local=("[x <= y]", "1 - [x <= y]"),
    differs="a tie sends the whole gradient to x (as torch.fmin; minimum splits it)",
)


def _copysign_vjp(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """d copysign(x, y)/dx = out / x (+1 or -1), and 0 at x = 0, as torch."""
    xa = _np(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(xa == 0, 0, _np(out) / xa)
    return g * ratio.astype(g.dtype)


copysign = defop(
    "copysign",
    np.copysign,
    _copysign_vjp,
    lambda g, out, x, y, xp: g * 0,
    nosym="the sign of y is a step function",
    cases=BINARY,
    doc="d copysign(x, y) = sign(x) sign(y) dx",
    local=("out/x", "0"),
)
nan_to_num = defop(
    "nan_to_num",
    lambda x, nan=0.0, posinf=None, neginf=None: np.nan_to_num(
        x, nan=nan, posinf=posinf, neginf=neginf
    ),
    lambda g, out, x, xp, nan=0.0, posinf=None, neginf=None: g * np.isfinite(_np(x)),
    nosym="replaces NaN and infinities by numbers",
    cases=UNARY,
    doc="d nan_to_num(x) = dx where x is finite, 0 where it is replaced",
    local=("where(isfinite(x), g, 0)",),
)

# --------------------------------------------------------------------------- more activations
# Composites: each is a formula of the entries above. The hard ones (hardtanh, relu6,
# hardsigmoid, hardswish) select between their middle piece and constants by masks chosen to
# match PyTorch's gradient at the joints and at NaN (clip would pass it at the bounds).

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _hard(x: Tensor, inside: Any, middle: Callable[[Any], Any], lo: float, hi: float) -> Tensor:
    """middle(x) where `inside`, else the constant clip(middle(x), lo, hi)."""
    return where(inside, middle(x), np.clip(middle(_np(x)), lo, hi))


def _hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    # torch's mask: the gradient is 0 at the bounds and passes at NaN
    xa = _np(x)
    return _hard(x, ~((xa <= min_val) | (xa >= max_val)), lambda v: v, min_val, max_val)


def _celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    # clip, not minimum: the gradient passes at the bound, so celu'(0) = 1, as torch
    return where(_np(x) > 0, x, mul(sub(exp(div(clip(x, a_max=0.0), alpha)), 1.0), alpha))


def _hardswish(x: Tensor) -> Tensor:
    # torch's slopes at the joints: 0 at x = -3 and 1 at x = 3 (the outer pieces'), 1 at NaN;
    # the middle piece sees 0 outside (-3, 3), so inf there cannot make its gradient NaN
    xa = _np(x)
    mid = (xa > -3) & (xa < 3)
    xs = where(mid, x, 0.0)
    return where(~(mid | (xa <= -3)), x, where(mid, div(mul(xs, add(xs, 3.0)), 6.0), 0.0))


selu = defcomposite(
    "selu",
    lambda x: mul(elu(x, alpha=_SELU_ALPHA), _SELU_SCALE),
    sym=lambda sp, x: (
        _off_reals(sp, x)
        or _SELU_SCALE * sp.Piecewise((x, x > 0), (_SELU_ALPHA * (sp.exp(x) - 1), True))
    ),
    cases=UNARY,
    doc="d selu(x) = scale ([x > 0] + alpha e^x [x <= 0]) dx",
    names=("selu", "SELU"),
    rule="SELU",
    differs="selu'(NaN) is 0 (torch passes g), as elu",
)
celu = defcomposite(
    "celu",
    _celu,
    sym=lambda sp, x: _off_reals(sp, x) or sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
    cases=UNARY,
    doc="d celu(x) = [x > 0] dx + e^(x/alpha) [x <= 0] dx",
    names=("celu", "CELU"),
    rule="CELU",
    differs="the parser and the explainer use alpha = 1; celu'(NaN) is 0 (torch passes g)",
)
hardtanh = defcomposite(
    "hardtanh",
    _hardtanh,
    sym=lambda sp, x: _off_reals(sp, x) or sp.Piecewise((-1, x <= -1), (x, x < 1), (1, True)),
    cases=UNARY,
    doc="d hardtanh(x) = [-1 < x < 1] dx",
    names=("hardtanh", "Hardtanh"),
    rule="Hardtanh",
    kink="at x = -1 and x = 1 hardtanh has no derivative; chainrule uses 0, as PyTorch",
    differs="the parser and the explainer use the bounds -1 and 1",
)
relu6 = defcomposite(
    "relu6",
    lambda x: _hardtanh(x, 0.0, 6.0),
    sym=lambda sp, x: _off_reals(sp, x) or sp.Piecewise((0, x <= 0), (x, x < 6), (6, True)),
    domain=Domain(-2.0, 8.0, 0.1),
    cases=UNARY,
    doc="d min(max(0, x), 6) = [0 < x < 6] dx",
    names=("relu6", "ReLU6"),
    rule="ReLU6",
    kink="at x = 0 and x = 6 relu6 has no derivative; chainrule uses 0, as PyTorch",
)
hardsigmoid = defcomposite(
    "hardsigmoid",
    # torch's mask here is strict: 0 at the bounds and at NaN
    lambda x: _hard(x, (_np(x) > -3) & (_np(x) < 3), lambda v: v / 6 + 0.5, 0.0, 1.0),
    sym=lambda sp, x: (
        _off_reals(sp, x)
        or sp.Piecewise((0, x <= -3), (x / 6 + sp.Rational(1, 2), x < 3), (1, True))
    ),
    domain=Domain(-4.0, 4.0, 0.1),
    cases=UNARY,
    doc="d hardsigmoid(x) = [-3 < x < 3] dx / 6",
    names=("hardsigmoid", "Hardsigmoid"),
    rule="Hard sigmoid",
    kink="at x = -3 and x = 3 hardsigmoid has no derivative; chainrule uses 0, as PyTorch",
)
hardswish = defcomposite(
    "hardswish",
    _hardswish,
    sym=lambda sp, x: (
        _off_reals(sp, x) or sp.Piecewise((0, x <= -3), (x * (x + 3) / 6, x < 3), (x, True))
    ),
    domain=Domain(-4.0, 4.0, 0.1),
    cases=UNARY,
    doc="d hardswish(x) = ([-3 < x < 3] (2x + 3)/6 + [x >= 3]) dx",
    names=("hardswish", "Hardswish"),
    rule="Hard swish",
    kink="at x = -3 and x = 3 hardswish's slope jumps; chainrule uses the outer pieces' "
    "(0 and 1), as PyTorch",
    differs="hardswish(-inf) is 0, the limit (PyTorch computes -inf * 0 = NaN)",
)
mish = defcomposite(
    "mish",
    lambda x: mul(x, tanh(softplus(x))),
    sym=lambda sp, x: x * sp.tanh(sp.log(1 + sp.exp(x))),
    cases=UNARY,
    doc="d x tanh(softplus x) = (tanh(sp) + x s(x)(1 - tanh^2(sp))) dx, sp = softplus x",
    names=("mish", "Mish"),
    rule="Mish",
)
softsign = defcomposite(
    "softsign",
    lambda x: div(x, add(abs(x), 1.0)),
    sym=lambda sp, x: x / (1 + sp.Abs(x)),
    cases=UNARY,
    doc="d x/(1 + |x|) = dx / (1 + |x|)^2",
    names=("softsign", "Softsign"),
    rule="Softsign",
    dsym=lambda sp, F, u: 1 / (1 + sp.Abs(u)) ** 2,
)
logsigmoid = defcomposite(
    "logsigmoid",
    lambda x: neg(softplus(neg(x))),
    sym=lambda sp, x: -sp.log(1 + sp.exp(-x)),
    cases=UNARY,
    doc="d ln s(x) = (1 - s(x)) dx",
    names=("logsigmoid", "log_sigmoid"),
    rule="Log-sigmoid",
    dsym=lambda sp, F, u: 1 - F.sigmoid(u),
)


# --------------------------------------------------------------------------- reductions, scans
# prod, cumsum, cumprod and logcumsumexp are primitives: their vjps need formulas of their own
# (exact with zeros; no overflow). sort, topk, cummax and diff are composites of getitem and
# sub, whose gradients (a scatter of g, differences) are already right at every order.


def _last(x: Any, axis: Any, xp: Any) -> tuple[Any, tuple[int, ...]]:
    """x with the `axis` (an int, a tuple or None: every axis) moved last and flattened into
    one, and the permutation that did it (undo it with `_unlast`)."""
    axes = _axes(x.ndim, axis)
    perm = (*(i for i in range(x.ndim) if i not in axes), *axes)
    xt = xp.transpose(x, perm)
    n = math.prod(x.shape[a] for a in axes)
    return xp.reshape(xt, (*xt.shape[: x.ndim - len(axes)], n)), perm


def _unlast(a: Any, x: Any, perm: tuple[int, ...], xp: Any) -> Any:
    """`_last` undone: `a` (shaped as _last's result) back to x's shape and axis order."""
    moved = tuple(x.shape[p] for p in perm)
    return xp.transpose(xp.reshape(a, moved), tuple(np.argsort(perm)))


def _flip(a: Any, axis: int, xp: Any) -> Any:
    return xp.getitem(a, (slice(None),) * (axis % a.ndim) + (slice(None, None, -1),))


def _others_product(x: Any, axis: Any, xp: Any) -> Any:
    """For each element, the product of the other elements of its slice, without dividing
    (exact with zeros): row i of an (n, n) matrix holds the slice with x_i set to 1."""
    xm, perm = _last(x, axis, xp)
    n = xm.shape[-1]
    rows = xp.where(np.eye(n, dtype=bool), 1.0, xp.reshape(xm, (*xm.shape[:-1], 1, n)))
    return _unlast(xp.prod(rows, axis=-1), x, perm, xp)


def _divisible(out: Any) -> bool:
    """Whether out / x_i is the product of the others: every product finite and nonzero (so no
    x_i is 0 or inf, and nothing overflowed or underflowed)."""
    o = _np(out)
    return bool(np.isfinite(o).all() and (o != 0).all())


def _prod_vjp(g: Any, out: Any, x: Any, xp: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """g times the product of the others: out / x where that is exact, else computed directly
    (0/0 at a zero, inf/inf at an inf), as torch."""
    gk = _expand(g, x.shape, axis, xp)
    if x.size == 0 or _divisible(out):
        return gk * _expand(out, x.shape, axis, xp) / x
    return gk * _others_product(x, axis, xp)


def _scan_cases(*values: Any, axes: tuple[Any, ...] = (1, 0, None)) -> Callable[..., list[Case]]:
    """A (3, 4) input scanned along each of `axes`; `values` (with zeros) replace its first
    elements in the first cases, so that the exact-zero paths are gradchecked too."""

    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        cases = []
        for i, axis in enumerate(axes):
            x = op.domain.sample(rng, (3, 4), dtype)
            if i < len(values):
                x.reshape(-1)[: len(values[i])] = values[i]
            cases.append(((x,), {"axis": axis}))
        return cases

    return make


def _reduce_zero_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    x = op.domain.sample(rng, (3, 4), dtype)
    z1, z2 = x.copy(), x.copy()
    z1[1, 2] = 0  # one zero in row 1 and in column 2
    z2[0, 1] = z2[0, 3] = 0  # two zeros in row 0
    return [
        ((z1,), {"axis": 1, "keepdims": False}),
        ((z2,), {"axis": None, "keepdims": False}),
        ((x,), {"axis": (0, 1), "keepdims": True}),
        ((z2,), {"axis": 1, "keepdims": True}),
        ((z1,), {"axis": 0, "keepdims": False}),
    ]


prod = defop(
    "prod",
    lambda x, axis=None, keepdims=False: np.prod(x, axis=axis, keepdims=keepdims),
    _prod_vjp,
    cases=_reduce_zero_cases,
    nosym="a reduction",
    doc="d prod(x) = sum_i (prod_{j != i} x_j) dx_i",
    differs="an inf or NaN in x: the gradient is the product of the others (torch: NaN)",
    local=("g * prod of the others",),
    batch=_reduce_batch,
)


def _cumsum_vjp(g: Any, out: Any, x: Any, xp: Any, axis: Any = None) -> Any:
    """Each x_i feeds every out_k with k >= i: g summed from the end."""
    if axis is None:  # NumPy's flattened scan
        return xp.reshape(_flip(xp.cumsum(_flip(g, 0, xp), 0), 0, xp), x.shape)
    return _flip(xp.cumsum(_flip(g, axis, xp), axis), axis, xp)


cumsum = defop(
    "cumsum",
    lambda x, axis=None: np.cumsum(x, axis),
    _cumsum_vjp,
    cases=_scan_cases(),
    nosym="a scan",
    doc="d cumsum(x)_k = sum_{i <= k} dx_i",
    local=("reverse cumsum of g",),
    batch=batch_along(flat=True),
)


def _cumprod_vjp(g: Any, out: Any, x: Any, xp: Any, axis: Any = None) -> Any:
    """d out_k / d x_i = prod_{j <= k, j != i} x_j: out_k / x_i summed from the end where that
    is exact; else those products directly (row i of a matrix has x_i set to 1)."""
    if axis is None:
        return xp.reshape(_cumprod_vjp(g, out, xp.reshape(x, (-1,)), xp, 0), x.shape)
    if x.size == 0 or _divisible(out):
        return _cumsum_vjp(g * out, out, x, xp, axis) / x
    xm, perm = _last(x, axis, xp)
    gm, _ = _last(g, axis, xp)
    n = xm.shape[-1]
    rows = xp.where(np.eye(n, dtype=bool), 1.0, xp.reshape(xm, (*xm.shape[:-1], 1, n)))
    # where, not a product with the mask: inf * 0 would be NaN
    partial = xp.where(np.triu(np.ones((n, n), dtype=bool)), xp.cumprod(rows, -1), 0.0)
    return _unlast(xp.matmul(partial, xp.reshape(gm, (*gm.shape, 1))), x, perm, xp)


cumprod = defop(
    "cumprod",
    lambda x, axis=None: np.cumprod(x, axis),
    _cumprod_vjp,
    cases=_scan_cases([0.0], [0.0, 1.5, 0.0]),
    nosym="a scan",
    doc="d cumprod(x)_k = sum_{i <= k} (prod_{j <= k, j != i} x_j) dx_i",
    differs="an inf or NaN in x: the gradient is the product of the others (torch: NaN)",
    local=("g * products of the others",),
    batch=batch_along(flat=True),
)


def _logcumsumexp_vjp(g: Any, out: Any, x: Any, xp: Any, axis: int) -> Any:
    """dL/dx_i = sum_{k >= i} g_k e^(x_i - out_k); every such term is at most 1 (out_k >= x_i),
    so a matrix of them never overflows, where e^x_i sum g_k e^-out_k would."""
    xm, perm = _last(x, axis, xp)
    om, _ = _last(out, axis, xp)
    gm, _ = _last(g, axis, xp)
    n = xm.shape[-1]
    later = np.tril(np.ones((n, n), dtype=bool))  # [k, i]: i <= k
    d = xp.reshape(xm, (*xm.shape[:-1], 1, n)) - xp.reshape(om, (*om.shape, 1))
    weights = xp.where(later, xp.exp(xp.where(later, d, 0.0)), 0.0)
    gi = xp.matmul(xp.reshape(gm, (*gm.shape[:-1], 1, n)), weights)
    return _unlast(gi, x, perm, xp)


logcumsumexp = defop(
    "logcumsumexp",
    lambda x, axis: np.logaddexp.accumulate(x, axis=axis),
    _logcumsumexp_vjp,
    cases=_scan_cases(axes=(1, 0, -1)),
    nosym="a scan",
    doc="d lcse(x)_k = sum_{i <= k} e^(x_i - lcse(x)_k) dx_i",
    local=("g * exp(x - out) summed from the end",),
    batch=batch_along(),
)


def _along(indices: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """The getitem index that picks x's elements at `indices` along `axis` (NumPy's
    take_along_axis), so that the gradient is getitem's scatter of g."""
    index = list(np.ix_(*(np.arange(n) for n in indices.shape)))
    index[axis] = indices
    return tuple(index)


def _argsort(x: np.ndarray, axis: int, descending: bool = False) -> np.ndarray:
    """Stable, NaN last (ascending) or first (descending), as torch.sort(stable=True)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    return np.lexsort((-x, ~np.isnan(x)), axis=axis)


def _cummax_indices(x: np.ndarray, axis: int) -> np.ndarray:
    """Where each running max was taken, as torch: the latest tie, and a NaN once one is seen
    (a later NaN moves the index to itself)."""
    out = np.maximum.accumulate(x, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    position = np.arange(x.shape[axis]).reshape(shape)
    return np.maximum.accumulate(np.where((x == out) | np.isnan(x), position, 0), axis=axis)


def _pick(x: Tensor, indices: np.ndarray, axis: int) -> Tensor:
    return getitem(x, index=_along(indices, axis % x.ndim))


def _topk_indices(x: np.ndarray, k: int, axis: int, largest: bool) -> np.ndarray:
    order = _argsort(x, axis, descending=largest)
    return np.take(order, np.arange(k), axis=axis)


def _diff(x: Tensor, n: int = 1, axis: int = -1) -> Tensor:
    ax = axis % x.ndim
    pre = (slice(None),) * ax
    for _ in range(n):
        x = sub(getitem(x, index=(*pre, slice(1, None))), getitem(x, index=(*pre, slice(None, -1))))
    return x


def _cases_3x4(*params: dict[str, Any]) -> Callable[..., list[Case]]:
    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        return [((op.domain.sample(rng, (3, 4), dtype),), dict(p)) for p in params]

    return make


sort = defcomposite(
    "sort",
    lambda x, axis=-1, descending=False: _pick(x, _argsort(_np(x), axis, descending), axis),
    nosym="rearranges elements",
    cases=_cases_3x4({"axis": -1}, {"axis": 0, "descending": True}),
    doc="d sort(x) = dx in sorted order (each element keeps its own gradient)",
    batch=batch_along(-1),
)
topk = defcomposite(
    "topk",
    lambda x, k, axis=-1, largest=True: _pick(x, _topk_indices(_np(x), k, axis, largest), axis),
    nosym="selects elements",
    cases=_cases_3x4({"k": 2}, {"k": 2, "axis": 0, "largest": False}),
    doc="d topk(x) = dx at the k largest (or smallest) elements",
    batch=batch_along(-1),
)
cummax = defcomposite(
    "cummax",
    lambda x, axis: _pick(x, _cummax_indices(_np(x), axis), axis),
    nosym="a scan",
    cases=_cases_3x4({"axis": 1}, {"axis": 0}),
    doc="d cummax(x)_k = dx at the running argmax (the latest tie)",
    batch=batch_along(),
)
diff = defcomposite(
    "diff",
    _diff,
    nosym="differences of neighbours",
    cases=_cases_3x4({}, {"n": 2, "axis": 0}),
    doc="d (x_(i+1) - x_i) = dx_(i+1) - dx_i",
    batch=batch_along(-1),
)


# --------------------------------------------------------------------------- more linear algebra
# einsum is the primitive: each input's vjp is itself an einsum (of g with the other inputs),
# so it serves both speeds and every order. tensordot, outer, inner and kron are einsums;
# diagonal, diag, trace, tril and triu select elements (getitem, scatter_add, where).


def _einsum_parts(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[tuple[str, ...], str]:
    """`_expand_einsum`, remembered: the forward, each vjp and the batching rule ask it again
    for the same subscripts and shapes on every call (~5 us each; 5 per W7 step)."""
    return _expand_einsum(subscripts, tuple(tuple(s) for s in shapes))


@functools.lru_cache(maxsize=512)
def _expand_einsum(
    subscripts: str, shapes: tuple[tuple[int, ...], ...]
) -> tuple[tuple[str, ...], str]:
    """The operands' subscripts and the output's, written out: '...' becomes letters (NumPy's
    broadcasting, right-aligned: an operand whose axis is 1 where the others' is larger gets
    a letter of its own there, summed away, since a broadcast value does not depend on that
    index; so the vjps need no unbroadcast), and the implicit output is NumPy's ('...'
    first, then the letters that occur once, sorted)."""
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise OpError(f"einsum: {subscripts!r} names {len(ins)} operands, got {len(shapes)}")
    for s in (*ins, out):
        letters = s.replace("...", "", 1)
        if not builtins.all(c.isalpha() for c in letters):
            raise OpError(f"einsum: {subscripts!r}: subscripts are letters and one '...'")
        if len(set(letters)) != len(letters):
            raise OpError(
                f"einsum: a repeated index within one operand ({s!r}) is not "
                "supported; use diagonal or trace"
            )
    if not arrow:
        named = lhs.replace("...", "")
        out = ("..." if "..." in lhs else "") + "".join(
            sorted(c for c in set(named) if c != "," and named.count(c) == 1)
        )
    free = iter(c for c in _LETTERS if c not in spec)
    ranks = [len(shape) - len(s.replace("...", "")) for s, shape in zip(ins, shapes)]
    for s, shape, r in zip(ins, shapes, ranks):
        if r < 0 or (r and "..." not in s):
            raise OpError(
                f"einsum: {subscripts!r} names {len(s.replace('...', ''))} axes for an "
                f"operand of shape {shape}"
            )
    n = builtins.max(ranks, default=0)
    dots = [sh[s.index("...") : s.index("...") + r] for s, sh, r in zip(ins, shapes, ranks) if r]
    try:
        sizes = np.broadcast_shapes(*dots)  # the '...' axes, broadcast as NumPy's
    except ValueError:
        raise OpError(f"einsum: the '...' axes {dots} do not broadcast") from None
    full = [next(free) for _ in range(n)]
    expanded = []
    for s, sh, r in zip(ins, shapes, ranks):
        if "..." in s:
            at = s.index("...")
            mine = [
                full[k] if sh[at + k - (n - r)] == sizes[k] else next(free) for k in range(n - r, n)
            ]
            s = s.replace("...", "".join(mine))
        expanded.append(s)
    # An output without '...' sums the broadcast axes away, as PyTorch (NumPy refuses: every
    # spec NumPy accepts means the same here)
    return tuple(expanded), out.replace("...", "".join(full))


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_spec(subscripts: str, xs: Any) -> str:
    ins, out = _einsum_parts(subscripts, [np.shape(x) for x in xs])
    return ",".join(ins) + "->" + out


def _einsum(*xs: np.ndarray, subscripts: str) -> np.ndarray:
    return np.einsum(_einsum_spec(subscripts, xs), *xs)


def _einsum_vjp(g: Any, out: Any, *args: Any, argnum: int, subscripts: str) -> Any:
    """Input i's gradient: the einsum of g with the other inputs into input i's subscripts;
    an index only input i has (summed away) gets a vector of ones of its size."""
    *xs, xp = args
    ins, res = _einsum_parts(subscripts, [x.shape for x in xs])
    mine = ins[argnum]
    others = [(s, x) for k, (s, x) in enumerate(zip(ins, xs)) if k != argnum]
    seen = set(res).union(*(s for s, _ in others))
    alone = [(c, mine.index(c)) for c in mine if c not in seen]
    ones = [np.ones(xs[argnum].shape[i], dtype=_np(g).dtype) for _, i in alone]
    spec = ",".join([res, *(s for s, _ in others), *(c for c, _ in alone)]) + "->" + mine
    return xp.einsum(spec, g, *(x for _, x in others), *ones)


def _einsum_batch(b: Any) -> Any:
    """vmap of einsum: one more letter, in front of each batched operand's subscripts and of
    the output's (the shared operands are not repeated)."""
    shapes = [x.shape[1:] if bt else x.shape for x, bt in zip(b.args, b.batched)]
    ins, out = _einsum_parts(b.params["subscripts"], shapes)
    z = next(c for c in _LETTERS if c not in "".join(ins) + out)
    spec = ",".join(z + s if bt else s for s, bt in zip(ins, b.batched)) + "->" + z + out
    return einsum(*b.args, subscripts=spec)


def _einsum_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    def s(*shape: int) -> np.ndarray:
        return op.domain.sample(rng, shape, dtype)

    return [
        ((s(2, 3), s(3, 4)), {"subscripts": "ij,jk->ik"}),
        ((s(2, 3, 4), s(2, 4)), {"subscripts": "bij,bj->bi"}),
        ((s(3, 4),), {"subscripts": "ij->"}),
        ((s(2, 3), s(3), s(3, 2)), {"subscripts": "ij,j,jk"}),
        ((s(3, 2),), {"subscripts": "ij->ji"}),
        ((s(2, 3, 4), s(4, 2)), {"subscripts": "...ij,...jk->...ik"}),
        ((s(1, 3, 4), s(2, 4, 3)), {"subscripts": "...ij,...jk"}),  # '...' broadcast (1 vs 2)
        ((s(3, 2), s(2)), {"subscripts": "i...,...->...i"}),
    ]


einsum = defop(
    "einsum",
    _einsum,
    _einsum_vjp,
    variadic=True,
    arity=-1,
    cases=_einsum_cases,
    nosym="a sum of products over named indices",
    doc="d einsum(x, y) = einsum(dx, y) + einsum(x, dy); each vjp is an einsum",
    differs="an output without '...' sums the '...' axes away, as PyTorch (NumPy refuses)",
    local=("einsum(g, the other inputs)",),
    batch=_einsum_batch,
)


def _letters(n: int, start: int = 0) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[start : start + n]


def _tensordot(a: Tensor, b: Tensor, axes: Any = 2) -> Tensor:
    if isinstance(axes, int):
        axes = (list(range(a.ndim - axes, a.ndim)), list(range(axes)))
    xa, xb = (
        [axes[0]] if isinstance(axes[0], int) else list(axes[0]),
        [axes[1]] if isinstance(axes[1], int) else list(axes[1]),
    )
    sa, sb = list(_letters(a.ndim)), list(_letters(b.ndim, a.ndim))
    for i, j in zip(xa, xb):
        sb[j % b.ndim] = sa[i % a.ndim]
    summed = {sa[i % a.ndim] for i in xa}
    res = [c for c in sa if c not in summed] + [c for c in sb if c not in summed]
    return einsum(a, b, subscripts=f"{''.join(sa)},{''.join(sb)}->{''.join(res)}")


def _inner(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    sa, sb = _letters(a.ndim - 1) + "z", _letters(b.ndim - 1, a.ndim - 1) + "z"
    return einsum(a, b, subscripts=f"{sa},{sb}->{sa[:-1]}{sb[:-1]}")


def _kron(a: Tensor, b: Tensor) -> Tensor:
    n = builtins.max(a.ndim, b.ndim)
    a = reshape(a, shape=(1,) * (n - a.ndim) + a.shape)
    b = reshape(b, shape=(1,) * (n - b.ndim) + b.shape)
    sa, sb = _letters(n), _letters(n, n)
    pairs = "".join(p + q for p, q in zip(sa, sb))
    product = einsum(a, b, subscripts=f"{sa},{sb}->{pairs}")
    return reshape(product, shape=tuple(p * q for p, q in zip(a.shape, b.shape)))


def _diagonal(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal of the (axis1, axis2) planes, last, as np.diagonal."""
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    rest = [i for i in range(x.ndim) if i not in (a1, a2)]
    moved = transpose(x, axes=(*rest, a1, a2))
    n1, n2 = x.shape[a1], x.shape[a2]
    k = builtins.max(0, builtins.min(n1 + builtins.min(offset, 0), n2 - builtins.max(offset, 0)))
    rows = np.arange(k) - builtins.min(offset, 0)
    return getitem(moved, index=(Ellipsis, rows, rows + offset))


def _diag(x: Tensor, k: int = 0) -> Tensor:
    if x.ndim == 2:
        return _diagonal(x, k)
    n = x.shape[0] + builtins.abs(k)
    rows = np.arange(x.shape[0]) + builtins.max(-k, 0)
    return scatter_add(x, index=(rows, rows + k), shape=(n, n))


def _triangle(x: Tensor, k: int, lower: bool) -> Tensor:
    # where, not a product with the mask: inf * 0 would be NaN where torch gives 0
    n, m = x.shape[-2], x.shape[-1]
    mask = np.tri(n, m, k=k, dtype=bool) if lower else ~np.tri(n, m, k=k - 1, dtype=bool)
    return where(mask, x, np.zeros((), x.dtype))  # a zero of x's dtype: bool stays bool


def _pair_cases(
    *pairs: tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]],
) -> Callable[..., list[Case]]:
    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        return [
            ((op.domain.sample(rng, a, dtype), op.domain.sample(rng, b, dtype)), dict(p))
            for a, b, p in pairs
        ]

    return make


def _one_cases(*shapes: tuple[tuple[int, ...], dict[str, Any]]) -> Callable[..., list[Case]]:
    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        return [((op.domain.sample(rng, s, dtype),), dict(p)) for s, p in shapes]

    return make


tensordot = defcomposite(
    "tensordot",
    _tensordot,
    nosym="a sum of products",
    cases=_pair_cases(((2, 3, 4), (3, 4, 2), {}), ((2, 3), (4, 3), {"axes": ([1], [1])})),
    doc="d tensordot(x, y) = tensordot(dx, y) + tensordot(x, dy) (an einsum)",
    batch=batch_compose,
)
outer = defcomposite(
    "outer",
    lambda a, b: einsum(reshape(a, shape=(-1,)), reshape(b, shape=(-1,)), subscripts="i,j->ij"),
    nosym="a product of every pair",
    cases=_pair_cases(((3,), (4,), {}), ((2, 2), (3,), {})),
    doc="d (x y^T) = dx y^T + x dy^T",
    batch=batch_compose,
)
inner = defcomposite(
    "inner",
    _inner,
    nosym="a sum of products",
    cases=_pair_cases(((3,), (3,), {}), ((2, 3), (4, 3), {})),
    doc="d <x, y> = <dx, y> + <x, dy> over the last axes",
    batch=batch_compose,
)
kron = defcomposite(
    "kron",
    _kron,
    nosym="a product of every pair, in blocks",
    cases=_pair_cases(((2, 3), (2, 2), {}), ((3,), (2,), {})),
    doc="d kron(x, y) = kron(dx, y) + kron(x, dy)",
    batch=batch_compose,
)
diagonal = defcomposite(
    "diagonal",
    _diagonal,
    nosym="selects elements",
    cases=_one_cases(((3, 4), {}), ((2, 3, 4), {"offset": 1, "axis1": 1, "axis2": 2})),
    doc="d diagonal(x) = diagonal(dx)",
    batch=batch_compose,
)
diag = defcomposite(
    "diag",
    _diag,
    nosym="places or selects elements",
    cases=_one_cases(((3,), {}), ((3, 4), {"k": -1}), ((2,), {"k": 1})),
    doc="d diag(v) = diag(dv): the diagonal of g for a vector v, a placed g for a matrix",
    batch=batch_compose,
)
trace = defcomposite(
    "trace",
    lambda x, offset=0: sum(_diagonal(x, offset), axis=-1),
    nosym="a sum of selected elements",
    cases=_one_cases(((3, 3), {}), ((3, 4), {"offset": 1})),
    doc="d tr(X) = tr(dX)",
    batch=batch_compose,
)
tril = defcomposite(
    "tril",
    lambda x, k=0: _triangle(x, k, lower=True),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {}), ((2, 3, 3), {"k": -1})),
    doc="d tril(X) = tril(dX)",
    batch=batch_compose,
)
triu = defcomposite(
    "triu",
    lambda x, k=0: _triangle(x, k, lower=False),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {}), ((2, 3, 3), {"k": 1})),
    doc="d triu(X) = triu(dX)",
    batch=batch_compose,
)


# --------------------------------------------------------------------------- more indexing
# Every one of these selects, repeats or places elements: composites of getitem (whose vjp
# scatters g back, accumulating repeats), scatter_add and where, so no new derivative code.


def _axis_index(ndim: int, axis: int, index: Any) -> tuple[Any, ...]:
    """The getitem index that applies `index` along `axis` and keeps every other axis."""
    return (slice(None),) * (axis % ndim) + (index,)


def _roll(x: Tensor, shift: Any, axis: Any = None) -> Tensor:
    if axis is None:
        return reshape(_roll(reshape(x, shape=(-1,)), shift, 0), shape=x.shape)
    shifts, axes = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(axis))
    for s, a in zip(shifts.tolist(), axes.tolist()):
        n = x.shape[a]
        x = getitem(x, index=_axis_index(x.ndim, a, (np.arange(n) - s) % n if n else np.arange(0)))
    return x


def _tile(x: Tensor, reps: tuple[int, ...]) -> Tensor:
    n = builtins.max(len(reps), x.ndim)
    x = reshape(x, shape=(1,) * (n - x.ndim) + x.shape)
    reps = (1,) * (n - len(reps)) + tuple(reps)
    return getitem(x, index=np.ix_(*(np.tile(np.arange(m), r) for m, r in zip(x.shape, reps))))


def _repeat_interleave(x: Tensor, repeats: Any, axis: Any = None) -> Tensor:
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    return getitem(x, index=_axis_index(x.ndim, axis, np.repeat(np.arange(x.shape[axis]), repeats)))


def _scatter(x: Tensor, src: Tensor, axis: int, index: np.ndarray) -> Tensor:
    """x with src's elements written at `index` along `axis` (torch.scatter)."""
    at = _along(index, axis % x.ndim)
    source = (
        src
        if src.ndim == 0
        else getitem(src, index=tuple(np.ix_(*(np.arange(n) for n in index.shape))))
    )
    source = broadcast_to(source, shape=index.shape)
    # a position written more than once keeps its last source, as torch's CPU loop and NumPy's
    # fancy assignment do (a sum of the sources would be none of them); the others get no
    # gradient, since they do not reach the output
    at_full = tuple(np.broadcast_to(a, index.shape) for a in at)
    flat = np.ravel_multi_index(at_full, x.shape, mode="wrap")  # bad indices: scatter_add says
    flat = flat.ravel()
    if np.unique(flat).size < flat.size:
        _, first_from_end = np.unique(flat[::-1], return_index=True)
        last = np.zeros(flat.size, dtype=bool)
        last[flat.size - 1 - first_from_end] = True
        source = where(last.reshape(index.shape), source, np.zeros((), source.dtype))
    placed = scatter_add(source, index=at, shape=x.shape)
    hit = np.zeros(x.shape, dtype=bool)
    hit[at] = True
    return where(hit, placed, x)


def _pad_indices(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Which of an axis' n elements each padded position copies (numpy.pad's modes): widths
    past the axis' length repeat the pattern, as NumPy's do."""
    i = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    if mode == "wrap":
        return i % n
    if mode == "symmetric":  # mirror including the edge element: period 2n
        j = i % (2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    # reflect: mirror about the first and the last element, not repeating them: period 2n - 2
    if n == 1:
        return np.zeros_like(i)
    j = i % (2 * n - 2)
    return np.where(j < n, j, 2 * n - 2 - j)


def _pad(
    x: Tensor,
    pad_width: tuple[tuple[int, int], ...],
    mode: str = "constant",
    constant_values: float = 0.0,
) -> Tensor:
    """numpy.pad: `pad_width` holds one (before, after) pair per axis, from the first."""
    if mode != "constant":
        return getitem(
            x,
            index=np.ix_(*(_pad_indices(n, b, a, mode) for n, (b, a) in zip(x.shape, pad_width))),
        )
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pad_width))
    at = np.ix_(*(np.arange(n) + b for n, (b, _) in zip(x.shape, pad_width)))
    inside = np.zeros(shape, dtype=bool)
    inside[at] = True
    return where(inside, scatter_add(x, index=at, shape=shape), constant_values)


def _unfold(x: Tensor, axis: int, size: int, step: int) -> Tensor:
    """Windows of `size` every `step` along `axis`, as a new last axis (torch's Tensor.unfold)."""
    a = axis % builtins.max(x.ndim, 1)
    starts = np.arange(0, x.shape[a] - size + 1, step)
    windows = getitem(x, index=_axis_index(x.ndim, a, starts[:, None] + np.arange(size)))
    order = (*range(a + 1), *range(a + 2, x.ndim + 1), a + 1)
    return transpose(windows, axes=order)


flip = defcomposite(
    "flip",
    lambda x, axis=None: getitem(
        x,
        index=tuple(
            slice(None, None, -1) if i in _axes(x.ndim, axis) else slice(None)
            for i in range(x.ndim)
        ),
    ),
    nosym="rearranges elements",
    cases=_one_cases(((3, 4), {}), ((2, 3, 4), {"axis": (0, 2)})),
    doc="d flip(x) = flip(dx)",
    batch=batch_compose,
)
roll = defcomposite(
    "roll",
    _roll,
    nosym="rearranges elements",
    cases=_one_cases(((3, 4), {"shift": 1}), ((3, 4), {"shift": (1, -2), "axis": (0, 1)})),
    doc="d roll(x, s) = roll(dx, s)",
    batch=batch_compose,
)
tile = defcomposite(
    "tile",
    _tile,
    nosym="repeats elements",
    cases=_one_cases(((2, 3), {"reps": (2, 1)}), ((3,), {"reps": (2, 2)})),
    doc="d tile(x) = dx summed over the copies",
    differs="PyTorch's Tensor.repeat(*sizes) is this (chainrule's Tensor.repeat too)",
    batch=batch_compose,
)
repeat_interleave = defcomposite(
    "repeat_interleave",
    _repeat_interleave,
    nosym="repeats elements",
    cases=_one_cases(
        ((2, 3), {"repeats": 2, "axis": 1}), ((4,), {"repeats": np.array([1, 0, 2, 1])})
    ),
    doc="d repeat(x) = dx summed over each element's copies",
    differs="NumPy calls it repeat (cr.repeat is this too)",
    batch=batch_compose,
)
index_select = defcomposite(
    "index_select",
    lambda x, axis, index: getitem(x, index=_axis_index(x.ndim, axis, np.asarray(index))),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {"axis": 1, "index": np.array([3, 0, 3])})),
    doc="d x[index along axis] = dx there; repeated indices accumulate",
    batch=batch_compose,
)
take_along_axis = defcomposite(
    "take_along_axis",
    lambda x, indices, axis: getitem(x, index=_along(np.asarray(indices), axis % x.ndim)),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {"indices": np.array([[0, 3], [1, 1], [2, 0]]), "axis": 1})),
    doc="d take_along_axis(x, i) = dx at i; repeated indices accumulate",
    batch=batch_compose,
)
scatter = defcomposite(
    "scatter",
    _scatter,
    nosym="places elements",
    cases=lambda rng, dt, op: [
        (
            (REALS.sample(rng, (3, 4), dt), REALS.sample(rng, (3, 2), dt)),
            {"axis": 1, "index": np.array([[0, 3], [1, 2], [2, 0]])},
        ),
        (  # positions written twice: the last source wins
            (REALS.sample(rng, (3, 4), dt), REALS.sample(rng, (3, 3), dt)),
            {"axis": 1, "index": np.array([[1, 1, 0], [2, 0, 2], [3, 3, 3]])},
        ),
    ],
    doc="d scatter(x, i, s) = dx where nothing is written, ds[i] where s is",
    differs="a position written twice keeps its last source, and only that one gets a gradient "
    "(torch's backward sends one to every source)",
    batch=batch_compose,
)
masked_fill = defcomposite(
    "masked_fill",
    lambda x, mask, value: where(np.asarray(mask), value, x),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {"mask": np.eye(3, 4, dtype=bool), "value": 0.5})),
    doc="d masked_fill(x, m, v) = [not m] dx",
    batch=batch_compose,
)
masked_select = defcomposite(
    "masked_select",
    lambda x, mask: getitem(x, index=np.broadcast_to(np.asarray(mask), x.shape)),
    nosym="selects elements",
    cases=_one_cases(((3, 4), {"mask": np.array([True, False, True, True])})),
    doc="d x[m] = dx[m]",
    batch=batch_compose,
)
# One entry, two calling conventions: chainrule.pad is numpy.pad (pairs per axis from the
# first) and chainrule.nn.functional.pad is torch's (a flat tuple from the last axis), which
# turns its pairs around and its mode names into NumPy's before calling this.
pad = defcomposite(
    "pad",
    _pad,
    nosym="places or repeats elements",
    cases=_one_cases(
        ((2, 3), {"pad_width": ((0, 0), (1, 2))}),
        ((2, 4), {"pad_width": ((1, 0), (2, 1)), "mode": "reflect"}),
        ((3, 2), {"pad_width": ((0, 1), (1, 2)), "mode": "edge"}),
        ((3, 4), {"pad_width": ((2, 0), (5, 3)), "mode": "wrap"}),
        ((3, 2), {"pad_width": ((4, 1), (0, 3)), "mode": "symmetric"}),
    ),
    doc="d pad(x) = dx at x's own positions (plus the copies' for reflect, edge, wrap, symmetric)",
    differs="numpy.pad's names and pairs; nn.functional.pad is PyTorch's (replicate is edge, "
    "circular is wrap); constant_values is one number",
    batch=batch_compose,
)
unfold = defcomposite(
    "unfold",
    _unfold,
    nosym="repeats elements",
    cases=_one_cases(
        ((3, 5), {"axis": 1, "size": 2, "step": 1}), ((7,), {"axis": 0, "size": 3, "step": 2})
    ),
    doc="d windows(x) = dx summed over the windows that hold it",
    batch=batch_compose,
)


# --------------------------------------------------------------------------- grids and reductions
# meshgrid, take_along_dim and scatter_reduce: composites of broadcast_to, getitem,
# scatter_add, where and mul, so their derivatives (sums of broadcast gradients, scatters,
# exact products of the others) follow from those entries at every order.


def _meshgrid(*xs: Tensor, indexing: str = "xy") -> Tensor:
    """The coordinate grids stacked along a new first axis: one tensor, so the table's tests
    and vmap treat the entry as any other; `chainrule.meshgrid` returns the list."""
    ts = [reshape(x, shape=(-1,)) for x in xs]
    shape = [t.shape[0] for t in ts]
    swap = indexing == "xy" and len(ts) >= 2  # NumPy's 'xy': x runs along the columns
    if swap:
        shape[0], shape[1] = shape[1], shape[0]
    grids = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[(1 - i if i < 2 else i) if swap else i] = -1
        grid = broadcast_to(reshape(t, shape=tuple(view)), shape=tuple(shape))
        grids.append(reshape(grid, shape=(1, *shape)))
    return concatenate(*grids, axis=0)


def _grid_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    s = lambda *shape: op.domain.sample(rng, shape, dtype)
    return [
        ((s(3), s(2)), {}),
        ((s(3), s(2), s(4)), {"indexing": "ij"}),
        ((s(2), s(3), s(2)), {"indexing": "xy"}),
    ]


meshgrid = defcomposite(
    "meshgrid",
    _meshgrid,
    variadic=True,
    nosym="places copies of its inputs",
    cases=_grid_cases,
    doc="d grid_i = dx_i broadcast; x_i's gradient sums g_i over the other axes",
    differs="NumPy's default indexing 'xy' (PyTorch's is 'ij': pass indexing='ij'); the entry "
    "stacks the grids along a new first axis, chainrule.meshgrid returns them as a list",
    batch=batch_compose,
)


def _take_along_dim(x: Tensor, indices: Any, axis: Any = None) -> Tensor:
    """torch.take_along_dim: x and the indices broadcast against each other outside `axis`
    (as NumPy's take_along_axis does), or both flattened without it."""
    idx = np.asarray(indices)
    if axis is None:
        return take_along_axis(reshape(x, shape=(-1,)), indices=idx.reshape(-1), axis=0)
    axis %= builtins.max(x.ndim, 1)
    both = [builtins.max(a, b) for a, b in zip(x.shape, idx.shape)]
    x_shape = tuple(n if d == axis else m for d, (n, m) in enumerate(zip(x.shape, both)))
    idx_shape = tuple(n if d == axis else m for d, (n, m) in enumerate(zip(idx.shape, both)))
    if x_shape != x.shape:
        x = broadcast_to(x, shape=x_shape)
    return take_along_axis(x, indices=np.broadcast_to(idx, idx_shape), axis=axis)


take_along_dim = defcomposite(
    "take_along_dim",
    _take_along_dim,
    nosym="selects elements",
    cases=_one_cases(
        ((3, 4), {"indices": np.array([[0, 3], [1, 1], [2, 0]]), "axis": 1}),
        ((3, 4), {"indices": np.array([11, 0, 5, 5])}),
        ((1, 4), {"indices": np.array([[1], [3]]), "axis": 1}),  # both broadcast
    ),
    doc="d take_along_dim(x, i) = dx at i; repeated indices accumulate",
    differs="PyTorch's name for take_along_axis; without dim both inputs are flattened",
    batch=batch_compose,
)

SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _scatter_reduce(
    x: Tensor, src: Tensor, axis: int, index: np.ndarray, reduce: str, include_self: bool = True
) -> Tensor:
    """torch.scatter_reduce: each position of x that `index` names along `axis` becomes the
    reduction of the src elements sent there (and of its own value, with include_self)."""
    block = getitem(src, index=tuple(slice(0, n) for n in index.shape))
    at = tuple(np.broadcast_to(a, index.shape) for a in _along(index, axis % x.ndim))
    hit = np.zeros(x.shape, dtype=bool)
    hit[at] = True
    own = x if include_self else where(hit, np.zeros((), x.dtype), x)
    if reduce in ("sum", "mean"):
        total = own + scatter_add(block, index=at, shape=x.shape)
        if reduce == "sum":
            return total
        count = np.zeros(x.shape, dtype=x.dtype)
        np.add.at(count, at, 1)
        return where(hit, total / np.maximum(count + include_self, 1), x)
    if reduce == "prod":
        return _scatter_prod(x if include_self else where(hit, np.ones((), x.dtype), x), block, at)
    return _scatter_extreme(x, block, at, hit, reduce, include_self)


def _scatter_prod(x: Tensor, block: Tensor, at: tuple[np.ndarray, ...]) -> Tensor:
    """x times every source sent to each position, one factor per arrival (the k-th source
    to reach each position): only multiplications, so the gradient is the exact product of
    the others, zeros included, as torch's (a division by the input would give 0/0)."""
    flat = np.ravel_multi_index(at, x.shape, mode="wrap").ravel()
    order = np.argsort(flat, kind="stable")
    arrival = np.empty(flat.size, dtype=np.int64)
    first = np.r_[0, np.flatnonzero(np.diff(flat[order])) + 1]  # each position's first arrival
    arrival[order] = np.arange(flat.size) - np.repeat(first, np.diff(np.r_[first, flat.size]))
    for k in range(int(arrival.max(initial=-1)) + 1):
        picked = np.flatnonzero(arrival == k)
        sources = getitem(reshape(block, shape=(-1,)), index=picked)
        targets = np.unravel_index(flat[picked], x.shape)
        hit = np.zeros(x.shape, dtype=bool)
        hit[targets] = True
        placed = scatter_add(sources, index=targets, shape=x.shape)
        x = x * where(hit, placed, np.ones((), x.dtype))
    return x


def _scatter_extreme(
    x: Tensor, block: Tensor, at: tuple[np.ndarray, ...], hit: Any, reduce: str, own: bool
) -> Tensor:
    """amax/amin: the extreme value at each position; its gradient is split evenly among the
    inputs equal to it (x's own value with include_self, and the sources), as torch's."""
    pick = np.maximum if reduce == "amax" else np.minimum
    xv, sv = _np(x), _np(block)
    empty = -np.inf if reduce == "amax" else np.inf  # without include_self: sources only
    best = xv.copy() if own else np.where(hit, empty, xv).astype(xv.dtype)
    pick.at(best, at, sv)
    # x's own value counts as a tie even without include_self, and its share is then dropped:
    # torch's rule (ScatterReduceBackward0), so the sources' gradients agree with torch's
    mine = hit & (xv == best)
    theirs = sv == best[at]
    ties = mine.astype(xv.dtype)
    np.add.at(ties, at, theirs.astype(xv.dtype))
    share = ((mine & own) / np.maximum(ties, 1)).astype(xv.dtype)
    weights = (theirs / np.maximum(ties[at], 1)).astype(xv.dtype)
    spread = x * share + scatter_add(block * weights, index=at, shape=x.shape)
    # The value is `best` exactly (an average of equal numbers may be an ulp off); the
    # gradient is the even split, carried by `spread` minus its own constant value.
    return where(hit, spread - spread.detach() + best, x)


def _scatter_reduce_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    x, src = REALS.sample(rng, (3, 4), dtype), REALS.sample(rng, (3, 3), dtype)
    index = np.array([[0, 0, 2], [3, 1, 3], [1, 1, 1]])
    return [
        ((x, src), {"axis": 1, "index": index, "reduce": r, "include_self": s})
        for r in SCATTER_REDUCTIONS
        for s in (True, False)
    ]


def _scatter_reduce_batch(b: Any) -> Any:
    """vmap of scatter_reduce: the batch axis in front of x, src and the index (the same
    index for every example), the axis shifted past it; one call."""
    if b.bparams:
        return batch_loop(b)
    index = np.asarray(b.params["index"])
    params = {
        **b.params,
        "axis": b.params["axis"] % builtins.max(b.rank(0), 1) + 1,
        "index": np.broadcast_to(index, (b.size, *index.shape)),
    }
    return b.op(b.value(0), b.value(1), **params)


scatter_reduce = defcomposite(
    "scatter_reduce",
    _scatter_reduce,
    nosym="reduces placed elements",
    cases=_scatter_reduce_cases,
    doc="d scatter_reduce(x, i, s) = the reduction's derivative where i points, dx elsewhere",
    differs="amax/amin split the gradient evenly among tied values, as PyTorch's (without "
    "include_self, x's own tied value still takes its share, which is dropped, as PyTorch's)",
    batch=_scatter_reduce_batch,
)

# ------------------------------------------------------------------------ NumPy's other functions
# NumPy functions a NumPy user (and autograd's own test suite) reaches for. mod, fmod and
# logaddexp2 are primitives (NumPy's forward is exact where the formula is not); the rest are
# formulas of the entries above, so their derivatives need no code of their own.


def _quotient(x: Any, y: Any, floor: bool) -> np.ndarray:
    """The integer quotient of x / y as PyTorch's backward computes it: NumPy's floor_divide
    (from fmod, so 1 // 0.1 is 9 where floor(1 / 0.1) is 10), or the truncated x / y. A
    constant in the vjps: its derivative is 0 wherever it exists."""
    with np.errstate(divide="ignore", invalid="ignore"):  # y = 0: inf or NaN, as PyTorch
        return np.floor_divide(_np(x), _np(y)) if floor else np.trunc(_np(x) / _np(y))


# mod and fmod: x - y floor(x / y) loses digits where NumPy's remainder is exact (1 % 0.1).
mod = defop(
    "mod",
    np.remainder,
    lambda g, out, x, y, xp: g,
    lambda g, out, x, y, xp: -g * _quotient(x, y, True).astype(g.dtype),
    nosym="SymPy leaves the derivative of Mod unevaluated (a jump at every multiple of y)",
    domain=Domain(0.3, 2.0, 0.0),
    cases=_cases(((2, 3), (2, 3)), ((2, 3), (3,)), ((), (2, 2))),
    doc="d mod(x, y) = dx - floor(x / y) dy; the sign of y (NumPy's %, torch.remainder)",
    local=("1", "(out - x)/y"),
    differs="NumPy calls it mod and remainder, PyTorch remainder; both are this",
)
fmod = defop(
    "fmod",
    np.fmod,
    lambda g, out, x, y, xp: g,
    lambda g, out, x, y, xp: -g * _quotient(x, y, False).astype(g.dtype),
    nosym="C's fmod: a jump at every multiple of y, which SymPy does not differentiate",
    domain=Domain(-2.0, 2.0, 0.3),
    cases=_cases(((2, 3), (2, 3)), ((2, 3), (3,)), ((), (2, 2))),
    doc="d fmod(x, y) = dx - trunc(x / y) dy; the sign of x (C's fmod, torch.fmod)",
    local=("1", "(out - x)/y"),
)
# logaddexp2: log2(2^x + 2^y) overflows at x = 1025; NumPy's shifts by the larger input first.
logaddexp2 = defop(
    "logaddexp2",
    np.logaddexp2,
    lambda g, out, x, y, xp: g * xp.sigmoid((x - y) * math.log(2)),
    lambda g, out, x, y, xp: g * xp.sigmoid((y - x) * math.log(2)),
    sym=lambda sp, x, y: sp.log(2**x + 2**y, 2),
    cases=BINARY,
    doc="d log2(2^x + 2^y) = s((x - y) ln 2) dx + s((y - x) ln 2) dy",
    names=("logaddexp2",),
    expand=True,
    local=("sigmoid((x - y)*log(2))", "sigmoid((y - x)*log(2))"),
)
fabs = defcomposite(
    "fabs",
    lambda x: abs(x),
    sym=lambda sp, x: sp.Abs(x),
    cases=UNARY,
    doc="d|x| = sign(x) dx (NumPy's name for abs of real numbers)",
    names=("fabs",),
    expand=True,
)
rad2deg = defcomposite(
    "rad2deg",
    lambda x: mul(x, 180 / math.pi),
    sym=lambda sp, x: x * 180 / sp.pi,
    cases=UNARY,
    doc="d (180 x / pi) = 180/pi dx (NumPy's degrees too)",
    names=("rad2deg", "degrees"),
    expand=True,
)
deg2rad = defcomposite(
    "deg2rad",
    lambda x: mul(x, math.pi / 180),
    sym=lambda sp, x: x * sp.pi / 180,
    cases=UNARY,
    doc="d (pi x / 180) = pi/180 dx (NumPy's radians too)",
    names=("deg2rad", "radians"),
    expand=True,
)


def _rot90(x: Tensor, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Tensor:
    """NumPy's rot90: a quarter turn is a flip of the second axis and a swap of the two."""
    a, b = (ax % x.ndim for ax in axes)
    swap = list(range(x.ndim))
    swap[a], swap[b] = b, a
    k %= 4
    if k == 2:
        return flip(x, axis=(a, b))
    if k == 1:
        return transpose(flip(x, axis=b), axes=tuple(swap))
    return flip(transpose(x, axes=tuple(swap)), axis=b) if k == 3 else x


def _atleast(x: Tensor, ndim: int) -> Tensor:
    """NumPy's atleast_1d/2d/3d: a 1-d input is a row (1, n) and, in 3-d, (1, n, 1); a 2-d
    input gains a last axis."""
    if x.ndim >= ndim:
        return x
    if x.ndim == 0:
        return reshape(x, shape=(1,) * ndim)
    if x.ndim == 1:
        return reshape(x, shape=(1, *x.shape) if ndim == 2 else (1, *x.shape, 1))
    return reshape(x, shape=(*x.shape, 1))


def _column_stack(*xs: Tensor) -> Tensor:
    """NumPy's column_stack: 1-d inputs are columns, then everything joins along axis 1."""
    cols = [reshape(x, shape=(-1, 1)) if x.ndim < 2 else x for x in xs]
    return concatenate(*cols, axis=1)


def _row_stack(*xs: Tensor) -> Tensor:
    """NumPy's vstack (row_stack): 1-d inputs are rows, then everything joins along axis 0."""
    return concatenate(*(reshape(x, shape=(1, -1)) if x.ndim < 2 else x for x in xs), axis=0)


def _append(x: Tensor, values: Tensor, axis: Any = None) -> Tensor:
    if axis is None:
        return concatenate(reshape(x, shape=(-1,)), reshape(values, shape=(-1,)), axis=0)
    return concatenate(x, values, axis=axis)


def _rollaxis(x: Tensor, axis: int, start: int = 0) -> Tensor:
    """NumPy's rollaxis: `axis` moves to stand before the axis now at `start`."""
    n = x.ndim
    axis, start = axis % n, start + n if start < 0 else start
    order = [i for i in range(n) if i != axis]
    order.insert(start - (axis < start), axis)
    return transpose(x, axes=tuple(order))


def _cross(a: Tensor, b: Tensor, axisa: int = -1, axisb: int = -1, axisc: int = -1) -> Tensor:
    """NumPy's cross of 3-vectors (a 2-vector has z = 0; two of them give the z component)."""
    a, b = _moveaxis(a, axisa % a.ndim, a.ndim - 1), _moveaxis(b, axisb % b.ndim, b.ndim - 1)
    flat = a.shape[-1] == 2 and b.shape[-1] == 2

    def parts(v: Tensor) -> list[Tensor]:
        xyz = [getitem(v, index=(Ellipsis, i)) for i in range(v.shape[-1])]
        return xyz if len(xyz) == 3 else [*xyz, mul(xyz[0], 0.0)]

    (ax, ay, az), (bx, by, bz) = parts(a), parts(b)
    z = sub(mul(ax, by), mul(ay, bx))
    if flat:
        return z
    xyz = [sub(mul(ay, bz), mul(az, by)), sub(mul(az, bx), mul(ax, bz)), z]
    c = concatenate(*(reshape(v, shape=(*v.shape, 1)) for v in _broadcast_all(xyz)), axis=-1)
    return _moveaxis(c, c.ndim - 1, axisc % c.ndim)


def _broadcast_all(xs: list[Tensor]) -> list[Tensor]:
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    return [x if x.shape == shape else broadcast_to(x, shape=shape) for x in xs]


def _select(*choices: Tensor, condlist: tuple[np.ndarray, ...], default: float = 0.0) -> Tensor:
    """NumPy's select: each element from the first choice whose condition holds there."""
    out: Any = default
    for cond, choice in zip(reversed(condlist), reversed(choices)):
        out = where(cond, choice, out)
    return out if isinstance(out, Tensor) else Tensor(np.asarray(out))


def _partition(x: Tensor, kth: Any, axis: int = -1) -> Tensor:
    """NumPy's partition: the elements NumPy's argpartition orders, picked by getitem."""
    return getitem(x, index=_along(np.argpartition(_np(x), kth, axis=axis), axis % x.ndim))


def _gradient(x: Tensor, axis: int = 0, spacing: float = 1.0, edge_order: int = 1) -> Tensor:
    """NumPy's gradient along one axis: central differences inside, one-sided differences of
    first or second order at the two ends, divided by the spacing."""
    n = x.shape[axis]

    def at(i: int) -> Tensor:  # x's slice i along the axis (negative: from the end)
        return getitem(x, index=_axis_index(x.ndim, axis, slice(i % n, i % n + 1)))

    inside = getitem(x, index=_axis_index(x.ndim, axis, slice(2, None)))
    inside = mul(sub(inside, getitem(x, index=_axis_index(x.ndim, axis, slice(None, -2)))), 0.5)
    if edge_order == 1:
        first, last = sub(at(1), at(0)), sub(at(-1), at(-2))
    else:  # (-3 f0 + 4 f1 - f2) / 2 and its mirror image: exact for parabolas
        first = mul(sub(sub(mul(at(1), 4.0), mul(at(0), 3.0)), at(2)), 0.5)
        last = mul(add(sub(mul(at(-1), 3.0), mul(at(-2), 4.0)), at(-3)), 0.5)
    return div(concatenate(first, inside, last, axis=axis), spacing)


ravel = defcomposite(
    "ravel",
    lambda x: reshape(x, shape=(-1,)),
    nosym="rearranges elements",
    cases=_one_cases(((2, 3, 4), {})),
    doc="d ravel(x) = ravel(dx) (the elements in C order)",
    batch=batch_compose,
)
flipud = defcomposite(
    "flipud",
    lambda x: flip(x, axis=0),
    nosym="rearranges elements",
    cases=_one_cases(((3, 4), {}), ((3,), {})),
    doc="d flipud(x) = flipud(dx) (flip along axis 0)",
    batch=batch_compose,
)
fliplr = defcomposite(
    "fliplr",
    lambda x: flip(x, axis=1),
    nosym="rearranges elements",
    cases=_one_cases(((3, 4), {}), ((2, 3, 2), {})),
    doc="d fliplr(x) = fliplr(dx) (flip along axis 1)",
    batch=batch_compose,
)
rot90 = defcomposite(
    "rot90",
    _rot90,
    nosym="rearranges elements",
    cases=_one_cases(
        ((3, 4), {}), ((2, 3, 4), {"k": 3, "axes": (2, 0)}), ((3, 4), {"k": -2, "axes": (1, 0)})
    ),
    doc="d rot90(x, k) = rot90(dx, k)",
    batch=batch_compose,
)
atleast_1d, atleast_2d, atleast_3d = (
    defcomposite(
        f"atleast_{n}d",
        lambda x, _n=n: _atleast(x, _n),
        nosym="adds axes of length 1",
        cases=_one_cases(((), {}), ((4,), {}), ((2, 3), {})),
        doc=f"d atleast_{n}d(x) = atleast_{n}d(dx)",
        batch=batch_compose,
    )
    for n in (1, 2, 3)
)
column_stack = defcomposite(
    "column_stack",
    _column_stack,
    nosym="joins arrays",
    variadic=True,
    cases=_cases(((3,), (3, 2), (3,))),
    doc="d column_stack(xs) = column_stack(dxs)",
    batch=batch_compose,
)
row_stack = defcomposite(
    "row_stack",
    _row_stack,
    nosym="joins arrays",
    variadic=True,
    cases=_cases(((3,), (2, 3), (3,))),
    doc="d row_stack(xs) = row_stack(dxs) (NumPy's vstack)",
    batch=batch_compose,
)
append = defcomposite(
    "append",
    _append,
    nosym="joins arrays",
    cases=lambda rng, dt, op: [
        *_pair_cases(((2, 3), (4,), {}), ((2, 3), (1, 3), {"axis": 0}))(rng, dt, op)
    ],
    doc="d append(x, v) = append(dx, dv) (flattened when axis is None)",
    arity=2,
    batch=batch_compose,
)
rollaxis = defcomposite(
    "rollaxis",
    _rollaxis,
    nosym="rearranges axes",
    cases=_one_cases(((2, 3, 4), {"axis": 2}), ((2, 3, 4), {"axis": 0, "start": 3})),
    doc="d rollaxis(x) = rollaxis(dx)",
    batch=batch_compose,
)
cross = defcomposite(
    "cross",
    _cross,
    nosym="a vector of products",
    cases=_pair_cases(
        ((4, 3), (4, 3), {}),
        ((3, 2), (2, 3), {"axisa": 0, "axisc": 0}),
        ((2,), (5, 3), {}),
        ((4, 2), (4, 2), {}),
    ),
    doc="d (a x b) = da x b + a x db",
    arity=2,
    batch=batch_compose,
)
select = defcomposite(
    "select",
    _select,
    nosym="picks elements",
    variadic=True,
    cases=lambda rng, dt, op: [
        (
            (REALS.sample(rng, (3, 4), dt), REALS.sample(rng, (3, 4), dt)),
            {
                "condlist": (np.eye(3, 4, dtype=bool), np.tri(3, 4, dtype=bool)),
                "default": 0.5,
            },
        )
    ],
    doc="d select(c, xs) = dx_i where c_i is the first condition that holds, else 0",
    batch=batch_compose,
)
partition = defcomposite(
    "partition",
    _partition,
    nosym="rearranges elements",
    cases=_one_cases(((7,), {"kth": 3}), ((5, 3), {"kth": (1, 3), "axis": 0})),
    doc="d partition(x) = dx at the positions argpartition picks",
    batch=batch_along(-1),
)
gradient = defcomposite(
    "gradient",
    _gradient,
    nosym="finite differences of neighbouring elements",
    cases=_one_cases(
        ((5,), {}), ((4, 3), {"axis": 1, "spacing": 0.5}), ((4, 3), {"edge_order": 2})
    ),
    doc="d gradient(x) = gradient(dx) (a linear map of x)",
    batch=batch_compose,
)


# --------------------------------------------------------------------------- not differentiable
# Predicates, indices and new tensors (defconst): the table describes them as it does every
# op (docs/ops.md, the porting pages, the vmap and convention tests read them), and says they
# have no derivative: their results carry none, as PyTorch's (requires_grad False).


def _special_cases(*shapes: tuple[int, ...]) -> Callable[..., list[Case]]:
    """Inputs of `shapes` (one per input) with a NaN, an inf and a -inf in the first."""

    def make(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
        xs = [op.domain.sample(rng, s, dtype) for s in shapes]
        xs[0].reshape(-1)[:3] = (np.nan, np.inf, -np.inf)
        return [(tuple(xs), {})]

    return make


isnan = defconst("isnan", np.isnan, "bool", cases=_special_cases((3, 4)), doc="x is NaN")
isinf = defconst("isinf", np.isinf, "bool", cases=_special_cases((3, 4)), doc="x is +inf or -inf")
isfinite = defconst(
    "isfinite", np.isfinite, "bool", cases=_special_cases((3, 4)), doc="x is neither NaN nor inf"
)


def _close_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    x = op.domain.sample(rng, (3, 4), dtype)
    y = x + np.where(np.arange(4) % 2, 1e-9, 1e-3).astype(dtype)  # half close, half not
    return [((x, y), {}), ((x, x[0]), {"rtol": 0.0, "atol": 0.0}), ((x, y), {"atol": 1e-2})]


isclose = defconst(
    "isclose",
    lambda x, y, rtol=1e-05, atol=1e-08, equal_nan=False: np.isclose(
        x, y, rtol=rtol, atol=atol, equal_nan=equal_nan
    ),
    "bool",
    cases=_close_cases,
    doc="abs(x - y) <= atol + rtol abs(y), elementwise (NumPy's and PyTorch's defaults)",
)


def _allclose_batch(b: Any) -> Any:
    """vmap of allclose: isclose of the batch, then all of it over each example's axes."""
    r = builtins.max(b.rank(0), b.rank(1))
    close = isclose(*(_unsqueeze_example(b.value(i), r) for i in (0, 1)), **b.params)
    return all(close, axis=tuple(range(1, close.ndim)))


allclose = defconst(
    "allclose",
    lambda x, y, rtol=1e-05, atol=1e-08, equal_nan=False: np.allclose(
        x, y, rtol=rtol, atol=atol, equal_nan=equal_nan
    ),
    "a 0-d bool (chainrule.allclose returns a Python bool)",
    cases=_close_cases,
    doc="every element isclose",
    batch=_allclose_batch,
)
any = defconst(
    "any",
    lambda x, axis=None, keepdims=False: np.any(x, axis=axis, keepdims=keepdims),
    "bool",
    cases=_reduce_cases,
    doc="some element over axis is nonzero",
    batch=_reduce_batch,
)
all = defconst(
    "all",
    lambda x, axis=None, keepdims=False: np.all(x, axis=axis, keepdims=keepdims),
    "bool",
    cases=_reduce_cases,
    doc="every element over axis is nonzero",
    batch=_reduce_batch,
)


def _arg_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    x = op.domain.sample(rng, (3, 4), dtype)
    return [
        ((x,), {"axis": 1}),
        ((x,), {"axis": 0, "keepdims": True}),
        ((x,), {}),
        ((x,), {"keepdims": True}),
    ]


argmax = defconst(
    "argmax",
    lambda x, axis=None, keepdims=False: np.argmax(x, axis=axis, keepdims=keepdims),
    "int64 indices",
    cases=_arg_cases,
    doc="where the largest element over axis is (the flat index without one; NaN is largest)",
    batch=batch_along(flat=True),
)
argmin = defconst(
    "argmin",
    lambda x, axis=None, keepdims=False: np.argmin(x, axis=axis, keepdims=keepdims),
    "int64 indices",
    cases=_arg_cases,
    doc="where the smallest element over axis is (the flat index without one; NaN is smallest)",
    batch=batch_along(flat=True),
)
argsort = defconst(
    "argsort",
    lambda x, axis=-1, descending=False: _argsort(x, axis, descending),
    "int64 indices",
    cases=_cases_3x4({"axis": -1}, {"axis": 0, "descending": True}),
    doc="the indices that sort x along axis (stable; NaN last, or first when descending)",
    batch=batch_along(-1),
)
one_hot = defconst(
    "one_hot",
    lambda labels, num_classes: (labels[..., None] == np.arange(num_classes)).astype(np.int64),
    "int64",
    cases=lambda rng, dtype, op: [((rng.integers(0, 4, size=(3, 2)),), {"num_classes": 4})],
    doc="label k as a row with 1 at k and 0 elsewhere",
)


# New tensors: no inputs, so nothing to differentiate; `chainrule.zeros(..., requires_grad=True)`
# makes the result a leaf to differentiate with respect to. The random ones draw from
# chainrule.manual_seed's generator (called each time: manual_seed replaces it).
def _made(**params: Any) -> Callable[..., list[Case]]:
    return lambda rng, dtype, op: [((), dict(params))]


NEW = "a new tensor (a leaf)"
zeros = defconst(
    "zeros",
    lambda shape, dtype=np.float32: np.zeros(shape, dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 3)),
    doc="0 everywhere",
)
ones = defconst(
    "ones",
    lambda shape, dtype=np.float32: np.ones(shape, dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 3)),
    doc="1 everywhere",
)
full = defconst(
    "full",
    lambda shape, value, dtype=np.float32: np.full(shape, value, dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 3), value=1.5),
    doc="value everywhere",
)
empty = defconst(
    "empty",
    lambda shape, dtype=np.float32: np.empty(shape, dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 0)),
    doc="uninitialised (whatever the memory held)",
)
eye = defconst(
    "eye",
    lambda n, m=None, k=0, dtype=np.float32: np.eye(n, m, k=k, dtype=dtype),
    NEW,
    arity=0,
    cases=_made(n=2, m=3, k=1),
    doc="1 on the k-th diagonal of an n x m matrix, 0 elsewhere",
)
arange = defconst(
    "arange",
    lambda start, stop, step=1, dtype=None: np.arange(start, stop, step, dtype=dtype),
    NEW + "; int64 for integer bounds",
    arity=0,
    cases=_made(start=0.0, stop=1.0, step=0.25, dtype=np.float32),
    doc="start, start + step, ... below stop",
)
linspace = defconst(
    "linspace",
    lambda start, stop, num, endpoint=True, dtype=np.float32: np.linspace(
        start, stop, num, endpoint=endpoint
    ).astype(dtype),
    NEW,
    arity=0,
    cases=_made(start=-1.0, stop=2.0, num=4),
    doc="num evenly spaced numbers from start to stop",
)
logspace = defconst(
    "logspace",
    lambda start, stop, num, base=10.0, dtype=np.float32: np.logspace(
        start, stop, num, base=base
    ).astype(dtype),
    NEW,
    arity=0,
    cases=_made(start=0.0, stop=3.0, num=4, base=2.0),
    doc="base ** linspace(start, stop, num)",
)
randn = defconst(
    "randn",
    lambda shape, dtype=np.float32: _random.generator().standard_normal(shape, dtype=dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 3)),
    doc="standard normal samples (chainrule.manual_seed seeds them)",
)
rand = defconst(
    "rand",
    lambda shape, dtype=np.float32: _random.generator().random(shape, dtype=dtype),
    NEW,
    arity=0,
    cases=_made(shape=(2, 3)),
    doc="uniform samples in [0, 1) (chainrule.manual_seed seeds them)",
)
randint = defconst(
    "randint",
    lambda low, high, shape, dtype=np.int64: _random.generator().integers(
        low, high, shape, dtype=np.dtype(dtype)
    ),
    "int64 (a new tensor)",
    arity=0,
    cases=_made(low=0, high=5, shape=(2, 3)),
    doc="integers in [low, high) (chainrule.manual_seed seeds them)",
)
normal = defconst(
    "normal",
    lambda mean, std, shape=None, dtype=np.float32: np.asarray(
        _random.generator().normal(mean, std, shape), dtype=dtype
    ),
    NEW,
    arity=0,
    cases=_made(mean=1.0, std=2.0, shape=(2, 3)),
    doc="normal samples with mean and std (chainrule.manual_seed seeds them)",
)


# --------------------------------------------------------------------------- namespaces


# The functions the vjps call on `xp`, one list for both namespaces: NUMPY_NS (NumPy's own,
# or the helpers below) and TENSOR_NS (chainrule's differentiable ones of the same names,
# filled in by composite.py from this list).
NAMESPACE = (
    "add",
    "multiply",
    "exp",
    "log",
    "sin",
    "cos",
    "sinh",
    "cosh",
    "sqrt",
    "where",
    "matmul",
    "reshape",
    "transpose",
    "broadcast_to",
    "swapaxes",
    "sigmoid",
    "softmax",
    "sum_to",
    "scatter_add",
    "getitem",
    "astype",
    "prod",
    "cumsum",
    "cumprod",
    "einsum",
)
_NUMPY_HELPERS: dict[str, Callable[..., Any]] = {
    "matmul": _blas.matmul,  # np.matmul on the BLAS thread count for the product's size
    "sigmoid": _sigmoid,
    "softmax": _np_softmax,
    "sum_to": _np_sum_to,
    "scatter_add": _np_scatter_add,
    "getitem": lambda x, index: x[index],
    "astype": lambda x, dtype: x.astype(dtype, copy=False),
}
NUMPY_NS = SimpleNamespace(**{n: _NUMPY_HELPERS.get(n) or getattr(np, n) for n in NAMESPACE})
# Filled by composite.py with the same names, as differentiable chainrule functions.
TENSOR_NS = SimpleNamespace()

# --------------------------------------------------------------------------- convolution
# One N-d primitive serves conv1d and conv2d. Both vjps are written with the same `conv` (and
# getitem, scatter_add, reshape, transpose) through `xp`, so the backward pass of a convolution
# is itself a convolution (seed form: the delta of a conv is a full correlation with the
# flipped kernel), and higher derivatives come for free. The input gradient goes through
# `xp.conv_transpose`: that convolution form on Tensors, col2im on arrays (the same numbers,
# 3-8x faster on the LeNet and MNIST-1D layers; see `_np_conv_transpose`).

_Pads = tuple[tuple[int, int], ...]


def _im2col(
    x: np.ndarray,
    kernel: tuple[int, ...],
    groups: int,
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
) -> np.ndarray:
    """The windows of x (N, C, *size) as one matrix per group, in one of two layouts:
    (N, G, Cg * taps, positions) when positions >= taps ("columns"), else
    (G, N * positions, Cg * taps) ("rows"); `_by_positions` tells which from the shapes."""
    view, shape = _windows(x, kernel, groups, stride, padding, dilation)
    return view.reshape(shape)


def _windows(
    x: np.ndarray,
    kernel: tuple[int, ...],
    groups: int,
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
) -> tuple[np.ndarray, tuple[int, ...]]:
    """`_im2col` before its copy: a strided view of x's windows in the matrix's element
    order, and the matrix's shape (the view reshaped to it is the matrix). In the columns
    layout the view's first axis is the batch, so examples can be gathered apart.

    The gather copies fastest with the longer of (positions, taps) innermost, where it reads
    the input along its rows: positions for a layer's forward (then the product comes out as
    (N, O, *pos) with no transpose; 2-4x faster on the MNIST-1D and LeNet layers), taps for a
    conv whose kernel is larger than its output (the weight gradient's convolution form)."""
    nd, n, cg = x.ndim - 2, x.shape[0], x.shape[1] // groups
    if builtins.any(lo or hi for lo, hi in padding):
        x = _zero_pad(x, padding)
    pos = tuple(
        (m - d * (kk - 1) - 1) // s + 1
        for m, d, kk, s in zip(x.shape[2:], dilation, kernel, stride)
    )
    # the windows as a strided view (N, C, *pos, *kernel): position i, tap t at i s + t d
    # (as_strided directly: sliding_window_view's checks were 80 us a call, W8 has 6 a step)
    row = x.strides[2:]
    win = np.lib.stride_tricks.as_strided(
        x,
        (*x.shape[:2], *pos, *kernel),
        (
            *x.strides[:2],
            *(r * s for r, s in zip(row, stride)),
            *(r * d for r, d in zip(row, dilation)),
        ),
        writeable=False,
    )
    win = win.reshape(n, groups, cg, *pos, *kernel)
    npos, taps = math.prod(pos), math.prod(kernel)
    p_axes, k_axes = range(3, 3 + nd), range(3 + nd, 3 + 2 * nd)
    if npos >= taps:
        return win.transpose(0, 1, 2, *k_axes, *p_axes), (n, groups, cg * taps, npos)
    return win.transpose(1, 0, *p_axes, 2, *k_axes), (groups, n * npos, cg * taps)


def _batch_chunks(n: int, threads: int) -> list[slice]:
    """The batch cut into a few chunks per thread, so a helper that starts late takes fewer."""
    return _cut(n, builtins.min(n, 4 * threads))


def _cut(n: int, parts: int) -> list[slice]:
    """range(n) in `parts` slices of sizes differing by at most one."""
    edges = [n * i // parts for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(edges)]


def _zero_pad(x: np.ndarray, padding: _Pads) -> np.ndarray:
    """x (N, C, *size) with zeros around its spatial axes (np.pad costs ~170 us a call in
    Python-level argument handling; this is a zeroed array and one copy)."""
    out = np.zeros(
        (*x.shape[:2], *(m + lo + hi for m, (lo, hi) in zip(x.shape[2:], padding))), x.dtype
    )
    every = (slice(None), slice(None))  # built outside: mypy misreads x[(a, *b)]
    out[every + tuple(slice(lo, lo + m) for m, (lo, _) in zip(x.shape[2:], padding))] = x
    return out


def _by_positions(m: np.ndarray) -> bool:
    """Whether an `_im2col` matrix is in the columns layout (N, G, Cg * taps, positions)."""
    return m.ndim == 4


# The im2col matrices of this thread's recent conv forwards, for their weight gradients:
# {id(x): (weak reference to x, key, matrix)}. Gathering the windows a second time was about a
# third of a conv layer's backward on the LeNet and MNIST-1D steps. A vjp takes a matrix only
# if handed the forward's own x array (the engine and compile's replay hand it that) with the
# same kernel shape and parameters, and takes it out of the slot; on a miss it gathers it again
# with the same `_im2col`, so the gradient is the same floats either way. A matrix goes when
# its x array is freed (the graph that held x is gone: no backward can want it), and at most
# _CONV_KEEP stay alive after forwards without a backward (inference under grad mode, a deep
# stack). A read-only kernel (pooling's ones) is a constant, never trained: nothing is kept.
_CONV_SAVED = threading.local()
_CONV_KEEP = 8


def _conv_saved() -> dict[int, tuple[Any, tuple[Any, ...], np.ndarray]]:
    saved = getattr(_CONV_SAVED, "cols", None)
    if saved is None:
        saved = _CONV_SAVED.cols = {}
    return saved


def _conv_keep(x: np.ndarray, key: tuple[Any, ...], m: np.ndarray) -> None:
    """Keep a forward's matrix `m` of x for the weight gradient, until x is freed."""
    saved, at = _conv_saved(), id(x)
    saved.pop(at, None)
    if len(saved) >= _CONV_KEEP:
        # the oldest: its backward comes last, if at all (a list, not an iterator: a weakref
        # callback may drop an entry at any allocation)
        saved.pop(list(saved)[0], None)  # noqa: RUF015

    def drop(ref: Any) -> None:  # x is freed (in whichever thread): forget its matrix
        if saved.get(at, (None,))[0] is ref:
            saved.pop(at, None)

    saved[at] = (weakref.ref(x, drop), key, m)


def _conv_cols(x: np.ndarray, key: tuple[Any, ...]) -> np.ndarray:
    """The forward's `_im2col(x, *key)` for a weight gradient: taken out of the slot if the
    forward of this x and key kept it, else gathered again (the same floats)."""
    hit = _conv_saved().pop(id(x), None)
    if hit is not None and hit[0]() is x and hit[1] == key:
        return hit[2]
    return _im2col(x, *key)


def _conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
    groups: int = 1,
) -> np.ndarray:
    """y[n, o, p] = sum_{c, k} w[o, c, k] xpad[n, c, p * stride + k * dilation] (+ b[o]).

    im2col on GEMM: the windows are a strided view of the padded input, gathered once into
    one matrix per example and group (`_im2col`), and the kernel matrix multiplies them all
    in one batched matmul (chunks of the batch on several threads when large:
    `_conv_columns`). The matrix is kept for the weight gradient when grad mode is on.
    """
    nd, n, o, k = x.ndim - 2, x.shape[0], w.shape[0], w.shape[2:]
    key = (k, groups, stride, padding, dilation)
    view, shape = _windows(x, *key)
    wm = w.reshape(groups, o // groups, -1)
    pos = tuple(
        (size + lo + hi - d * (kk - 1) - 1) // s + 1
        for size, (lo, hi), d, kk, s in zip(x.shape[2:], padding, dilation, k, stride)
    )
    if len(shape) == 4:  # columns: one product per example and group, (N, O, *pos) directly
        m, y = _conv_columns(view, shape, wm)
        y = y.reshape(n, o, *pos)
    else:  # one product per group, then (N, O, *pos)
        m = view.reshape(shape)
        y = _blas.matmul(m, np.swapaxes(wm, 1, 2))
        y = y.reshape(groups, n, math.prod(pos), o // groups)  # -1 fails on an empty batch
        y = np.ascontiguousarray(y.transpose(1, 0, 3, 2)).reshape(n, o, *pos)
    # a backward may follow (grad mode) and may want dL/dw (w is not a constant)
    if _state.grad_enabled and type(x) is np.ndarray and w.flags.writeable:
        _conv_keep(x, key, m)
    if b is not None:
        y += np.reshape(b, (o,) + (1,) * nd)  # y is a fresh array
    return y


def _conv_columns(
    view: np.ndarray, shape: tuple[int, ...], wm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The columns-layout forward: the im2col matrix (N, G, Cg * taps, pos) gathered from its
    window `view`, and wm (G, Og, Cg * taps) times it, one product per example and group.
    The BLAS is sized by one example's product, which is how it runs either way; a kernel
    large enough for `blas.split_threads` gathers and multiplies chunks of the batch on
    several threads (each example's product is the same call: the same floats)."""
    n, groups, rows, npos = shape
    one = wm.shape[1] * rows * npos  # multiply-adds of one example's product, per group
    _blas.fit_work(one)
    threads = _blas.split_threads(n * groups * one, one) if n > 1 else 1
    if threads == 1:
        m = view.reshape(shape)
        return m, np.matmul(wm, m)
    m = np.empty(shape, view.dtype)
    y = np.empty((n, groups, wm.shape[1], npos), np.result_type(wm, m))

    def chunk(i: int) -> None:
        part = parts[i]
        np.copyto(m[part].reshape(view[part].shape), view[part])
        np.matmul(wm, m[part], out=y[part])

    parts = _batch_chunks(n, threads)
    _blas.run_split(chunk, len(parts), threads)
    return m, y


def _np_conv_grad_w(
    g: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """`_conv_vjp_w` on arrays: dL/dw = g times the forward's im2col matrix (saved by the
    forward, or gathered again), one product per group, summed over the batch in the columns
    layout. The convolution form gathers a second, larger window matrix of x (g as the
    kernel): 1.5-2x slower on the LeNet and MNIST-1D layers."""
    n, o = g.shape[:2]
    og = o // groups
    m = _conv_cols(x, (w.shape[2:], groups, stride, padding, dilation))
    if _by_positions(m):  # sum_n g[n] m[n]^T: the products on one or more threads, one sum
        gm = g.reshape(n, groups, og, math.prod(g.shape[2:]))
        if og <= m.shape[2] and m.shape[2] * m.shape[3] >= 4096:
            # as (m[n] g[n]^T)^T, so that the transposed operand is the smaller g: the same dot
            # products, 1.7x faster on LeNet's second layer (0.52 -> 0.30 ms), 10-20% faster on
            # larger layers; on MNIST-1D's small matrices (K x pos = 750) 3-15% slower
            gw = np.add.reduce(_per_example(m, np.swapaxes(gm, 2, 3)), axis=0).swapaxes(1, 2)
        else:
            gw = np.add.reduce(_per_example(gm, np.swapaxes(m, 2, 3)), axis=0)
    else:  # (G, Og, N * pos) @ (G, N * pos, Cg * taps)
        gm = np.ascontiguousarray(
            g.reshape(n, groups, og, math.prod(g.shape[2:])).transpose(1, 2, 0, 3)
        )
        gw = _blas.matmul(gm.reshape(groups, og, -1), m)
    return gw.reshape(w.shape)


def _per_example(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul(a, b) for (N, G, r, k) @ (N, G, k, c): the BLAS sized by one product, and a
    kernel large enough for `blas.split_threads` split into chunks of the batch over threads
    (each example's product is the same call: the same floats)."""
    n, groups, r, k = a.shape
    one = r * k * b.shape[-1]
    _blas.fit_work(one)
    threads = _blas.split_threads(n * groups * one, one) if n > 1 else 1
    if threads == 1:
        return np.matmul(a, b)
    out = np.empty((n, groups, r, b.shape[-1]), np.result_type(a, b))
    parts = _batch_chunks(n, threads)

    def chunk(i: int) -> None:
        np.matmul(a[parts[i]], b[parts[i]], out=out[parts[i]])

    _blas.run_split(chunk, len(parts), threads)
    return out


def _np_conv_transpose(
    g: np.ndarray,
    w: np.ndarray,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """`_conv_transpose` on arrays, by col2im: per kernel tap, one matmul w_tap^T g gives
    that tap's contribution, added into the padded input at its strided place (no scatter).
    The batch axis is last while adding, so every add runs along rows of N * width elements
    rather than width (1.5x faster on LeNet's second layer), and one tap's product at a time
    stays in cache where all taps' at once (C_in * taps rows) went out to memory and back
    (1.15 -> 0.75 ms on LeNet's second layer). Same numbers as the convolution form, which
    gathers a (C_out * taps)-row window matrix of the zero-dilated, padded g: 3-8x slower on
    the LeNet and MNIST-1D layers. It stays on one thread: cut into parts of the batch on two
    cores it was slower than whole on one (LeNet's second layer 0.75 -> 0.92-1.15 ms, quiet)."""
    (n, o, *pos), (cg, *k) = g.shape, w.shape[1:]
    og, npos = o // groups, math.prod(pos)
    gm = _batch_last(g).reshape(groups, og, npos * n)
    # (taps, G, Cg, Og): each tap's kernel matrix, transposed, contiguous
    wt = np.ascontiguousarray(np.moveaxis(w.reshape(groups, og, cg, -1), -1, 0).swapaxes(2, 3))
    tmp = np.empty((groups, cg, npos * n), dtype=np.result_type(g, w))
    _blas.fit(wt[0], gm)  # every tap's product has the same size: one thread-count decision
    # the padded input, long enough for the last window (a short one past the end is cut)
    reach = [(p - 1) * s + d * (kk - 1) + 1 for p, s, d, kk in zip(pos, stride, dilation, k)]
    full = [builtins.max(r, lo + m + hi) for r, (lo, hi), m in zip(reach, padding, size)]
    out = np.zeros((groups * cg, *full, n), dtype=tmp.dtype)
    every = (slice(None),)  # indices built outside the subscript: mypy misreads x[(a, *b)]
    for t, tap in enumerate(np.ndindex(*k)):
        at = every + tuple(
            slice(i * d, i * d + (p - 1) * s + 1, s)
            for i, d, p, s in zip(tap, dilation, pos, stride)
        )
        np.matmul(wt[t], gm, out=tmp)
        out[at] += tmp.reshape(groups * cg, *pos, n)
    crop = every + tuple(slice(lo, lo + m) for (lo, _), m in zip(padding, size))
    return np.ascontiguousarray(np.moveaxis(out[crop], -1, 0))


def _batch_last(g: np.ndarray) -> np.ndarray:
    """g (N, ...) as a contiguous (prod(...), N). When one example of g spans a multiple of
    4 KiB, the plain transposing copy reads with a stride that maps every example to the same
    cache sets: 188 us for LeNet's (64, 16, 8, 8) gradient, 42 us copied 8 examples at a time
    (65 -> 22 us for each of W9's two col2im parts of 32), which is slower where the stride
    does not alias (135 against 82 us on (64, 6, 24, 24))."""
    n, rest = g.shape[0], math.prod(g.shape[1:])
    if n < 16 or (rest * g.itemsize) % 4096:
        return np.ascontiguousarray(np.moveaxis(g, 0, -1)).reshape(rest, n)
    out, rows = np.empty((rest, n), g.dtype), g.reshape(n, rest)
    for lo in range(0, n, 8):
        out[:, lo : lo + 8] = rows[lo : lo + 8].T
    return out


def _conv_transpose(
    g: Any,
    w: Any,
    xp: Any,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> Any:
    """The adjoint of `_conv` in x: g with stride-1 zeros between its entries, fully correlated
    with the flipped kernel (in and out channels swapped per group), cropped to x's `size`."""
    nd, (n, o), (cg, *k) = len(size), g.shape[:2], w.shape[1:]
    every = (slice(None), slice(None))
    if builtins.any(s > 1 for s in stride):
        spread = tuple((p - 1) * s + 1 for p, s in zip(g.shape[2:], stride))
        g = xp.scatter_add(g, every + tuple(slice(None, None, s) for s in stride), (n, o, *spread))
    wt = xp.transpose(xp.reshape(w, (groups, o // groups, cg, *k)), (0, 2, 1, *range(3, 3 + nd)))
    wt = xp.getitem(
        xp.reshape(wt, (groups * cg, o // groups, *k)), every + (slice(None, None, -1),) * nd
    )
    full = tuple((d * (kk - 1), d * (kk - 1)) for d, kk in zip(dilation, k))
    gx = xp.conv(g, wt, stride=(1,) * nd, padding=full, dilation=dilation, groups=groups)
    # gx covers the padded input from 0 to its length; inputs no window reached get zeros
    # (ops.py shadows the builtin min)
    ends = [r if r < lo + s else lo + s for r, (lo, _), s in zip(gx.shape[2:], padding, size)]
    gx = xp.getitem(gx, every + tuple(slice(lo, e) for (lo, _), e in zip(padding, ends)))
    if gx.shape[2:] != tuple(size):
        gx = xp.scatter_add(
            gx, every + tuple(slice(0, m) for m in gx.shape[2:]), (n, groups * cg, *size)
        )
    return gx


# The vjps take `*rest` = (b, xp) or (xp,): the bias is an optional third input.
def _conv_vjp_w(
    g: Any,
    out: Any,
    x: Any,
    w: Any,
    *rest: Any,
    stride: tuple[int, ...],
    padding: _Pads,
    dilation: tuple[int, ...],
    groups: int = 1,
) -> Any:
    """dL/dw[o, c, k] = sum_{n, p} g[n, o, p] xpad[n, c, p s + k d]: a conv of x (batch and
    channels swapped) with g as the kernel, stride and dilation exchanged, cropped to the taps."""
    (n, _, *size), (cg, *k), nd, xp = x.shape, w.shape[1:], w.ndim - 2, rest[-1]
    xin = xp.transpose(xp.reshape(x, (n, groups, cg, *size)), (2, 1, 0, *range(3, 3 + nd)))
    gk = xp.transpose(g, (1, 0, *range(2, 2 + nd)))
    gw = xp.conv(
        xp.reshape(xin, (cg, groups * n, *size)),
        gk,
        stride=dilation,
        padding=padding,
        dilation=stride,
        groups=groups,
    )
    gw = xp.getitem(gw, (slice(None), slice(None), *(slice(0, kk) for kk in k)))
    return xp.transpose(gw, (1, 0, *range(2, 2 + nd)))


def _conv_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    def s(*shape: int) -> np.ndarray:
        return op.domain.sample(rng, shape, dtype)

    def p(nd: int, stride: int = 1, pad: int = 0, dil: int = 1, groups: int = 1) -> dict[str, Any]:
        return {
            "stride": (stride,) * nd,
            "padding": ((pad, pad),) * nd,
            "dilation": (dil,) * nd,
            "groups": groups,
        }

    return [
        ((s(2, 2, 7), s(3, 2, 3), s(3)), p(1, stride=2, pad=1)),
        ((s(1, 4, 5, 4), s(4, 2, 2, 3)), p(2, stride=1, pad=1, dil=1, groups=2)),
        ((s(2, 3, 9), s(2, 3, 2)), p(1, stride=3, dil=2)),
        ((s(2, 2, 6, 5), s(3, 2, 3, 2)), {**p(2, stride=2, dil=2), "padding": ((1, 2), (0, 1))}),
        ((s(1, 6, 8), s(3, 2, 3), s(3)), p(1, stride=2, pad=2, groups=3)),
    ]


def _conv_vjp_b(g: Any, out: Any, x: Any, w: Any, b: Any, xp: Any, **params: Any) -> Any:
    """dL/db[o] = g summed over the batch and every position."""
    o = g.shape[1]
    return xp.reshape(xp.sum_to(g, (1, o) + (1,) * (g.ndim - 2)), (o,))


def _conv_batch(b: Any) -> Any:
    """vmap of conv: a batch of inputs under shared weights folds into conv's own batch axis;
    per-example weights (per-example gradients make them) fold into groups: example e's
    channels and filters become groups of their own, so one grouped conv runs every example."""
    if b.bparams:
        return batch_loop(b)
    x, n = b.value(0), b.args[0].shape[1 if b.batched[0] else 0]
    if not builtins.any(b.batched[1:]):
        out = b.op(reshape(x, shape=(b.size * n, *x.shape[2:])), *b.args[1:], **b.params)
        return reshape(out, shape=(b.size, n, *out.shape[1:]))
    size, (_, c, *spatial), w = b.size, x.shape[1:], b.value(1)
    # (E, N, C, ...) -> (N, E*C, ...): the examples side by side as channels
    xe = reshape(_moveaxis(x, 0, 1), shape=(n, size * c, *spatial))
    we = reshape(w, shape=(size * w.shape[1], *w.shape[2:]))
    rest = [reshape(b.value(2), shape=(-1,))] if len(b.args) > 2 else []
    out = b.op(xe, we, *rest, **{**b.params, "groups": size * b.params.get("groups", 1)})
    return _moveaxis(reshape(out, shape=(n, size, -1, *out.shape[2:])), 1, 0)


conv = defop(
    "conv",
    _conv,
    lambda g, out, x, w, *rest, stride, padding, dilation, groups=1: rest[-1].conv_transpose(
        g, w, x.shape[2:], stride, padding, dilation, groups
    ),
    lambda g, out, x, w, *rest, stride, padding, dilation, groups=1: rest[-1].conv_grad_w(
        g, x, w, stride, padding, dilation, groups
    ),
    _conv_vjp_b,
    cases=_conv_cases,
    nosym="sums over windows",
    doc="d conv(x, w) = conv(dx, w) + conv(x, dw) + db; dx = full correlation of g with flipped w",
    local=("conv_transpose(g, w)", "correlate(x, g)", "sum(g)"),
    batch=_conv_batch,
)
NUMPY_NS.conv = _conv
TENSOR_NS.conv = lambda *xs, **params: apply(conv, *xs, **params)
# conv's input gradient: col2im on arrays, the differentiable convolution form on Tensors
NUMPY_NS.conv_transpose = _np_conv_transpose
TENSOR_NS.conv_transpose = lambda g, w, *params: _conv_transpose(g, w, TENSOR_NS, *params)
# and its weight gradient: the forward's im2col matrix on arrays, a convolution on Tensors
NUMPY_NS.conv_grad_w = _np_conv_grad_w
TENSOR_NS.conv_grad_w = lambda g, x, w, stride, padding, dilation, groups: _conv_vjp_w(
    g, None, x, w, TENSOR_NS, stride=stride, padding=padding, dilation=dilation, groups=groups
)

# --------------------------------------------------------------------------- max pooling
# A primitive for speed: composed, max pooling gathered each window's first maximum with a
# data-dependent flat index (an argmax pass, a gather) and scattered g back with np.add.at
# into a zeroed input-sized array, about 40% of the LeNet step (W9). Here the forward is
# k - 1 np.maximum over the window taps' strided slabs, and the vjp puts g into each tap's
# slab where that tap holds the window's first maximum (PyTorch's rule for ties; NaN wins),
# found by comparing the slab with the output, so nothing is saved between the two.
# Parameters: kernel, stride, padding, dilation per spatial axis and the output size
# `out_size` (from ceil_mode); x is (N, C, *spatial).


def _pool_padded(x: np.ndarray, k: Any, s: Any, p: Any, d: Any, out: Any) -> np.ndarray:
    """x widened with its dtype's lowest value (never a maximum) by the padding and the
    ceil-mode overhang past the last window's reach."""
    pads = [
        (pp, builtins.max((m - 1) * ss + dd * (kk - 1) + 1 - n - pp, 0))
        for n, m, kk, ss, pp, dd in zip(x.shape[2:], out, k, s, p, d)
    ]
    if not builtins.any(lo or hi for lo, hi in pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=_pool_low(x.dtype))


def _pool_low(dtype: Any) -> Any:
    """The padding of max pooling: -inf, or an integer type's smallest value."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _pool_inside(p: Any, size: Any) -> tuple[slice, ...]:
    """Where x lies inside its padded copy."""
    every = (slice(None), slice(None))  # built outside: mypy misreads x[(a, *b)]
    return every + tuple(slice(pp, pp + n) for pp, n in zip(p, size))


def _pool_taps(k: Any, s: Any, d: Any, out: Any) -> list[tuple[Any, ...]]:
    """Each tap's slab of the padded input, in the taps' row-major order: the slab of tap t
    holds window i's tap t at i's place."""
    every = (slice(None), slice(None))
    return [
        every
        + tuple(
            slice(t * dd, t * dd + (m - 1) * ss + 1, ss) for t, dd, m, ss in zip(tap, d, out, s)
        )
        for tap in np.ndindex(*k)
    ]


def _max_pool_fwd(
    x: np.ndarray, *, kernel: Any, stride: Any, padding: Any, dilation: Any, out_size: Any
) -> np.ndarray:
    """y[n, c, i] = max over window i's taps of x (padding never wins)."""
    xa = _pool_padded(x, kernel, stride, padding, dilation, out_size)
    slabs = [xa[at] for at in _pool_taps(kernel, stride, dilation, out_size)]
    y = np.array(slabs[0])
    for v in slabs[1:]:
        np.maximum(y, v, out=y)  # NaN propagates: a window holding one is NaN
    return y


def _max_pool_hits(
    x: np.ndarray, y: np.ndarray, k: Any, s: Any, p: Any, d: Any
) -> Iterator[tuple[tuple[Any, ...], np.ndarray]]:
    """(slab, where) for each tap: `where` marks the windows whose first maximum the tap
    holds (the first tap equal to y, or the first NaN of a NaN window; never padding)."""
    out = y.shape[2:]
    xa = _pool_padded(x, k, s, p, d, out)
    real = None
    if xa is not x and bool(np.any(y == _pool_low(x.dtype))):  # a max equal to the padding
        real = np.zeros(xa.shape, bool)
        real[_pool_inside(p, x.shape[2:])] = True
    nan = y.dtype.kind == "f" and bool(np.isnan(y).any())
    taken = None
    for at in _pool_taps(k, s, d, out):
        v = xa[at]
        hit = v == y
        if nan:
            hit |= np.isnan(v)
        if real is not None:
            hit &= real[at]
        where = hit if taken is None else hit > taken  # a hit in a window not yet taken
        taken = hit if taken is None else (taken | hit)
        yield at, where


def _max_pool_index(x: np.ndarray, y: np.ndarray, k: Any, s: Any, p: Any, d: Any) -> np.ndarray:
    """The flat position in x of each window's first maximum, shape y.shape."""
    first = np.zeros(y.shape, np.intp)
    for t, (_, where) in enumerate(_max_pool_hits(x, y, k, s, p, d)):
        np.copyto(first, t, where=where)
    origin, offset = _flat_window_index(x.shape, y.shape[2:], k, s, p, d)
    return origin + offset[first]


@functools.lru_cache(maxsize=16)  # a few pooling layers per model
def _flat_window_index(
    shape: tuple[int, ...],
    out: tuple[int, ...],
    k: tuple[int, ...],
    s: tuple[int, ...],
    p: tuple[int, ...],
    d: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Where each window starts in the flattened input (N, C, *out), and each tap's offset
    from there: window i's tap t is at origin[i] + offset[t]. Both depend on the shapes only,
    so a training loop computes them once (read-only, shared)."""
    (n, c, *size), nd = shape, len(k)
    origin = np.arange(n * c).reshape(n, c, *(1,) * nd) * math.prod(size)
    for axis, (m, ss, pp) in enumerate(zip(out, s, p)):
        step = math.prod(size[axis + 1 :])
        origin = origin + ((np.arange(m) * ss - pp) * step).reshape(-1, *(1,) * (nd - axis - 1))
    taps = np.indices(k).reshape(nd, -1)
    offset = np.asarray(
        builtins.sum(t * dd * math.prod(size[a + 1 :]) for a, (t, dd) in enumerate(zip(taps, d)))
    )
    origin.setflags(write=False)
    offset.setflags(write=False)
    return origin, offset


def _np_max_pool_grad(
    g: np.ndarray, y: np.ndarray, x: np.ndarray, k: Any, s: Any, p: Any, d: Any
) -> np.ndarray:
    """The max-pool vjp on arrays. Windows that do not overlap (LeNet's, stride >= span):
    g times each tap's mask written into that tap's slab of a zeroed (padded) input, one
    product per tap and no scatter (0.55 -> 0.3 ms on LeNet's first pool; a masked copyto is
    5x slower than the product). Overlapping windows add into the same places, and an
    infinite or NaN g would make inf * 0 = NaN beside the maximum: a scatter in window order
    instead, so each sum has PyTorch's order, bit for bit."""
    overlap = builtins.any(ss < dd * (kk - 1) + 1 for kk, ss, dd in zip(k, s, d))
    if overlap or not np.isfinite(g).all():
        gx = np.zeros(x.size, g.dtype)
        np.add.at(gx, _max_pool_index(x, y, k, s, p, d).reshape(-1), g.reshape(-1))
        return gx.reshape(x.shape)
    gxa = np.zeros(_pool_padded(x, k, s, p, d, y.shape[2:]).shape, g.dtype)
    for at, where in _max_pool_hits(x, y, k, s, p, d):
        np.multiply(g, where, out=gxa[at])
    if gxa.shape == x.shape:
        return gxa
    return np.ascontiguousarray(gxa[_pool_inside(p, x.shape[2:])])


def _max_pool_grad(g: Any, out: Any, x: Any, xp: Any, **params: Any) -> Any:
    """dL/dx: g at each window's first maximum, summed where windows overlap."""
    k, s, p, d = (params[n] for n in ("kernel", "stride", "padding", "dilation"))
    if xp is NUMPY_NS:
        return _np_max_pool_grad(g, out, x, k, s, p, d)
    # on Tensors (create_graph) a scatter of g, differentiable again: its vjp gathers
    at = _max_pool_index(_np(x), _np(out), k, s, p, d)
    flat = xp.scatter_add(xp.reshape(g, (-1,)), (at.reshape(-1),), (math.prod(x.shape),))
    return xp.reshape(flat, x.shape)


def _max_pool_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    def s(*shape: int) -> np.ndarray:
        return op.domain.sample(rng, shape, dtype)

    def p(k: Any, st: Any, pad: Any, dil: Any, out: Any) -> dict[str, Any]:
        return {"kernel": k, "stride": st, "padding": pad, "dilation": dil, "out_size": out}

    return [
        ((s(2, 3, 6, 7),), p((2, 2), (2, 2), (0, 0), (1, 1), (3, 3))),  # LeNet's: no overlap
        ((s(2, 2, 9),), p((3,), (2,), (1,), (1,), (5,))),  # overlapping, padded
        ((s(1, 2, 8, 9),), p((3, 3), (2, 2), (0, 0), (1, 2), (4, 3))),  # ceil-mode overhang
    ]


def _max_pool_batch(b: Any) -> Any:
    """vmap of max pooling: the examples' batches side by side in the op's own batch axis."""
    x = b.value(0)
    out = b.op(reshape(x, shape=(b.size * x.shape[1], *x.shape[2:])), **b.params)
    return reshape(out, shape=(b.size, x.shape[1], *out.shape[1:]))


max_pool = defop(
    "max_pool",
    _max_pool_fwd,
    _max_pool_grad,
    cases=_max_pool_cases,
    nosym="a maximum over windows",
    doc="d max_pool(x) = dx at each window's first maximum (PyTorch's tie rule)",
    local=("g at each window's first max",),
    batch=_max_pool_batch,
)

# --------------------------------------------------------------------------- recurrent cells
NUMPY_NS.tanh = np.tanh
NUMPY_NS.concatenate = lambda xs, axis=0: np.concatenate(xs, axis=axis)
TENSOR_NS.tanh = lambda x: apply(tanh, x)
TENSOR_NS.concatenate = lambda xs, axis=0: apply(concatenate, *xs, axis=axis)


def _gru_parts(gi: Any, gh: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
    """PyTorch's GRU gates from gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh: r, z, n, gh_n."""
    size = gi.shape[-1] // 3
    # r and z in one call; s(x) = (1 + tanh(x/2)) / 2 is exact, stable and 3 NumPy calls
    rz = 0.5 + 0.5 * xp.tanh(0.5 * (gi[..., : 2 * size] + gh[..., : 2 * size]))
    r, z, ghn = rz[..., :size], rz[..., size:], gh[..., 2 * size :]
    return r, z, xp.tanh(gi[..., 2 * size :] + r * ghn), ghn


def _gru_cell(gi: np.ndarray, gh: np.ndarray, h: np.ndarray) -> np.ndarray:
    _, z, n, _ = _gru_parts(gi, gh, NUMPY_NS)
    return n + z * (h - n)


def _gru_deltas(g: Any, gi: Any, gh: Any, h: Any, xp: Any, argnum: int) -> Any:
    """dL/dgi (argnum 0), dL/dgh (1), dL/dh (2) by the chain rule through the three gates."""
    if argnum == 2:  # h's other paths run through gh, whose own op carries them to h
        size = gi.shape[-1] // 3
        return g * (
            0.5 + 0.5 * xp.tanh(0.5 * (gi[..., size : 2 * size] + gh[..., size : 2 * size]))
        )
    r, z, n, ghn = _gru_parts(gi, gh, xp)
    dn = g * (1 - z) * (1 - n * n)
    dr = dn * ghn * r * (1 - r)
    dz = g * (h - n) * z * (1 - z)
    return xp.concatenate([dr, dz, dn if argnum == 0 else dn * r], axis=-1)


def _gru_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    def s(*shape: int) -> np.ndarray:
        return op.domain.sample(rng, shape, dtype)

    return [((s(2, 9), s(2, 9), s(2, 3)), {}), ((s(6), s(6), s(2)), {})]


# One GRU step h' = n + z (h - n) from the two projections, a primitive for speed: composed it
# is about 17 ops per time step (slices, sigmoids, tanh, products), and a bidirectional GRU
# over 40 steps spent its time in the engine's per-op overhead (MNIST-1D: ~60 ms a training
# step); fused, a step is three ops (this, gi[t] and the linear gh). The vjps recompute the
# gates from the inputs, so they stay differentiable (order 2).
gru_cell = defop(
    "gru_cell",
    _gru_cell,
    lambda g, out, gi, gh, h, xp: _gru_deltas(g, gi, gh, h, xp, 0),
    lambda g, out, gi, gh, h, xp: _gru_deltas(g, gi, gh, h, xp, 1),
    lambda g, out, gi, gh, h, xp: _gru_deltas(g, gi, gh, h, xp, 2),
    cases=_gru_cases,
    nosym="a vector recurrence",
    local=("g * dh'/dgi", "g * dh'/dgh", "g * z"),
    doc="h' = n + z(h - n): dn = g(1 - z)(1 - n^2), dz = g(h - n)z(1 - z), dr = dn gh_n r(1 - r)",
)
