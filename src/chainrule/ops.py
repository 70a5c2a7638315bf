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
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from chainrule.mode import _state
from chainrule.tensor import Tensor, _batched, apply

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

    @property
    def primitive(self) -> bool:
        """Whether the engine records it as one node (else it runs `compose`)."""
        return self.compose is None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input names the trace formulas use."""
        return self.args or ("x", "y", "z", "w")[: builtins.max(self.arity, 1)]

    def __call__(self, *args: Any, **params: Any) -> Tensor:
        if "dim" in params or "keepdim" in params:  # PyTorch's spellings of axis/keepdims
            params = _numpy_axis_names(self.name, params)
        if self.compose is not None:
            ts = tuple(a if isinstance(a, Tensor) else Tensor(a) for a in args)
            if _state.levels and _batched(ts, params):  # inside vmap: see batching.py
                from chainrule.batching import batch_apply

                return batch_apply(self, ts, params)
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
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _pad(x: Any, rank: int) -> Any:
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
    return np.swapaxes(x, -1, -2) if not isinstance(x, Tensor) else TENSOR_NS.swapaxes(x, -1, -2)


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
    differs="no beta or threshold arguments (PyTorch's softplus has both)",
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
    sym=lambda sp, x: sp.Max(0, x),
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


def _xent_forward(z: np.ndarray, labels: np.ndarray, mean: bool = False) -> np.ndarray:
    # logsumexp shifted by the row max, without _logsumexp's guard for all -inf rows: there
    # the loss is -inf - (-inf) = NaN either way, and the guard was a fifth of this op's time.
    m = z.max(axis=-1, keepdims=True)
    shifted = z - m
    losses = np.log(np.exp(shifted).sum(axis=-1)) - shifted[_label_index(z, labels)]
    if not mean or losses.ndim == 0:
        return losses
    return np.add.reduce(losses) / losses.size  # ufunc reduce: a quarter of .mean()'s cost


def _xent_vjp(g: Any, out: Any, z: Any, xp: Any, labels: np.ndarray, mean: bool = False) -> Any:
    """(softmax(z) - onehot(labels)) times g per row (seed 002); with mean, g / N per row."""
    rows = labels.size if labels.ndim else 1
    if type(z) is np.ndarray:  # fast path: subtract the one-hot in place, no mask array
        # with mean, out is the mean, so the per-row softmax is recomputed from z
        lse = None if mean else out + z[_label_index(z, labels)]
        p = _np_softmax(z) if lse is None else np.exp(z - lse[..., None])
        p[_label_index(z, labels)] -= 1
        return p * (g / rows) if mean else g[..., None] * p
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
    return xp.matmul(g, _swap(y))


def _matmul_vjp_rhs(g: Any, out: Any, x: Any, y: Any, xp: Any) -> Any:
    """dL/dy = x^T g, with 1-D operands promoted to matrices and back."""
    if x.ndim == 1:
        gm = xp.reshape(g, (*g.shape[:-1], 1, g.shape[-1])) if y.ndim > 1 else g
        return xp.reshape(x, (-1, 1)) * gm if y.ndim > 1 else g * x
    if y.ndim == 1:  # (..., n, m) @ (..., m, 1) -> (..., n, 1): drop the promoted axis
        gy = xp.matmul(_swap(x), xp.reshape(g, (*g.shape, 1)))
        return xp.reshape(gy, gy.shape[:-1])
    return xp.matmul(_swap(x), g)


def _matmul_cases(rng: np.random.Generator, dtype: Any, op: OpDef) -> list[Case]:
    pairs = [
        ((3, 4), (4, 2)),
        ((4,), (4,)),
        ((3, 4), (4,)),
        ((4,), (4, 2)),
        ((2, 3, 4), (4, 2)),
        ((2, 1, 3, 4), (3, 4, 5)),
    ]
    return [
        ((op.domain.sample(rng, a, dtype), op.domain.sample(rng, b, dtype)), {}) for a, b in pairs
    ]


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    _same_dtype("matmul", x, y)
    try:
        return np.matmul(x, y)
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
    out = matmul(_pad(x, rank) if bx else x, _pad(y, rank) if by else y)
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
    return g @ w


def _linear_vjp_w(g: Any, out: Any, x: Any, w: Any, *rest: Any) -> Any:
    """dL/dW = g^T x, summed over every leading (batch) axis of x."""
    if x.ndim == 2:
        return g.T @ x
    xp = rest[-1]
    g2 = xp.reshape(g, (-1, g.shape[-1]))
    return g2.T @ xp.reshape(x, (-1, x.shape[-1]))


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
    return broadcast_to(_pad(b.args[0], len(shape)), shape=(b.size, *shape))


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
    sym=lambda sp, x: sp.Piecewise((x, x > 0), (x / 100, True)),
    cases=UNARY,
    doc="d leaky_relu(x) = [x > 0] dx + 0.01 [x <= 0] dx",
    names=("leaky_relu", "LeakyReLU"),
    rule="Leaky ReLU",
    dsym=lambda sp, F, u: sp.Piecewise((1, u > 0), (sp.Rational(1, 100), True)),
    kink="at x = 0 leaky_relu has no derivative; chainrule uses the left slope 0.01, as PyTorch",
    differs="the parser and the explainer use the default slope 0.01; leaky_relu'(NaN) is 0",
)
elu = defcomposite(
    "elu",
    # clip, not minimum: the gradient passes at the bound, so elu'(0) = 1 (minimum splits ties)
    lambda x, alpha=1.0: where(_np(x) > 0, x, mul(sub(exp(clip(x, a_max=0.0)), 1.0), alpha)),
    sym=lambda sp, x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
    cases=UNARY,
    doc="d elu(x) = [x > 0] dx + e^x [x <= 0] dx",
    names=("elu", "ELU"),
    rule="ELU",
    dsym=lambda sp, F, u: sp.Piecewise((1, u > 0), (sp.exp(u), True)),
    differs="the parser and the explainer use alpha = 1; elu'(NaN) is 0 (torch passes g)",
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
)
_NUMPY_HELPERS: dict[str, Callable[..., Any]] = {
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
# flipped kernel), and higher derivatives come for free.

_Pads = tuple[tuple[int, int], ...]


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

    im2col on GEMM: the windows are a strided view of the padded input, gathered once into a
    (groups, N * positions, C/groups * taps) matrix and multiplied by the kernel matrix.
    """
    nd, (n, _), (o, cg), k = x.ndim - 2, x.shape[:2], w.shape[:2], w.shape[2:]
    if any(lo or hi for lo, hi in padding):
        x = np.pad(x, ((0, 0), (0, 0), *padding))
    span = tuple(d * (kk - 1) + 1 for d, kk in zip(dilation, k))
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    steps: tuple[Any, ...] = (Ellipsis, *(slice(None, None, s) for s in (*stride, *dilation)))
    win = win[steps]
    pos = win.shape[2 : 2 + nd]
    # (N, G, Cg, *pos, *k) -> (G, N, *pos, Cg, *k): channels and taps last, contracted by GEMM
    win = win.reshape(n, groups, cg, *pos, *k)
    cols = win.transpose(1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
    y = cols.reshape(groups, -1, cg * math.prod(k)) @ np.swapaxes(
        w.reshape(groups, o // groups, -1), 1, 2
    )
    y = y.reshape(groups, n, *pos, o // groups).transpose(1, 0, 2 + nd, *range(2, 2 + nd))
    y = np.ascontiguousarray(y).reshape(n, o, *pos)
    if b is not None:
        y += np.reshape(b, (o,) + (1,) * nd)  # y is a fresh array
    return y


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
    if any(s > 1 for s in stride):
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
    """vmap of conv: a batch of inputs under shared weights folds into conv's own batch axis
    (one call); batched weights or bias run per example (ops.batch_loop)."""
    if not b.batched[0] or any(b.batched[1:]) or b.bparams:
        return batch_loop(b)
    x = b.args[0]
    n = x.shape[1]
    out = b.op(reshape(x, shape=(b.size * n, *x.shape[2:])), *b.args[1:], **b.params)
    return reshape(out, shape=(b.size, n, *out.shape[1:]))


conv = defop(
    "conv",
    _conv,
    lambda g, out, x, w, *rest, stride, padding, dilation, groups=1: _conv_transpose(
        g, w, rest[-1], x.shape[2:], stride, padding, dilation, groups
    ),
    _conv_vjp_w,
    _conv_vjp_b,
    cases=_conv_cases,
    nosym="sums over windows",
    doc="d conv(x, w) = conv(dx, w) + conv(x, dw) + db; dx = full correlation of g with flipped w",
    local=("conv_transpose(g, w)", "correlate(x, g)", "sum(g)"),
    batch=_conv_batch,
)
NUMPY_NS.conv = _conv
TENSOR_NS.conv = lambda *xs, **params: apply(conv, *xs, **params)

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
    r, z, n, ghn = _gru_parts(gi, gh, xp)
    if argnum == 2:
        return g * z  # h's other paths run through gh, whose own op carries them to h
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
