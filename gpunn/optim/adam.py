"""Adam and AdamW: momentum plus RMSProp-style scaling, with bias correction."""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .optimizer import Optimizer


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; w <- w - lr m_hat / (sqrt(v_hat) + eps).

    m_hat and v_hat divide by 1 - b^t (bias correction for the zero start). ``weight_decay``
    is L2 added to the gradient, as in ``torch.optim.Adam``; :class:`AdamW` decouples it.
    """

    state_names = ("m", "v")

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

    def _update(self, p, state, lr, weight_decay, skip=None):
        b1, b2 = self.betas
        hyper = self._hyper(p, ops.adam_hyper(lr, b1, b2, self.eps, self.steps, weight_decay, self.decoupled),
                            bool(weight_decay))
        ops.adam_step(p.data, p.grad, state["m"], state["v"], lr, b1, b2, self.eps, self.steps,
                      weight_decay, self.decoupled, skip=skip, hyper=hyper)

    def hyperparameters(self):
        return {**super().hyperparameters(), "betas": self.betas, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay: w <- w (1 - lr lambda) before the Adam step (``torch.optim.AdamW``)."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, decay_biases: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, decay_biases)
