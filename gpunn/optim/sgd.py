"""SGD: plain, momentum and Nesterov momentum."""

from __future__ import annotations

from ..validation import check_number
from .optimizer import Optimizer


class SGD(Optimizer):
    """w <- w - lr g; with momentum mu: v <- mu v + g, w <- w - lr v; Nesterov: w <- w - lr (g + mu v).

    The same definition as ``torch.optim.SGD`` (no dampening). ``momentum`` in [0, 1). Weight decay adds
    lambda w to g. Without momentum there is no buffer (``state_names`` is empty).
    """

    state_names = ("velocity",)
    numbers = ("lr", "momentum", "nesterov")

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        if not self.momentum:
            self.state_names = ()

    def update(self, w, g, *velocity, h, s, wd):
        g = g + wd * w  # L2: lambda w added to the gradient
        if not velocity:
            w -= h.lr * g
            return
        (v,) = velocity
        v *= h.momentum
        v += g
        w -= h.lr * (g + h.momentum * v if h.nesterov else v)

    @staticmethod
    def rule(w, g, v, h, s, wd):
        g = g + wd * w
        v = h.momentum * v + g
        return w - h.lr * (g + h.momentum * v if h.nesterov else v), v

    @staticmethod
    def rule_without_state(w, g, h, s, wd):
        return w - h.lr * (g + wd * w)
