"""RMSProp: Adagrad with a leaky (exponentially decaying) sum of squared gradients."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class RMSProp(Optimizer):
    """v <- alpha v + (1 - alpha) g^2; w <- w - lr g / (sqrt(v) + eps). As ``torch.optim.RMSprop``."""

    state_names = ("sq_avg",)
    numbers = ("lr", "alpha", "eps")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.alpha = check_number("alpha", alpha, low=0, high=1, high_open=True)
        self.eps = check_number("eps", eps, low=0, low_open=True)

    def update(self, w, g, sq_avg, h, s, wd):
        g = g + wd * w
        sq_avg *= h.alpha
        sq_avg += (1 - h.alpha) * g * g
        w -= h.lr * g / (array_module(w).sqrt(sq_avg) + h.eps)

    @staticmethod
    def rule(w, g, sq_avg, h, s, wd):
        g = g + wd * w
        sq_avg = h.alpha * sq_avg + (h.one - h.alpha) * g * g
        return w - h.lr * g / (math.sqrt(sq_avg) + h.eps), sq_avg
