"""Pooling and resampling: max, average and adaptive average pools, `interpolate`, as PyTorch.

None needs derivative code of its own: max pooling is the op table's `max_pool` primitive
(the gradient goes to each window's first maximum, PyTorch's rule for ties); average pooling
is the `conv` primitive with a ones kernel; adaptive pooling and linear interpolation are
matmuls with a fixed weight matrix per axis; nearest is a gather.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule.compile import recomputed
from chainrule.nn.conv import _batched, _tuple
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, apply

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "MaxPool1d",
    "MaxPool2d",
    "Upsample",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "interpolate",
    "max_pool1d",
    "max_pool2d",
]


def _out_sizes(
    name: str,
    size: tuple[int, ...],
    k: tuple[int, ...],
    s: tuple[int, ...],
    p: tuple[int, ...],
    d: tuple[int, ...],
    ceil_mode: bool,
) -> tuple[int, ...]:
    """PyTorch's pooling_output_shape: a ceil-mode window must start inside input or left pad."""
    out = []
    for n, kk, ss, pp, dd in zip(size, k, s, p, d):
        if 2 * pp > dd * (kk - 1) + 1:
            raise ValueError(f"{name}: padding {p} must be at most half the kernel size {k}")
        span = n + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil_mode else 0)
        m = span // ss + 1
        if ceil_mode and (m - 1) * ss >= n + pp:
            m -= 1
        if m < 1:
            raise ValueError(f"{name}: input of spatial size {size} is smaller than kernel {k}")
        out.append(m)
    return tuple(out)


