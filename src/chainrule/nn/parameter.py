"""Parameter: a Tensor that a Module registers as trainable when assigned as an attribute."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` that `Module` collects in `parameters()`.

    Parameters
    ----------
    data : array_like or Tensor
        Shared, not copied, when it is already a float ndarray or Tensor.
    requires_grad : bool
        Default True.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import Parameter
    >>> p = Parameter(np.zeros(2, dtype=np.float32))
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind not in "fc":
            arr = arr.astype(np.float32)
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
