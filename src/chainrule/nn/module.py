"""Module: the base class of layers; registers nested Modules and Parameters on assignment.

Owns parameter traversal, train/eval mode, state_dict/load_state_dict (with errors that name the
mismatching keys and shapes) and the PyTorch-style repr. Layers live in `layers.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from chainrule.compile import replayed
from chainrule.mode import _state
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor


class Module:
    """Base class for all layers and models: subclass it and define ``forward``.

    Attributes that are `Parameter` or `Module` instances are registered automatically, so
    ``parameters()`` finds every weight of a nested model.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(4, 8)
    ...         self.out = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(cr.relu(self.hidden(x)))
    >>> model = TwoLayer()
    >>> [name for name, _ in model.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> model(cr.zeros(3, 4)).shape
    (3, 2)
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() ran; call super().__init__() "
                f"first in {type(self).__name__}.__init__"
            )
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered children live in the tables.
        d = self.__dict__
        for table in ("_parameters", "_modules", "_buffers"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._modules, self._buffers):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Tensor | np.ndarray | None) -> None:
        """Register state that is saved in `state_dict` but not trained (running stats)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = (
            value if value is None or isinstance(value, Tensor) else (Tensor(np.asarray(value)))
        )

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` under `name` (None keeps a slot, as ``bias=False`` does)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: {name!r} must be a Parameter or None, got "
                f"{type(param).__name__}"
            )
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._modules[name] = module

    # -- calling ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    _hooks: _Hooks | None = None  # set per instance by the first register_*_hook

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _state.hooked and _state.recorder is not None:  # chainrule.compile keys on .training
            _state.recorder.module(self)
        if self._hooks is None:  # the common case costs one attribute lookup
            return self.forward(*args, **kwargs)
        for pre in list(self._hooks.pre.values()):
            changed = pre(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._hooks.post.values()):
            changed = hook(self, args, out)
            if changed is not None:
                out = changed
        return out

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """hook(module, args) runs before forward; a non-None result replaces the args."""
        return self._add_hook("pre", hook)

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """hook(module, args, output) runs after forward; a non-None result replaces output.

        Examples
        --------
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> seen = []
        >>> layer = nn.ReLU()
        >>> handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
        >>> _ = layer(cr.ones(2, 3)); handle.remove(); _ = layer(cr.ones(4))
        >>> seen
        [(2, 3)]
        """
        return self._add_hook("post", hook)

    def _add_hook(self, kind: str, hook: Callable[..., Any]) -> RemovableHandle:
        if self._hooks is None:
            object.__setattr__(self, "_hooks", _Hooks())
        assert self._hooks is not None  # set just above
        table = getattr(self._hooks, kind)
        key = next(_hook_ids)
        table[key] = hook
        return RemovableHandle(table, key)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradients on or off for every parameter (freezing a part of a model)."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    # -- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(qualified name, module) for self and every descendant, each module once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{k}" if name else k, m)
                for k, m in module._modules.items()
                if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((k, m) for k, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(qualified name, Parameter) in registration order; shared parameters appear once."""
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for k, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{k}" if mod_name else k), p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for mod_name, module in self.named_modules():
            for k, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{k}" if mod_name else k), b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every descendant, then on self (children first, as in PyTorch)."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # -- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active) on self and all descendants."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode (Dropout is the identity)."""
        return self.train(False)

    @replayed  # inside chainrule.compile, every replay clears the gradients again
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the `.grad` of every parameter (None by default, else zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data = np.zeros_like(p.grad.data)

    def num_parameters(self) -> int:
        """The number of trainable scalars."""
        return int(sum(p.data.size for p in self.parameters() if p.requires_grad))

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Name -> Tensor for every parameter and buffer; the Tensors share memory with them."""
        state: dict[str, Tensor] = {}
        for mod_name, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for k, v in table.items():
                    if v is not None:
                        state[f"{mod_name}.{k}" if mod_name else k] = v.detach()
        return state

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> None:
        """Copy values from `state_dict` into the parameters and buffers, in place.

        Raises
        ------
        ValueError
            With `strict`, if keys are missing or unexpected; or if a shape differs. Every
            offending key is named (with both shapes), and nothing is copied unless all fits.
        """
        own = self._state_targets()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(_describe_keys(type(self).__name__, missing, unexpected))
        arrays = {
            k: np.asarray(v.data if isinstance(v, Tensor) else v)
            for k, v in state_dict.items()
            if k in own
        }
        bad = [
            f"{k}: checkpoint {arrays[k].shape} vs model {own[k].shape}"
            for k in arrays
            if arrays[k].shape != own[k].shape
        ]
        if bad:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: shape mismatch in "
                f"{len(bad)} tensor(s): " + "; ".join(bad)
            )
        for k, arr in arrays.items():
            target = own[k]
            target.data[...] = arr.astype(target.dtype, copy=False)
            target._bump_version()

    def _state_targets(self) -> dict[str, Tensor]:
        targets: dict[str, Tensor] = {}
        for mod_name, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for k, v in table.items():
                    if v is not None:
                        targets[f"{mod_name}.{k}" if mod_name else k] = v
        return targets

    # -- repr -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr line (override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"


_hook_ids = itertools.count()


class _Hooks:
    """A module's forward hooks, in registration order."""

    def __init__(self) -> None:
        self.pre: dict[int, Callable[..., Any]] = {}
        self.post: dict[int, Callable[..., Any]] = {}


class RemovableHandle:
    """What register_*_hook returns: `remove()` unregisters the hook (twice is harmless)."""

    def __init__(self, table: dict[int, Any], key: int) -> None:
        self.table, self.key = table, key

    def remove(self) -> None:
        self.table.pop(self.key, None)


def _describe_keys(owner: str, missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"missing keys {missing}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected}")
    return (
        f"load_state_dict for {owner}: "
        + " and ".join(parts)
        + " (is the checkpoint from a different architecture?)"
    )
