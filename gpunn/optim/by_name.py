"""Optimizers by name, for estimators and the command line."""

from __future__ import annotations

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSProp
from .sgd import SGD

OPTIMIZERS = {
    "sgd": lambda ps, lr, wd: SGD(ps, lr=lr, weight_decay=wd),
    "momentum": lambda ps, lr, wd: SGD(ps, lr=lr, momentum=0.9, weight_decay=wd),
    "nesterov": lambda ps, lr, wd: SGD(ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "adagrad": lambda ps, lr, wd: Adagrad(ps, lr=lr, weight_decay=wd),
    "rmsprop": lambda ps, lr, wd: RMSProp(ps, lr=lr, weight_decay=wd),
    "adam": lambda ps, lr, wd: Adam(ps, lr=lr, weight_decay=wd),
    "adamw": lambda ps, lr, wd: AdamW(ps, lr=lr, weight_decay=wd),
}


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """An optimizer by name ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}")
    return OPTIMIZERS[name](params, lr, weight_decay)
