"""chainrule: the chain rule, executable.

Public names only, no logic. `import chainrule` needs NumPy only; the optional parts
(derivations with SymPy, drawing, training with progress bars) load lazily.
"""

from __future__ import annotations

from typing import Any

from chainrule.autodiff import (
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
)
from chainrule.batching import vmap
from chainrule.compile import compile
from chainrule.composite import (
    abs,
    add,
    arange,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctanh,
    argmax,
    argmin,
    astype,
    broadcast_to,
    cat,
    cbrt,
    ceil,
    clip,
    concatenate,
    cos,
    cosh,
    divide,
    dot,
    elu,
    erf,
    exp,
    expand,
    expand_dims,
    eye,
    flatten,
    floor,
    from_numpy,
    full,
    gelu,
    leaky_relu,
    log,
    log2,
    log10,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    ones,
    ones_like,
    power,
    relu,
    reshape,
    sigmoid,
    sign,
    silu,
    sin,
    sinh,
    softmax,
    softplus,
    split,
    sqrt,
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
    transpose,
    unsqueeze,
    var,
    where,
    zeros,
    zeros_like,
)
from chainrule.custom import defop
from chainrule.gradcheck import GradcheckError, gradcheck
from chainrule.methods import clamp, floor_divide, permute, remainder
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
