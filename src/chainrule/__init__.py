"""chainrule: the chain rule, executable.

Public names only, no logic. `import chainrule` needs NumPy only; the optional parts
(derivations with SymPy, drawing, training with progress bars) load lazily.
"""

from __future__ import annotations

from typing import Any

from chainrule.autodiff import grad, hessian, jacobian, jvp, value_and_grad, vjp
from chainrule.compile import compile
from chainrule.composite import (
    ValuesIndices,
    abs,
    add,
    all,
    allclose,
    any,
    arange,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    argmax,
    argmin,
    argsort,
    astype,
    atan2,
    broadcast_to,
    cat,
    cbrt,
    ceil,
    celu,
    clip,
    concatenate,
    copysign,
    cos,
    cosh,
    cummax,
    cumprod,
    cumsum,
    diag,
    diagonal,
    diff,
    divide,
    dot,
    einsum,
    elu,
    erf,
    erfc,
    exp,
    exp2,
    expand,
    expand_dims,
    expm1,
    eye,
    flatten,
    floor,
    fmax,
    fmin,
    from_numpy,
    full,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    hypot,
    inner,
    isclose,
    isfinite,
    isinf,
    isnan,
    kron,
    leaky_relu,
    lerp,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logaddexp,
    logcumsumexp,
    logsigmoid,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mish,
    multiply,
    nan_to_num,
    negative,
    ones,
    ones_like,
    outer,
    power,
    prod,
    reciprocal,
    relu,
    relu6,
    reshape,
    rsqrt,
    selu,
    sigmoid,
    sign,
    silu,
    sin,
    sinc,
    sinh,
    softmax,
    softplus,
    softsign,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    sum_to,
    swapaxes,
    tan,
    tanh,
    tensor,
    tensordot,
    topk,
    trace,
    transpose,
    tril,
    triu,
    trunc,
    unsqueeze,
    var,
    where,
    zeros,
    zeros_like,
)
from chainrule.composite import around as round
from chainrule.custom import defop
from chainrule.gradcheck import GradcheckError, gradcheck
from chainrule.random import manual_seed
from chainrule.serialization import load, save
from chainrule.tensor import Tensor, detect_anomaly, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"

_LAZY = {
    "explain": ("chainrule.symbolic", "explain"),
    "Derivation": ("chainrule.symbolic", "Derivation"),
    "nn": ("chainrule.nn", None),
    "optim": ("chainrule.optim", None),
    "data": ("chainrule.data", None),
    "viz": ("chainrule.viz", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
