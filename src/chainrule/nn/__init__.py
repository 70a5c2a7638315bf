"""chainrule.nn: neural-network building blocks on top of the engine."""

from chainrule.nn import functional

__all__ = ["functional"]
