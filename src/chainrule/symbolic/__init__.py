"""Step-by-step symbolic differentiation: ``explain``, ``Derivation`` and the safe ``parse``.

Needs SymPy (``pip install chainrule[all]``); ``import chainrule`` does not import this package.
"""

from chainrule.symbolic.explain import Derivation, explain, learner_form
from chainrule.symbolic.functions import relu, sigmoid, softplus
from chainrule.symbolic.parse import ParseError, Program, parse, parse_program
from chainrule.symbolic.steps import diff_program, diff_steps

__all__ = [
    "Derivation",
    "ParseError",
    "Program",
    "diff_program",
    "diff_steps",
    "explain",
    "learner_form",
    "parse",
    "parse_program",
    "relu",
    "sigmoid",
    "softplus",
]
