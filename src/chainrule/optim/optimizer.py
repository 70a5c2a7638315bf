"""Optimizer: parameter groups, per-parameter state, zero_grad, and state_dict round trips.

Updates change `.data` in place and bump the parameter's version, so a graph built before the
step refuses to backpropagate through stale values instead of giving a wrong gradient.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.compile import replayed
from chainrule.tensor import Tensor

__all__ = ["Optimizer", "clip_grad_norm_"]


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params + hyper-parameters) and ``state``.

    Subclasses set ``defaults`` through ``__init__`` and implement ``_update(p, grad, group,
    state)`` for one parameter; `step` calls it for every parameter that has a gradient.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(param)
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add parameters with their own hyper-parameters (missing ones take the defaults)."""
        params = list(group["params"])
        for p in params:
            if not isinstance(p, Tensor) or not p.is_leaf or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: can only optimise leaf Tensors that "
                    f"require grad, got {type(p).__name__}"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: a parameter appears in two groups")
        unique = list({id(p): p for p in params}.values())
        if len(unique) < len(params):  # PyTorch warns too; stepping a parameter twice is a bug
            warnings.warn(
                f"{type(self).__name__}: a parameter group lists {len(params) - len(unique)} "
                "parameter(s) more than once; each is kept once and stepped once",
                UserWarning,
                stacklevel=3,
            )
            params = unique
        full = {**self.defaults, **group, "params": params}
        self._check_hyper(full)
        self.param_groups.append(full)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        if not group["lr"] >= 0 or not math.isfinite(group["lr"]):
            raise ValueError(
                f"{type(self).__name__}: lr must be a finite number >= 0, got {group['lr']}"
            )
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(
                f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}"
            )

    @replayed  # inside chainrule.compile, every replay clears the gradients again
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (None by default, as in PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data = np.zeros_like(p.grad.data)

    @replayed  # inside chainrule.compile, every replay steps again (state, step count, lr)
    def step(self) -> None:
        """Update every parameter that has a gradient, once."""
        for group in self.param_groups:
            self._step_group(group)

    def _step_group(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state.setdefault(id(p), {})
            self._update(p, p.grad.data, group, state)
            p._bump_version()

    def _update(
        self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: {"state": {index: {...}}, "param_groups": [{..., "params": [i]}]}.

        Parameters are numbered in group order, so the dict can be saved and loaded into a new
        optimizer built over the same model. Arrays are copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            index[pid]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for pid, s in self.state.items()
            if pid in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by `state_dict`.

        Raises
        ------
        ValueError
            If the number of groups or parameters, or a state array's shape, does not match.
        """
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: {len(groups)} parameter groups saved, "
                f"this optimizer has {len(self.param_groups)}"
            )
        params: dict[int, Tensor] = {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {i} saved "
                    f"{len(saved['params'])} parameters, this one has "
                    f"{len(own['params'])}"
                )
            params.update(zip(saved["params"], own["params"]))
        new_state = {}
        for idx, s in state_dict["state"].items():
            p = params[int(idx)]
            for k, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {k!r} of parameter {idx} "
                        f"has shape {v.shape}, the parameter has {p.shape}"
                    )
            new_state[id(p)] = {
                k: (np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray) else v)
                for k, v in s.items()
            }
        for saved, own in zip(groups, self.param_groups):
            own.update(
                {
                    k: (tuple(v) if isinstance(v, list) else v)
                    for k, v in saved.items()
                    if k != "params"
                }
            )
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])


@replayed
def clip_grad_norm_(
    parameters: Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so their joint norm is at most `max_norm`.

    Returns the total norm before clipping (as PyTorch does).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.optim import clip_grad_norm_
    >>> p = cr.tensor([0.0, 0.0], requires_grad=True)
    >>> p.grad = cr.tensor([3.0, 4.0])
    >>> clip_grad_norm_([p], max_norm=1.0)
    5.0
    >>> [round(float(g), 4) for g in p.grad.data]
    [0.6, 0.8]
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(g.data).max()) for g in grads)
    else:
        total = float(
            sum(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type) for g in grads)
            ** (1.0 / norm_type)
        )
    if error_if_nonfinite and not math.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm_: the total gradient norm is {total}")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.data = g.data * g.data.dtype.type(coef)
    return total
