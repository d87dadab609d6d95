"""Learning-rate schedules, stepped once per epoch: step decay, exponential, cosine."""

from __future__ import annotations

import math

from ..validation import check_int, check_number
from .optimizer import Optimizer


class LRSchedule:
    """Sets ``optimizer.lr`` from the epoch count; call :meth:`~LRSchedule.step` at the end of each epoch."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a gpunn.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch and set the optimizer's learning rate; returns it."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, sd: dict) -> "LRSchedule":
        if not isinstance(sd, dict) or sd.get("type") != type(self).__name__:
            found = sd.get("type") if isinstance(sd, dict) else type(sd).__name__
            raise ValueError(f"state dict is for {found!r}, this schedule is {type(self).__name__}")
        epoch = check_int("epoch", sd["epoch"], low=0)
        self.base_lr = check_number("base_lr", sd["base_lr"], low=0, low_open=True)
        self.epoch = epoch
        self.optimizer.lr = self.lr_at(epoch)
        return self


class StepDecay(LRSchedule):
    """lr = base_lr * gamma ** (epoch // step_size): drop by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = check_int("step_size", step_size, low=1)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LRSchedule):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma**epoch


class CosineAnnealing(LRSchedule):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, then eta_min after T_max.

    With the default ``eta_min=0`` the rate reaches 0 at epoch ``T_max`` and stays there: later
    epochs change nothing (they still run and are recorded). No restarts.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = check_int("T_max", T_max, low=1)
        self.eta_min = check_number("eta_min", eta_min, low=0, high=self.base_lr)

    def lr_at(self, epoch):
        t = min(epoch, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
