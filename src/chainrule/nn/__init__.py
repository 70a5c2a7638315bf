"""chainrule.nn: neural-network building blocks (Module, layers, activations, losses).

`functional` (activations and losses as functions) is the engine lead's; the Modules here wrap it.
"""

from chainrule.nn import functional, init, utils
from chainrule.nn.activations import GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh
from chainrule.nn.attention import MultiheadAttention, TransformerEncoderLayer
from chainrule.nn.containers import ModuleDict, ParameterList
from chainrule.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from chainrule.nn.dropout import Dropout1d, Dropout2d
from chainrule.nn.layers import (
    Dropout,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    ModuleList,
    Sequential,
)
from chainrule.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from chainrule.nn.module import Module
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm
from chainrule.nn.parameter import Parameter
from chainrule.nn.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
    Upsample,
)
from chainrule.nn.rnn import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GroupNorm",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "Parameter",
    "ParameterList",
    "RNNCell",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Tanh",
    "TransformerEncoderLayer",
    "Upsample",
    "functional",
    "init",
    "utils",
]
