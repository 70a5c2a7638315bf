"""`nn.utils`: gradient clipping and flat parameter vectors, as torch.nn.utils."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chainrule import composite as C
from chainrule.optim.optimizer import clip_grad_norm_
from chainrule.tensor import Tensor

__all__ = ["clip_grad_norm_", "parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one vector (differentiable, as PyTorch's).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import nn
    >>> nn.utils.parameters_to_vector(nn.Linear(3, 2).parameters()).shape
    (8,)
    """
    return C.concatenate([C.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec: Tensor | np.ndarray, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of `vec` into the parameters, in place (the inverse)."""
    data = np.asarray(vec.data if isinstance(vec, Tensor) else vec)
    params = list(parameters)
    total = sum(p.data.size for p in params)
    if data.ndim != 1 or data.size != total:
        raise ValueError(
            f"vector_to_parameters: need a vector of {total} values, got shape {data.shape}"
        )
    start = 0
    for p in params:
        p.data[...] = data[start : start + p.data.size].reshape(p.shape)
        p._bump_version()
        start += p.data.size
