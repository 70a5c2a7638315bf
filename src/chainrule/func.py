"""torch.func's names: `functional_call` (a module run with the parameters and buffers it is
given, so that a model's loss is a function of a dict of tensors) beside the transforms it
composes with (grad, vmap, vjp, jvp, jacrev, jacfwd, hessian, re-exported from autodiff and
batching). Imports `nn.module` and the transforms only; it holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chainrule.autodiff import grad, hessian, jacfwd, jacrev, jvp, vjp
from chainrule.batching import vmap
from chainrule.nn.module import Module

__all__ = [
    "functional_call",
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "vjp",
    "vmap",
]


def functional_call(
    module: Module,
    parameter_and_buffer_dicts: Mapping[str, Any] | tuple[Mapping[str, Any], ...],
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    strict: bool = False,
) -> Any:
    """Call `module` with the given tensors in place of its parameters and buffers, as
    torch.func.functional_call; the module itself is unchanged afterwards.

    Parameters
    ----------
    module : Module
        The model.
    parameter_and_buffer_dicts : dict or tuple of dicts
        Tensors by their `named_parameters()`/`named_buffers()` names ("0.weight"); a name
        not given keeps the module's own tensor unless `strict`.
    args : tuple or one value
        The positional arguments of the call (one non-tuple value is the only argument).
    kwargs : dict, optional
        Its keyword arguments.
    strict : bool
        Whether every parameter and buffer must be given.

    Returns
    -------
    What `module(*args, **kwargs)` returns, computed from the given tensors, so `grad` with
    respect to the dict differentiates the model: per-example gradients are
    `vmap(grad(lambda p, x, y: loss(functional_call(model, p, (x,)), y)),
    in_axes=(None, 0, 0))(params, xs, ys)`.

    Raises
    ------
    KeyError
        A name that is not a parameter or buffer of the module, a name given twice, or
        (strict) a missing one.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> from chainrule.func import functional_call
    >>> model = nn.Linear(2, 1)
    >>> p = {"weight": cr.tensor([[1.0, 2.0]]), "bias": cr.tensor([0.5])}
    >>> functional_call(model, p, (cr.tensor([3.0, 4.0]),))
    tensor([11.5])
    >>> cr.grad(lambda p: cr.sum(functional_call(model, p, cr.tensor([3.0, 4.0]))))(p)["weight"]
    tensor([[3., 4.]])
    """
    dicts = (
        parameter_and_buffer_dicts
        if isinstance(parameter_and_buffer_dicts, tuple)
        else (parameter_and_buffer_dicts,)
    )
    given: dict[str, Any] = {}
    for d in dicts:
        if twice := sorted(set(d) & set(given)):
            raise KeyError(f"functional_call: {twice[0]!r} is given twice")
        given.update(d)
    args = args if isinstance(args, tuple) else (args,)
    with _swapped(module, given, strict):
        return module(*args, **dict(kwargs or {}))


def _slots(module: Module) -> dict[str, tuple[dict[str, Any], str]]:
    """Each parameter's and buffer's full name -> (the table that holds it, its key there)."""
    slots = {}
    for prefix, m in module.named_modules():
        for table in (m._parameters, m._buffers):
            for key in table:
                slots[f"{prefix}.{key}" if prefix else key] = (table, key)
    return slots


@contextmanager
def _swapped(module: Module, given: Mapping[str, Any], strict: bool) -> Iterator[None]:
    slots = _slots(module)
    if unknown := sorted(set(given) - set(slots)):
        raise KeyError(
            f"functional_call: {unknown[0]!r} is not a parameter or buffer of "
            f"{type(module).__name__} (it has {', '.join(sorted(slots)) or 'none'})"
        )
    if strict and (missing := sorted(set(slots) - set(given))):
        raise KeyError(f"functional_call: strict, and {missing[0]!r} is not given")
    saved = {name: slots[name][0][slots[name][1]] for name in given}
    try:
        for name, value in given.items():
            table, key = slots[name]
            table[key] = value
        yield
    finally:  # the module's own tensors, even when the call raised
        for name, value in saved.items():
            table, key = slots[name]
            table[key] = value
