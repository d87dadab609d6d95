"""Adam and AdamW: momentum plus RMSProp-style scaling, with bias correction."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; w <- w - lr m_hat / (sqrt(v_hat) + eps).

    m_hat and v_hat divide by 1 - b^t (bias correction for the zero start). ``weight_decay``
    is L2 added to the gradient, as in ``torch.optim.Adam``; :class:`AdamW` decouples it.
    """

    state_names = ("m", "v")
    numbers = ("lr", "beta1", "beta2", "eps", "decoupled")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_biases: bool = False):
        super().__init__(params, lr, weight_decay, decay_biases)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            check_number("betas[0]", betas[0], low=0, high=1, high_open=True),
            check_number("betas[1]", betas[1], low=0, high=1, high_open=True),
        )
        self.eps = check_number("eps", eps, low=0, low_open=True)

    beta1 = property(lambda self: self.betas[0])
    beta2 = property(lambda self: self.betas[1])

    @staticmethod
    def per_step(h, t):
        """(lr / (1 - b1^t), 1 - b2^t): the bias corrections of step t, once per step."""
        return h.lr / (h.one - h.beta1 ** t), h.one - h.beta2 ** t

    def update(self, w, g, m, v, h, s, wd):
        if h.decoupled:
            w *= 1 - h.lr * wd  # AdamW: the weights shrink, the gradient is left alone
        else:
            g = g + wd * w
        m *= h.beta1
        m += (1 - h.beta1) * g
        v *= h.beta2
        v += (1 - h.beta2) * g * g
        lr_t, bc2 = s
        w -= lr_t * m / (array_module(w).sqrt(v / bc2) + h.eps)

    @staticmethod
    def rule(w, g, m, v, h, s, wd):
        if h.decoupled:
            w = w * (h.one - h.lr * wd)
        else:
            g = g + wd * w
        m = h.beta1 * m + (h.one - h.beta1) * g
        v = h.beta2 * v + (h.one - h.beta2) * g * g
        return w - s[0] * m / (math.sqrt(v / s[1]) + h.eps), m, v


class AdamW(Adam):
    """Adam with decoupled weight decay: w <- w (1 - lr lambda) before the Adam step (``torch.optim.AdamW``)."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, decay_biases: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, decay_biases)
