"""chainrule.optim: optimizers (SGD, Adam, AdamW), learning-rate schedules, gradient clipping."""

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from chainrule.optim.optimizer import Optimizer, clip_grad_norm_
from chainrule.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "LRScheduler",
    "Optimizer",
    "StepLR",
    "clip_grad_norm_",
]
