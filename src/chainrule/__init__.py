"""chainrule: the chain rule, executable.

Public names only, no logic. Optional parts (derivations, drawing) load lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "explain": ("chainrule.symbolic", "explain"),
    "Derivation": ("chainrule.symbolic", "Derivation"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
