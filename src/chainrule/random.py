"""The global random generator behind parameter initialisation, Dropout and DataLoader shuffling.

Owns `manual_seed` and the RNG state that checkpoints save and restore. NumPy only; other modules
must call `generator()` each time (never cache it), because `manual_seed` replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["generator", "get_rng_state", "manual_seed", "set_rng_state"]

# Unseeded, like NumPy: fresh OS entropy per process until manual_seed is called.
_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator, so that two runs with the same seed are bit-identical.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Returns
    -------
    numpy.random.Generator
        The new global generator.

    Examples
    --------
    >>> import chainrule.random as crr
    >>> _ = crr.manual_seed(0); a = crr.generator().random()
    >>> _ = crr.manual_seed(0); b = crr.generator().random()
    >>> a == b
    True
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The current global generator (the one `manual_seed` last created)."""
    return _generator


def get_rng_state() -> Mapping[str, Any]:
    """The global generator's state as plain Python values (storable with `chainrule.save`).

    Examples
    --------
    >>> import chainrule.random as crr
    >>> _ = crr.manual_seed(1)
    >>> state = crr.get_rng_state()
    >>> a = crr.generator().random()
    >>> crr.set_rng_state(state)
    >>> a == crr.generator().random()
    True
    """
    return _generator.bit_generator.state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a state returned by `get_rng_state` (resuming a run continues its random stream)."""
    global _generator
    try:
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"set_rng_state: not a generator state ({exc})") from None
    _generator = np.random.Generator(bit_generator)
