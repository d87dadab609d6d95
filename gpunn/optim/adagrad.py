"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """s <- s + g^2; w <- w - lr g / (sqrt(s) + eps). As ``torch.optim.Adagrad`` with lr_decay=0."""

    state_names = ("sum_sq",)

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.eps = check_number("eps", eps, low=0, low_open=True)

    def _update(self, p, state, lr, weight_decay, skip=None):
        hyper = self._hyper(p, ops.adagrad_hyper(lr, self.eps, weight_decay), bool(weight_decay))
        ops.adagrad_step(p.data, p.grad, state["sum_sq"], lr, self.eps, weight_decay, skip=skip, hyper=hyper)

    def hyperparameters(self):
        return {**super().hyperparameters(), "eps": self.eps}
