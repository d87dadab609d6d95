"""Learning-rate schedules, stepped once per epoch: step decay, exponential, cosine."""

from __future__ import annotations

import math

from ..validation import check_int, check_number
from .optimizer import Optimizer


class LRSchedule:
    """Sets ``optimizer.lr`` from the epoch count; call :meth:`~LRSchedule.step` at the end of each epoch.

    The base of the schedules: a subclass gives :meth:`lr_at`, the rate at an epoch. The
    :class:`~gpunn.Trainer` steps a schedule it is given after each epoch.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``lr`` it sets; its ``lr`` now is ``base_lr``, the rate at epoch 0.

    Attributes
    ----------
    base_lr : float
        The optimizer's learning rate when the schedule was made.
    epoch : int
        Epochs stepped so far.

    Raises
    ------
    TypeError
        If ``optimizer`` is not a :class:`~gpunn.optim.Optimizer`.
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a gpunn.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        """The learning rate after ``epoch`` epochs (the schedule's formula; a subclass gives it).

        Parameters
        ----------
        epoch : int
            Epochs completed, >= 0; 0 gives ``base_lr``.

        Returns
        -------
        float
            The learning rate.

        Raises
        ------
        NotImplementedError
            Here, in the base class: each schedule gives its own.
        """
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch and set the optimizer's learning rate; returns it.

        Returns
        -------
        float
            The new learning rate, ``lr_at(epoch)``.
        """
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict:
        """What :meth:`load_state_dict` needs to resume the schedule.

        Returns
        -------
        dict
            ``{"type": class name, "epoch": epochs stepped, "base_lr": the rate at epoch 0}``.
        """
        return {"type": type(self).__name__, "epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, sd: dict) -> "LRSchedule":
        """Resume from :meth:`state_dict`: the epoch and base rate, and the optimizer's ``lr`` set to match.

        Parameters
        ----------
        sd : dict
            A state dict from a schedule of this same class.

        Returns
        -------
        LRSchedule
            This schedule.

        Raises
        ------
        ValueError
            If ``sd`` is not a state dict of this class (or lacks its entries), or holds a negative epoch
            or a base rate that is not > 0.
        """
        if not isinstance(sd, dict) or sd.get("type") != type(self).__name__:
            found = sd.get("type") if isinstance(sd, dict) else type(sd).__name__
            raise ValueError(f"state dict is for {found!r}, this schedule is {type(self).__name__}")
        missing = [key for key in ("epoch", "base_lr") if key not in sd]
        if missing:
            raise ValueError(f"state dict has no {', '.join(missing)}: not one a schedule's state_dict() gave")
        epoch = check_int("epoch", sd["epoch"], low=0)
        self.base_lr = check_number("base_lr", sd["base_lr"], low=0, low_open=True)
        self.epoch = epoch
        self.optimizer.lr = self.lr_at(epoch)
        return self


class StepDecay(LRSchedule):
    """lr = base_lr * gamma ** (epoch // step_size): drop by ``gamma`` every ``step_size`` epochs.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``lr`` it sets; its ``lr`` now is ``base_lr``, the rate at epoch 0.
    step_size : int
        Epochs between drops, >= 1.
    gamma : float, default=0.1
        The factor of each drop, in (0, 1].

    Raises
    ------
    ValueError
        If ``step_size`` is below 1 or ``gamma`` is outside (0, 1].
    TypeError
        If ``optimizer`` is not an Optimizer, or a number is not one.

    Examples
    --------
    >>> opt = gn.optim.SGD(gn.nn.Linear(3, 2, rng=0).parameters(), lr=0.1)
    >>> schedule = gn.optim.StepDecay(opt, step_size=2, gamma=0.5)
    >>> [schedule.step() for epoch in range(4)]
    [0.1, 0.05, 0.05, 0.025]
    >>> opt.lr
    0.025
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = check_int("step_size", step_size, low=1)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LRSchedule):
    """lr = base_lr * gamma ** epoch.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``lr`` it sets; its ``lr`` now is ``base_lr``, the rate at epoch 0.
    gamma : float
        The factor applied each epoch, in (0, 1].

    Raises
    ------
    ValueError
        If ``gamma`` is outside (0, 1].
    TypeError
        If ``optimizer`` is not an Optimizer, or ``gamma`` is not a number.

    Examples
    --------
    >>> opt = gn.optim.SGD(gn.nn.Linear(3, 2, rng=0).parameters(), lr=0.1)
    >>> schedule = gn.optim.ExponentialDecay(opt, gamma=0.5)
    >>> [schedule.step() for epoch in range(3)]
    [0.05, 0.025, 0.0125]
    """

    def __init__(self, optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma**epoch


class CosineAnnealing(LRSchedule):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, then eta_min after T_max.

    With the default ``eta_min=0`` the rate reaches 0 at epoch ``T_max`` and stays there: later
    epochs change nothing (they still run and are recorded). No restarts.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``lr`` it sets; its ``lr`` now is ``base_lr``, the rate at epoch 0.
    T_max : int
        The epoch at which the rate reaches ``eta_min``, >= 1.
    eta_min : float, default=0.0
        The lowest rate, in [0, base_lr].

    Raises
    ------
    ValueError
        If ``T_max`` is below 1 or ``eta_min`` is outside [0, base_lr].
    TypeError
        If ``optimizer`` is not an Optimizer, or a number is not one.

    Examples
    --------
    >>> opt = gn.optim.SGD(gn.nn.Linear(3, 2, rng=0).parameters(), lr=0.1)
    >>> schedule = gn.optim.CosineAnnealing(opt, T_max=4)
    >>> [round(schedule.step(), 4) for epoch in range(5)]
    [0.0854, 0.05, 0.0146, 0.0, 0.0]
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = check_int("T_max", T_max, low=1)
        self.eta_min = check_number("eta_min", eta_min, low=0, high=self.base_lr)

    def lr_at(self, epoch):
        t = min(epoch, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
