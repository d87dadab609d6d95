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
    """An optimizer by name ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw").

    "momentum" and "nesterov" are :class:`~gpunn.optim.SGD` with momentum 0.9; every other
    hyperparameter keeps its class's default.

    Parameters
    ----------
    name : str
        A key of :data:`~gpunn.optim.OPTIMIZERS`.
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float
        The learning rate, > 0.
    weight_decay : float, default=0.0
        The L2 strength lambda, >= 0 (AdamW's decoupled decay for "adamw").

    Returns
    -------
    Optimizer
        A new optimizer of that kind over ``params``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the names above (or a hyperparameter is out of range).

    Examples
    --------
    >>> model = gn.nn.Linear(3, 2, rng=0)
    >>> gn.optim.make_optimizer("momentum", model.parameters(), lr=0.01)
    SGD(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, decay_biases=False)
    >>> gn.optim.make_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=0.05)
    AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.05, decay_biases=False)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}")
    return OPTIMIZERS[name](params, lr, weight_decay)
