"""autograd.numpy.random is NumPy's: random numbers are constants to every autodiff engine."""

from numpy.random import *  # noqa: F403
from numpy.random import RandomState, seed  # noqa: F401
