"""Convolutions: `conv1d/2d/3d`, `conv_transpose1d/2d/3d` and the `Conv*` Modules around them.

The forward and both gradients are the one `conv` primitive of the op table (im2col on GEMM);
a transposed convolution is that primitive's input-gradient (`ops._conv_transpose`) run on
Tensors, so it needs no derivative code of its own. Signatures and defaults follow PyTorch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule.errors import OpError
from chainrule.nn import init
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor, apply

__all__ = [
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
]


def _tuple(v: Any, nd: int, name: str, what: str, low: int = 1) -> tuple[int, ...]:
    """An int or a tuple of nd ints, each at least `low` (PyTorch's _single/_pair)."""
    t = (v,) * nd if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != nd or not all(isinstance(i, (int, np.integer)) and i >= low for i in t):
        raise ValueError(f"{name}: {what} must be an int >= {low} or {nd} of them, got {v!r}")
    return tuple(int(i) for i in t)


# PyTorch's padding modes of a convolution layer ('zeros' is the convolution's own padding;
# the others pad with nn.functional.pad first)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _padding(
    padding: Any,
    nd: int,
    name: str,
    k: tuple[int, ...],
    stride: tuple[int, ...],
    dil: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    """Per-axis (before, after) zero padding; 'same' puts the odd extra after, as PyTorch."""
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' needs stride 1, got stride {stride}")
        total = [d * (kk - 1) for d, kk in zip(dil, k)]
        return tuple((t // 2, t - t // 2) for t in total)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be 'valid', 'same' or ints, got {padding!r}")
    return tuple((p, p) for p in _tuple(padding, nd, name, "padding", low=0))


def _batched(x: Tensor, nd: int, name: str) -> tuple[Tensor, bool]:
    """(N, C, *spatial) input, adding the batch axis to an unbatched (C, *spatial) one."""
    if x.ndim == nd + 1:
        return C.expand_dims(x, 0), True
    if x.ndim != nd + 2:
        raise ValueError(
            f"{name}: expected a {nd + 2}-D (N, C, *spatial) or {nd + 1}-D unbatched input, "
            f"got shape {x.shape}"
        )
    return x, False


def _add_bias(y: Tensor, bias: Any, nd: int) -> Tensor:
    return y if bias is None else y + C.reshape(C._t(bias), (-1,) + (1,) * nd)


def _conv_nd(
    nd: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> Tensor:
    name = f"conv{nd}d"
    x, unbatched = _batched(C._t(input), nd, name)
    w = C._t(weight)
    if w.ndim != nd + 2:
        raise ValueError(
            f"{name}: weight must be (out, in/groups, *kernel) {nd + 2}-D, got {w.shape}"
        )
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ValueError(
            f"{name}: input of {x.shape[1]} channels and weight of shape {w.shape} do not fit "
            f"groups={groups} (need in = weight.shape[1] * groups, out divisible by groups)"
        )
    k = w.shape[2:]
    s = _tuple(stride, nd, name, "stride")
    d = _tuple(dilation, nd, name, "dilation")
    pads = _padding(padding, nd, name, k, s, d)
    for size, (lo, hi), dd, kk in zip(x.shape[2:], pads, d, k):
        if size + lo + hi < dd * (kk - 1) + 1:
            raise OpError(
                f"{name}: input of spatial size {x.shape[2:]} padded by {pads} is smaller than "
                f"the kernel {k} with dilation {d}"
            )
    params = {"stride": s, "padding": pads, "dilation": d, "groups": groups}
    if bias is None:
        y = apply(ops.conv, x, w, **params)
    else:  # the bias is the primitive's third input: a conv layer is one node in a graph
        b = C._t(bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{name}: bias must have shape ({w.shape[0]},), got {b.shape}")
        y = apply(ops.conv, x, w, b, **params)
    return C.squeeze(y, 0) if unbatched else y


def conv1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-d cross-correlation of (N, C_in, L) with weight (C_out, C_in/groups, k), as PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.conv1d(cr.tensor([[[1.0, 2.0, 3.0, 4.0]]]), cr.tensor([[[1.0, -1.0]]])).tolist()
    [[[-1.0, -1.0, -1.0]]]
    """
    return _conv_nd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-d cross-correlation of (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.conv2d(cr.ones(1, 1, 3, 3), cr.ones(1, 1, 2, 2), padding=1).shape
    (1, 1, 4, 4)
    """
    return _conv_nd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """3-d cross-correlation of (N, C_in, D, H, W) with weight (C_out, C_in/groups, kD, kH, kW)."""
    return _conv_nd(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose_nd(
    nd: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> Tensor:
    name = f"conv_transpose{nd}d"
    x, unbatched = _batched(C._t(input), nd, name)
    w = C._t(weight)
    if w.ndim != nd + 2 or groups < 1 or x.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise ValueError(
            f"{name}: input of {x.shape[1]} channels and weight of shape {w.shape} do not fit "
            f"groups={groups} (need weight (in, out/groups, *kernel) with in divisible by groups)"
        )
    k = w.shape[2:]
    s = _tuple(stride, nd, name, "stride")
    d = _tuple(dilation, nd, name, "dilation")
    p = _tuple(padding, nd, name, "padding", low=0)
    op = _tuple(output_padding, nd, name, "output_padding", low=0)
    if any(o >= ss and o >= dd for o, ss, dd in zip(op, s, d)):
        raise ValueError(f"{name}: output_padding {op} must be smaller than stride or dilation")
    size = tuple(
        (n - 1) * ss - 2 * pp + dd * (kk - 1) + o + 1
        for n, ss, pp, dd, kk, o in zip(x.shape[2:], s, p, d, k, op)
    )
    if any(n < 1 for n in size):
        raise ValueError(f"{name}: output size {size} is not positive")
    # the adjoint of conv (its input-gradient) is exactly a transposed convolution
    y = ops._conv_transpose(x, w, ops.TENSOR_NS, size, s, tuple((pp, pp) for pp in p), d, groups)
    y = _add_bias(y, bias, nd)
    return C.squeeze(y, 0) if unbatched else y


def conv_transpose1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """The adjoint of conv1d: (N, C_in, L) with weight (C_in, C_out/groups, k), as PyTorch."""
    return _conv_transpose_nd(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """The adjoint of conv2d: (N, C_in, H, W) with weight (C_in, C_out/groups, kH, kW)."""
    return _conv_transpose_nd(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """The adjoint of conv3d: (N, C_in, D, H, W) with weight (C_in, C_out/groups, kD, kH, kW)."""
    return _conv_transpose_nd(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


class _ConvNd(Module):
    """What every convolution layer shares: PyTorch's arguments, checks and initialisation."""

    nd = 1
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        output_padding: Any = 0,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels {in_channels} and out_channels {out_channels} must both "
                f"be divisible by groups {groups}"
            )
        if padding_mode not in PADDING_MODES:
            modes = ", ".join(map(repr, PADDING_MODES))
            raise ValueError(f"{name}: padding_mode must be one of {modes}, got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":  # as PyTorch
            raise ValueError(
                f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, self.nd, name, "kernel_size")
        self.stride = _tuple(stride, self.nd, name, "stride")
        self.dilation = _tuple(dilation, self.nd, name, "dilation")
        self.padding = (
            padding if isinstance(padding, str) else _tuple(padding, self.nd, name, "padding", 0)
        )
        if isinstance(padding, str):
            _padding(padding, self.nd, name, self.kernel_size, self.stride, self.dilation)
        self.output_padding = _tuple(output_padding, self.nd, name, "output_padding", 0)
        # PyTorch's layouts: (out, in/groups, *k) for conv, (in, out/groups, *k) transposed
        shape = (
            (in_channels, out_channels // groups)
            if self.transposed
            else (out_channels, in_channels // groups)
        )
        self.weight = Parameter(np.empty(shape + self.kernel_size, dtype=dtype))
        self.bias: Parameter | None
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """kaiming_uniform_(a=sqrt(5)) and bias U(-1/sqrt(fan_in), ..), PyTorch's defaults."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Any) -> Tensor:
        if self.transposed:
            return _conv_transpose_nd(
                self.nd,
                x,
                self.weight,
                self.bias,
                self.stride,
                self.padding,
                self.output_padding,
                self.groups,
                self.dilation,
            )
        padding: Any = self.padding
        if self.padding_mode != "zeros":
            # PyTorch's way: pad with nn.functional.pad's mode first, then convolve unpadded
            from chainrule.nn.functional import pad

            pairs = _padding(
                padding, self.nd, type(self).__name__, self.kernel_size, self.stride, self.dilation
            )
            x = pad(x, [p for pair in reversed(pairs) for p in pair], mode=self.padding_mode)
            padding = 0
        return _conv_nd(
            self.nd,
            x,
            self.weight,
            self.bias,
            self.stride,
            padding,
            self.dilation,
            self.groups,
        )

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding not in (0, (0,) * self.nd):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0,) * self.nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    """1-d convolution layer over (N, C_in, L), PyTorch's signature and initialisation.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Conv1d(1, 25, 5, stride=2, padding=1)(cr.ones(8, 1, 40)).shape
    (8, 25, 19)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            dtype=dtype,
        )


class Conv2d(Conv1d):
    """2-d convolution layer over (N, C_in, H, W), PyTorch's signature and initialisation.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Conv2d(1, 4, 3, padding="same")(cr.ones(2, 1, 8, 8)).shape
    (2, 4, 8, 8)
    """

    nd = 2


class ConvTranspose1d(_ConvNd):
    """1-d transposed convolution (the adjoint of Conv1d), PyTorch's signature.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1)(cr.ones(1, 2, 5)).shape
    (1, 3, 10)
    """

    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            output_padding,
            dtype,
        )


class ConvTranspose2d(ConvTranspose1d):
    """2-d transposed convolution (the adjoint of Conv2d), PyTorch's signature."""

    nd = 2
