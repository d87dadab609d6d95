"""RMSProp: Adagrad with a leaky (exponentially decaying) sum of squared gradients."""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .optimizer import Optimizer


class RMSProp(Optimizer):
    """v <- alpha v + (1 - alpha) g^2; w <- w - lr g / (sqrt(v) + eps). As ``torch.optim.RMSprop``."""

    state_names = ("sq_avg",)

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        self.alpha = check_number("alpha", alpha, low=0, high=1, high_open=True)
        self.eps = check_number("eps", eps, low=0, low_open=True)

    def _update(self, p, state, lr, weight_decay, skip=None):
        hyper = self._hyper(p, ops.rmsprop_hyper(lr, self.alpha, self.eps, weight_decay), bool(weight_decay))
        ops.rmsprop_step(p.data, p.grad, state["sq_avg"], lr, self.alpha, self.eps, weight_decay, skip=skip,
                         hyper=hyper)

    def hyperparameters(self):
        return {**super().hyperparameters(), "alpha": self.alpha, "eps": self.eps}
