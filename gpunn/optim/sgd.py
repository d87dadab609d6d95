"""SGD: plain, momentum and Nesterov momentum."""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .optimizer import Optimizer


class SGD(Optimizer):
    """w <- w - lr g; with momentum mu: v <- mu v + g, w <- w - lr v; Nesterov: w <- w - lr (g + mu v).

    The same definition as ``torch.optim.SGD`` (no dampening). ``momentum`` in [0, 1).
    """

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.state_names = ("velocity",) if self.momentum else ()

    def _update(self, p, state, lr, weight_decay, skip=None):
        hyper = self._hyper(p, ops.sgd_hyper(lr, self.momentum, weight_decay), bool(weight_decay))
        ops.sgd_step(p.data, p.grad, state.get("velocity"), lr, self.momentum, self.nesterov, weight_decay,
                     skip=skip, hyper=hyper)

    def hyperparameters(self):
        return {**super().hyperparameters(), "momentum": self.momentum, "nesterov": self.nesterov}
