"""Grouping: which nodes collapse into one box. A general hook (tensor id or function -> label)
plus `module_groups`, which records the tensors each submodule of an `nn.Module` creates.

`module_groups` wraps each chosen submodule's `forward` for the duration of one call, and after
the call assigns to the submodule every node between its inputs and its outputs (its ops and
parameters). Works with any object that has `named_modules()` and calls `self.forward`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chainrule.tensor import Tensor
from chainrule.viz.model import GraphModel


def parameter_names(module: Any) -> dict[int, str]:
    """`{id(parameter): "fc1.weight"}` from `module.named_parameters()`."""
    return {id(p): name for name, p in module.named_parameters()}


def resolve(
    model: GraphModel, groups: Mapping[int, str] | Callable[[Any], str | None] | None
) -> dict[int, str]:
    """Node index -> group label, from a mapping keyed by id(tensor) or a function of a tensor."""
    if groups is None:
        return {}
    out: dict[int, str] = {}
    for n in model.nodes:
        if n.tensor is None:
            continue
        label = groups(n.tensor) if callable(groups) else groups.get(id(n.tensor))
        if label is not None:
            out[n.index] = str(label)
    # a constant operand (a Python number) goes with the op that uses it
    for e in model.edges:
        if model.nodes[e.src].tensor is None and e.dst in out:
            out[e.src] = out[e.dst]
    return out


class ModuleGroups(dict[int, str]):
    """`{id(tensor): "name: Type"}` filled by `module_groups(...)`; pass it as `groups=`."""


@contextmanager
def module_groups(module: Any, depth: int = 1) -> Iterator[ModuleGroups]:
    """Record, while the block runs, which tensors each submodule at `depth` creates.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn, viz
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> with viz.module_groups(model) as groups:
    ...     loss = model(cr.ones(2, 3)).sum()
    >>> sorted(set(groups.values()))
    ['0: Linear', '1: ReLU', '2: Linear']
    >>> g = viz.graph(loss, groups=groups, module=model)
    """
    chosen = [
        (name, m) for name, m in module.named_modules() if name and name.count(".") == depth - 1
    ]
    result = ModuleGroups()
    calls: list[tuple[str, list[Tensor], list[Tensor]]] = []
    for name, m in chosen:
        _wrap(m, f"{name}: {type(m).__name__}", calls)
    try:
        yield result
    finally:
        for _, m in chosen:
            m.__dict__.pop("forward", None)
        for label, inputs, outputs in calls:
            for t in _between(inputs, outputs):
                result.setdefault(id(t), label)


def _wrap(m: Any, label: str, calls: list[tuple[str, list[Tensor], list[Tensor]]]) -> None:
    forward = m.forward

    def recorded(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        ins = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        outs = [
            o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, Tensor)
        ]
        calls.append((label, ins, outs))
        return out

    object.__setattr__(m, "forward", recorded)


def _between(inputs: list[Tensor], outputs: list[Tensor]) -> list[Tensor]:
    """Tensors reached walking back from `outputs` without passing `inputs` (the call's work)."""
    stop = {id(t) for t in inputs}
    found: list[Tensor] = []
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if id(t) in seen or id(t) in stop:
            continue
        seen.add(id(t))
        found.append(t)
        if t.op is not None and t._parents is not None:
            stack.extend(p for p in t.parents if isinstance(p, Tensor))
    return found
