"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """s <- s + g^2; w <- w - lr g / (sqrt(s) + eps). As ``torch.optim.Adagrad`` with lr_decay=0."""

    state_names = ("sum_sq",)
    numbers = ("lr", "eps")

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.eps = check_number("eps", eps, low=0, low_open=True)

    def update(self, w, g, sum_sq, h, s, wd):
        g = g + wd * w
        sum_sq += g * g
        w -= h.lr * g / (array_module(w).sqrt(sum_sq) + h.eps)

    @staticmethod
    def rule(w, g, sum_sq, h, s, wd):
        g = g + wd * w
        sum_sq = sum_sq + g * g
        return w - h.lr * g / (math.sqrt(sum_sq) + h.eps), sum_sq
