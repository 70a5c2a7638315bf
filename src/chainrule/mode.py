"""Grad mode: whether ops are recorded (`no_grad`, thread-local) and `detect_anomaly`.

Owns the per-thread state the engine reads on every op: grad mode, anomaly mode and the active
`chainrule.compile` trace. Imports nothing from chainrule.
"""

from __future__ import annotations

import threading
from contextlib import ContextDecorator
from typing import Any

# --------------------------------------------------------------------------- grad mode


class _State(threading.local):
    grad_enabled = True
    _anomaly = False
    _recorder: Any = None
    _levels: tuple[tuple[int, int], ...] = ()
    # anomaly, recorder or a vmap level is set: `apply` reads this one flag to leave its fast
    # path.
    hooked = False

    @property
    def anomaly(self) -> bool:
        """detect_anomaly is on in this thread."""
        return self._anomaly

    @anomaly.setter
    def anomaly(self, on: bool) -> None:
        self._anomaly = on
        self._rehook()

    @property
    def recorder(self) -> Any:
        """The `chainrule.compile` trace this thread is recording, or None. Per thread, so
        that another thread's ops and backward() never become part of a trace."""
        return self._recorder

    @recorder.setter
    def recorder(self, rec: Any) -> None:
        self._recorder = rec
        self._rehook()

    @property
    def levels(self) -> tuple[tuple[int, int], ...]:
        """The vmaps running in this thread, outermost first: (level, batch size) each."""
        return self._levels

    @levels.setter
    def levels(self, levels: tuple[tuple[int, int], ...]) -> None:
        self._levels = levels
        self._rehook()

    def _rehook(self) -> None:
        self.hooked = self._anomaly or self._recorder is not None or bool(self._levels)


_state = _State()


class _GradMode(ContextDecorator):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self) -> None:
        self._prev.append(_state.grad_enabled)
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._prev.pop()


def no_grad() -> _GradMode:
    """Disable graph recording (thread-local), as a context manager or a decorator.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = x * 3
    >>> y.requires_grad
    False
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Re-enable graph recording inside a `no_grad` block."""
    return _GradMode(True)


def is_grad_enabled() -> bool:
    """Whether new ops are recorded for backward in this thread."""
    return _state.grad_enabled


class detect_anomaly(ContextDecorator):
    """Check every op's forward result and every gradient for NaN/inf, and name the first bad op.

    Slow (one `isfinite` per op); meant for debugging. Raises `FloatingPointError`.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([-1.0, 4.0], requires_grad=True)
    >>> with cr.detect_anomaly():
    ...     cr.sqrt(x)
    Traceback (most recent call last):
    ...
    FloatingPointError: sqrt: forward produced NaN/inf from finite inputs (output shape (2,))
    """

    def __enter__(self) -> None:
        self._prev = _state.anomaly
        _state.anomaly = True

    def __exit__(self, *exc: object) -> None:
        _state.anomaly = self._prev
