"""chainrule.nn: neural-network building blocks (Module, layers, activations, losses).

`functional` (activations and losses as functions) is the engine lead's; the Modules here wrap it.
"""

from chainrule.nn import functional, init
from chainrule.nn.activations import GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh
from chainrule.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from chainrule.nn.layers import (
    Dropout,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    ModuleList,
    Sequential,
)
from chainrule.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter

__all__ = [
    "GELU",
    "BCEWithLogitsLoss",
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Module",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