def _pool_args(
    name: str, nd: int, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple[Tensor, bool, tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    x, unbatched = _batched(C._t(x), nd, name)
    k = _tuple(kernel_size, nd, name, "kernel_size")
    s = k if stride is None else _tuple(stride, nd, name, "stride")
    p = _tuple(padding, nd, name, "padding", low=0)
    d = _tuple(dilation, nd, name, "dilation")
    return x, unbatched, k, s, p, d


def _max_pool(
    nd: int,
    input: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    return_indices: bool,
) -> Any:
    name = f"max_pool{nd}d"
    x, unbatched, k, s, p, d = _pool_args(name, nd, input, kernel_size, stride, padding, dilation)
    size = x.shape[2:]
    out = _out_sizes(name, size, k, s, p, d, ceil_mode)
    pooled = apply(ops.max_pool, x, kernel=k, stride=s, padding=p, dilation=d, out_size=out)
    y = C.squeeze(pooled, 0) if unbatched else pooled
    if not return_indices:
        return y
    at = _max_at(x.data, pooled.data, k, s, p, d)
    return y, Tensor(_plane_indices(at, size, unbatched))


@recomputed  # from the maxima's positions: chainrule.compile computes it again on every replay
def _plane_indices(at: np.ndarray, size: Any, unbatched: bool) -> np.ndarray:
    """Each maximum's flat index within its channel's own plane (PyTorch's return_indices)."""
    flat = at % math.prod(size)
    return flat[0] if unbatched else flat


@recomputed  # computed from x's values: chainrule.compile computes it again on every replay
def _max_at(xd: np.ndarray, yd: np.ndarray, k: Any, s: Any, p: Any, d: Any) -> np.ndarray:
    """The flat position in x (N, C, *size) of each window's first maximum, shape (N, C, *out)."""
    return ops._max_pool_index(xd, yd, k, s, p, d)


def max_pool1d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Maximum over windows of (N, C, L); the gradient goes to the first maximum (PyTorch).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.max_pool1d(cr.tensor([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2).tolist()
    [[[3.0, 5.0]]]
    """
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Maximum over windows of (N, C, H, W); the gradient goes to the first maximum."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Maximum over windows of (N, C, D, H, W); the gradient goes to the first maximum."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _max_unpool(
    nd: int,
    input: Any,
    indices: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    output_size: Any,
) -> Tensor:
    name = f"max_unpool{nd}d"
    x, unbatched, k, s, p, _ = _pool_args(name, nd, input, kernel_size, stride, padding, 1)
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.shape != (x.shape if not unbatched else x.shape[1:]):
        raise ValueError(f"{name}: indices of shape {idx.shape} for input of shape {input.shape}")
    if output_size is None:  # the size max_pool came from: (n - 1) s - 2 p + k
        size = tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(x.shape[2:], s, p, k))
    else:  # PyTorch's (*spatial) or (N, C, *spatial), whose N and C are ignored
        size = tuple(output_size)[-nd:]
    flat = int(np.prod(size))
    if idx.size and (idx.min() < 0 or idx.max() >= flat):
        raise ValueError(f"{name}: indices must lie in [0, {flat}) for output size {size}")
    # each value goes back to the flat position max_pool took it from; zeros elsewhere
    n, c = x.shape[:2]
    out = C.scatter(
        C.zeros(n, c, flat, dtype=x.dtype), 2, idx.reshape(n, c, -1), C.reshape(x, (n, c, -1))
    )
    out = C.reshape(out, (n, c, *size))
    return C.squeeze(out, 0) if unbatched else out


def max_unpool1d(
    input: Any,
    indices: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The inverse of max_pool1d(return_indices=True): each value at its index, zeros elsewhere."""
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(
    input: Any,
    indices: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The inverse of max_pool2d(return_indices=True): each value at its index (flat over
    H x W, as PyTorch), zeros elsewhere.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> y, i = F.max_pool2d(cr.tensor([[[[1.0, 2.0], [4.0, 3.0]]]]), 2, return_indices=True)
    >>> F.max_unpool2d(y, i, 2).tolist()
    [[[[0.0, 0.0], [4.0, 0.0]]]]
    """
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def _avg_pool(
    nd: int,
    input: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Tensor:
    name = f"avg_pool{nd}d"
    x, unbatched, k, s, p, _ = _pool_args(name, nd, input, kernel_size, stride, padding, 1)
    n, c, *size = x.shape
    out = _out_sizes(name, tuple(size), k, s, p, (1,) * nd, ceil_mode)
    pads = tuple(
        (pp, max(pp, (m - 1) * ss + kk - nn - pp)) for nn, m, kk, ss, pp in zip(size, out, k, s, p)
    )
    ones = np.ones((1, 1, *k), dtype=x.dtype)
    ones.setflags(write=False)  # a constant kernel: conv keeps no window matrix for its dL/dw
    flat = C.reshape(x, (n * c, 1, *size))  # every channel pooled alone: one conv
    total = apply(ops.conv, flat, ones, stride=s, padding=pads, dilation=(1,) * nd, groups=1)
    total = C.reshape(total, (n, c, *total.shape[2:]))
    if divisor_override:
        y = total / x.dtype.type(divisor_override)
    else:
        # windows count the padding (count_include_pad) but never the ceil-mode overhang
        mask = np.zeros([nn + lo + hi for nn, (lo, hi) in zip(size, pads)], dtype=x.dtype)
        inner = tuple(
            slice(0, nn + 2 * lo) if count_include_pad else slice(lo, lo + nn)
            for nn, (lo, _) in zip(size, pads)
        )
        mask[inner] = 1
        zero = ((0, 0),) * nd
        count = ops._conv(mask[None, None], ones, stride=s, padding=zero, dilation=(1,) * nd)
        count = count[0, 0]
        y = total / count
    return C.squeeze(y, 0) if unbatched else y


def avg_pool1d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean over windows of (N, C, L), as PyTorch (padding counted unless told otherwise).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.avg_pool1d(cr.tensor([[[1.0, 3.0, 2.0, 6.0]]]), 2).tolist()
    [[[2.0, 4.0]]]
    """
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over windows of (N, C, H, W), as PyTorch."""
    return _avg_pool(
        2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over windows of (N, C, D, H, W), as PyTorch."""
    return _avg_pool(
        3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _along(x: Tensor, m: np.ndarray, axis: int) -> Tensor:
    """Apply the (out, in) matrix m along one axis of x."""
    y = C.matmul(C.swapaxes(x, axis, -1), m.T.astype(x.dtype))
    return C.swapaxes(y, axis, -1)


def _adaptive_matrix(n: int, m: int) -> np.ndarray:
    """Bin i averages x[floor(i n / m) : ceil((i + 1) n / m)], PyTorch's adaptive windows."""
    a = np.zeros((m, n))
    for i in range(m):  # one row per output bin, built once: not a loop over data
        lo, hi = (i * n) // m, -((-(i + 1) * n) // m)
        a[i, lo:hi] = 1 / (hi - lo)
    return a


def _adaptive_avg_pool(nd: int, input: Any, output_size: Any) -> Tensor:
    name = f"adaptive_avg_pool{nd}d"
    x, unbatched = _batched(C._t(input), nd, name)
    sizes = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    out = tuple(n if m is None else m for n, m in zip(x.shape[2:], sizes))
    if len(out) != nd or any(m < 1 for m in out):
        raise ValueError(f"{name}: output_size must be {nd} positive ints, got {output_size!r}")
    for axis, (n, m) in enumerate(zip(x.shape[2:], out)):
        x = _along(x, _adaptive_matrix(n, m), axis + 2)
    return C.squeeze(x, 0) if unbatched else x


def adaptive_avg_pool1d(input: Any, output_size: Any) -> Tensor:
    """Average (N, C, L) into `output_size` bins of near-equal width, as PyTorch."""
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input: Any, output_size: Any) -> Tensor:
    """Average (N, C, H, W) into an `output_size` grid of near-equal bins, as PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.adaptive_avg_pool2d(cr.ones(2, 3, 5, 7), 1).shape
    (2, 3, 1, 1)
    """
    return _adaptive_avg_pool(2, input, output_size)


def _linear_matrix(n: int, m: int, scale: float, align_corners: bool) -> np.ndarray:
    """Row i weighs the two inputs around source position i * scale (PyTorch's coordinates)."""
    dst = np.arange(m, dtype=np.float64)
    if align_corners:
        src = dst * ((n - 1) / (m - 1) if m > 1 else 0.0)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = src - i0
    a = np.zeros((m, n))
    np.add.at(a, (np.arange(m), i0), 1 - lam)
    np.add.at(a, (np.arange(m), i1), lam)
    return a


_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(
    input: Any,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Resample (N, C, L), (N, C, H, W) or (N, C, D, H, W) to `size` or by `scale_factor`,
    as PyTorch.

    mode 'nearest' copies x[floor(i * scale)], 'nearest-exact' x[floor((i + 1/2) * scale)];
    'linear' (3-D), 'bilinear' (4-D) and 'trilinear' (5-D) weigh the two neighbours along each
    axis, with PyTorch's half-pixel coordinates unless align_corners. Integer inputs are
    weighed in float32 and rounded back to their dtype.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.interpolate(cr.tensor([[[1.0, 3.0]]]), scale_factor=2, mode="linear").tolist()
    [[[1.0, 1.5, 2.5, 3.0]]]
    """
    x = C._t(input)
    nd = x.ndim - 2
    if mode not in _MODES or nd < 1 or _MODES[mode] not in (None, nd):
        raise ValueError(
            f"interpolate: mode {mode!r} does not apply to a {x.ndim}-D input (modes: 'nearest' "
            "and 'nearest-exact' for 3-D to 5-D, 'linear' for 3-D (N, C, L), 'bilinear' for 4-D "
            "(N, C, H, W), 'trilinear' for 5-D (N, C, D, H, W))"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode.startswith("nearest") and align_corners is not None:
        raise ValueError("interpolate: align_corners applies only to 'linear' and 'bilinear'")
    n_in = x.shape[2:]
    if size is not None:
        out = (size,) * nd if isinstance(size, int) else tuple(size)
        scales = [n / m for n, m in zip(n_in, out)]
    else:
        f = (scale_factor,) * nd if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        out = tuple(math.floor(n * ff) for n, ff in zip(n_in, f))
        scales = [1 / ff for ff in f]  # PyTorch uses the given factor, not in/out
    if len(out) != nd or any(m < 1 for m in out):
        raise ValueError(f"interpolate: output size {out} must be {nd} positive ints")
    dtype = x.dtype
    integral = dtype.kind in "iub" and not mode.startswith("nearest")
    if integral:  # integers are weighed in float and rounded back, as PyTorch does
        x = C.astype(x, np.float32)
    for axis, (n, m, sc) in enumerate(zip(n_in, out, scales)):
        if mode.startswith("nearest"):
            # 'nearest' copies from floor(i * scale) (PyTorch's legacy rule), 'nearest-exact'
            # from the nearest pixel centre, floor((i + 1/2) * scale)
            at = np.arange(m) + (0.5 if mode == "nearest-exact" else 0.0)
            src = np.minimum(np.floor(at * sc).astype(np.intp), n - 1)
            x = C.getitem(x, (slice(None),) * (axis + 2) + (src,))
        else:
            x = _along(x, _linear_matrix(n, m, sc, bool(align_corners)), axis + 2)
    return C.astype(C.around(x), dtype) if integral else x


class _Pool(Module):
    """Keeps the constructor's arguments and shows them in repr, as PyTorch's pools do."""

    _fields: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        return ", ".join(f"{f}={getattr(self, f)}" for f in self._fields)


class MaxPool1d(_Pool):
    """Max pooling over (N, C, L); PyTorch's arguments (stride defaults to kernel_size).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.MaxPool1d(2)(cr.ones(4, 3, 10)).shape
    (4, 3, 5)
    """

    nd = 1
    _fields = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x: Any) -> Any:
        return _max_pool(
            self.nd,
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )


class MaxPool2d(MaxPool1d):
    """Max pooling over (N, C, H, W); PyTorch's arguments."""

    nd = 2


class AvgPool1d(_Pool):
    """Average pooling over (N, C, L); PyTorch's arguments.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.AvgPool1d(3, stride=2, padding=1)(cr.ones(1, 1, 6)).shape
    (1, 1, 3)
    """

    nd = 1
    _fields = ("kernel_size", "stride", "padding")

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        return _avg_pool(
            self.nd,
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AvgPool2d(AvgPool1d):
    """Average pooling over (N, C, H, W); PyTorch's arguments (and divisor_override)."""

    nd = 2


class AdaptiveAvgPool1d(_Pool):
    """Average pooling to a fixed output length, whatever the input length."""

    nd = 1
    _fields = ("output_size",)

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Tensor:
        return _adaptive_avg_pool(self.nd, x, self.output_size)


class AdaptiveAvgPool2d(AdaptiveAvgPool1d):
    """Average pooling to a fixed output grid (1 gives global average pooling)."""

    nd = 2


class Upsample(_Pool):
    """`interpolate` as a layer: size or scale_factor, mode 'nearest', 'linear' or 'bilinear'."""

    _fields = ("size", "scale_factor", "mode")

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners = align_corners

    def forward(self, x: Any) -> Tensor:
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)
