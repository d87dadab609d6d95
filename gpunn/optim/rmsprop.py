"""RMSProp: Adagrad with a leaky (exponentially decaying) sum of squared gradients."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class RMSProp(Optimizer):
    """v <- alpha v + (1 - alpha) g^2; w <- w - lr g / (sqrt(v) + eps). As ``torch.optim.RMSprop``.

    Adagrad's sum of squared gradients made leaky: v is their running average, so steps do not
    shrink for good. Weight decay adds lambda w to g.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float, default=1e-2
        The learning rate, > 0.
    alpha : float, default=0.99
        The decay rate of the running average, in [0, 1).
    eps : float, default=1e-8
        Added to sqrt(v) to avoid a division by 0, > 0.
    weight_decay : float, default=0.0
        The L2 strength lambda, >= 0, added to the gradient as lambda w.
    decay_biases : bool, default=False
        Whether weight decay applies to the parameters not marked ``decay`` (biases,
        normalisation scales and shifts) too.

    Raises
    ------
    ValueError
        If ``params`` is empty or a hyperparameter is outside its range.
    TypeError
        If ``params`` is not an iterable of Parameters, or a hyperparameter is not a number.

    Examples
    --------
    >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = gn.optim.RMSProp([w], lr=0.01)
    >>> w.grad = np.array([0.5, -1.0], np.float32)
    >>> opt.step()  # v = 0.01 g^2, so the first step is lr g / (0.1 |g|) = 10 lr
    >>> w.data, opt.state[0]["sq_avg"]
    (array([ 0.9, -1.9], dtype=float32), array([0.0025, 0.01  ], dtype=float32))
    """

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
