"""chainrule.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), learning-rate schedules,
gradient clipping."""

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.adaptive import Adagrad, RMSprop
from chainrule.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)
from chainrule.optim.optimizer import Optimizer, clip_grad_norm_
from chainrule.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm_",
]
