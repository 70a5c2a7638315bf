"""The Tensor operators and methods that `composite._attach` sets at runtime, for type checkers.

`tensor.py` makes this class Tensor's base only under TYPE_CHECKING (at runtime the base is
`object`), so mypy knows `x + y`, `x.sum()` and `x.T` are Tensors while the hot path stays
untouched. The math methods are attached from this class itself (`_attach` reads it), so it is
the one list of them and signatures cannot drift; `tests/test_typing.py` checks that the
operators declared here are the ones attached.
"""

# The bodies below are declarations, never executed: they need no return statement.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

from typing import Any

from chainrule import composite as _c
from chainrule import methods as _m
from chainrule.tensor import Tensor


class TensorMethods:
    """Declarations only: the runtime attributes come from `chainrule.composite._attach`."""

    __add__ = __radd__ = _c.add
    __sub__ = _c.subtract
    __mul__ = __rmul__ = _c.multiply
    __truediv__ = _c.divide
    __pow__ = _c.power
    __matmul__ = _c.matmul
    __neg__ = _c.negative
    __abs__ = _c.abs
    __getitem__ = _c.getitem

    # Reflected operators run `op(other, self)`; for the checker only the types matter.
    def __rsub__(self, other: Any) -> Tensor: ...
    def __rtruediv__(self, other: Any) -> Tensor: ...
    def __rpow__(self, other: Any) -> Tensor: ...
    def __rmatmul__(self, other: Any) -> Tensor: ...
    def __pos__(self) -> Tensor: ...

    # Bitwise operators on bool and integer tensors, and Python's integer division
    # (chainrule.methods.OPERATORS).
    def __and__(self, other: Any) -> Tensor: ...
    def __or__(self, other: Any) -> Tensor: ...
    def __xor__(self, other: Any) -> Tensor: ...
    def __rand__(self, other: Any) -> Tensor: ...
    def __ror__(self, other: Any) -> Tensor: ...
    def __rxor__(self, other: Any) -> Tensor: ...
    def __lshift__(self, other: Any) -> Tensor: ...
    def __rshift__(self, other: Any) -> Tensor: ...
    def __rlshift__(self, other: Any) -> Tensor: ...
    def __rrshift__(self, other: Any) -> Tensor: ...
    def __invert__(self) -> Tensor: ...
    def __floordiv__(self, other: Any) -> Tensor: ...
    def __rfloordiv__(self, other: Any) -> Tensor: ...
    def __mod__(self, other: Any) -> Tensor: ...
    def __rmod__(self, other: Any) -> Tensor: ...

    # Comparisons are elementwise and return bool tensors (no gradient), as in NumPy; the
    # ignore is for object.__eq__/__ne__, which typeshed declares as returning bool.
    def __eq__(self, other: object) -> Tensor: ...  # type: ignore[override]
    def __ne__(self, other: object) -> Tensor: ...  # type: ignore[override]
    def __lt__(self, other: Any) -> Tensor: ...
    def __le__(self, other: Any) -> Tensor: ...
    def __gt__(self, other: Any) -> Tensor: ...
    def __ge__(self, other: Any) -> Tensor: ...

    @property
    def T(self) -> Tensor:
        """The transpose (reversed axes); a 0-d or 1-d tensor is returned unchanged."""

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (chainrule.methods.mT)."""

    exp = _c.exp
    log = _c.log
    sqrt = _c.sqrt
    sin = _c.sin
    cos = _c.cos
    tan = _c.tan
    tanh = _c.tanh
    sigmoid = _c.sigmoid
    relu = _c.relu
    abs = _c.abs
    softplus = _c.softplus
    sum = _c.sum
    mean = _c.mean
    max = _c.max
    min = _c.min
    var = _c.var
    std = _c.std
    clip = _c.clip
    matmul = _c.matmul
    softmax = _c.softmax
    log_softmax = _c.log_softmax
    logsumexp = _c.logsumexp
    reshape = _c.reshape
    transpose = _c.transpose
    swapaxes = _c.swapaxes
    flatten = _c.flatten
    ravel = _c.ravel
    squeeze = _c.squeeze
    unsqueeze = _c.unsqueeze
    expand = _c.expand
    broadcast_to = _c.broadcast_to
    astype = _c.astype
    argmax = _c.argmax
    argmin = _c.argmin
    leaky_relu = _c.leaky_relu
    gelu = _c.gelu
    silu = _c.silu
    sum_to = _c.sum_to
    # issue 11's elementwise functions, with PyTorch's method names
    log1p = _c.log1p
    expm1 = _c.expm1
    exp2 = _c.exp2
    erfc = _c.erfc
    sinc = _c.sinc
    round = _c.around
    trunc = _c.trunc
    reciprocal = _c.reciprocal
    rsqrt = _c.rsqrt
    square = _c.square
    logaddexp = _c.logaddexp
    hypot = _c.hypot
    atan2 = arctan2 = _c.arctan2
    fmax = _c.fmax
    fmin = _c.fmin
    copysign = _c.copysign
    lerp = _c.lerp
    nan_to_num = _c.nan_to_num
    isnan = _c.isnan
    isinf = _c.isinf
    isfinite = _c.isfinite
    isclose = _c.isclose
    allclose = _c.allclose
    prod = _c.prod
    cumsum = _c.cumsum
    cumprod = _c.cumprod
    logcumsumexp = _c.logcumsumexp
    cummax = _c.cummax
    diff = _c.diff
    sort = _c.sort
    argsort = _c.argsort
    topk = _c.topk
    any = _c.any
    all = _c.all
    tensordot = _c.tensordot
    outer = _c.outer
    inner = _c.inner
    kron = _c.kron
    diagonal = _c.diagonal
    diag = _c.diag
    trace = _c.trace
    tril = _c.tril
    triu = _c.triu
    flip = _c.flip
    roll = _c.roll
    tile = _c.tile
    repeat = _c._tensor_repeat  # PyTorch's Tensor.repeat(*sizes) is NumPy's tile
    repeat_interleave = _c.repeat_interleave
    index_select = _c.index_select
    take_along_axis = _c.take_along_axis
    take_along_dim = _c.take_along_dim
    gather = _c.gather
    scatter = _c.scatter
    scatter_add = _c.scatter_add_along
    scatter_reduce = _c.scatter_reduce
    masked_fill = _c.masked_fill
    masked_select = _c.masked_select
    unfold = _c.unfold
    chunk = _c.chunk
    moveaxis = movedim = _c.moveaxis
    unflatten = _c.unflatten

    # PyTorch's names for shapes, conversions and in-place updates (chainrule.methods).
    clamp = _m.clamp
    view = _m.view
    permute = _m.permute
    t = _m.t
    contiguous = _m.contiguous
    dim = _m.dim
    numel = _m.numel
    to = _m.to
    double = _m.double
    half = _m.half
    clone = _m.clone
    add_ = _m.add_
    sub_ = _m.sub_
    mul_ = _m.mul_
    div_ = _m.div_
    copy_ = _m.copy_
    fill_ = _m.fill_
    zero_ = _m.zero_
    floor_divide = _m.floor_divide
    remainder = _m.remainder
    # Last: inside this class body the name `float` is the method from here on.
    float = _m.float_
