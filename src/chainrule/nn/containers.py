"""ModuleDict and ParameterList: containers that register what they hold, as PyTorch's do."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter

__all__ = ["ModuleDict", "ParameterList"]


class ModuleDict(Module):
    """Modules by name; their parameters are the container's (a plain dict would hide them).

    Examples
    --------
    >>> from chainrule import nn
    >>> heads = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Linear(3, 1)})
    >>> sorted(heads), heads["b"].out_features, len(list(heads.parameters()))
    (['a', 'b'], 1, 4)
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        module = self._modules[key]
        assert module is not None  # __setitem__ stores Modules only
        return module

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return [self[k] for k in self._modules]

    def items(self) -> Iterable[tuple[str, Module]]:
        return [(k, self[k]) for k in self._modules]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module


class ParameterList(Module):
    """Parameters in a list, registered as "0", "1", ...

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import nn
    >>> ps = nn.ParameterList([nn.Parameter(np.zeros(2)), nn.Parameter(np.ones(3))])
    >>> len(ps), ps[1].shape, [name for name, _ in ps.named_parameters()]
    (2, (3,), ['0', '1'])
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        for v in values or ():
            self.append(v)

    def append(self, value: Any) -> ParameterList:
        p = value if isinstance(value, Parameter) else Parameter(np.asarray(value))
        self.register_parameter(str(len(self._parameters)), p)
        return self

    def __getitem__(self, index: int) -> Parameter:
        p = list(self._parameters.values())[index]
        assert p is not None  # append registers Parameters only
        return p

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter([p for p in self._parameters.values() if p is not None])
