"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """s <- s + g^2; w <- w - lr g / (sqrt(s) + eps). As ``torch.optim.Adagrad`` with lr_decay=0.

    Each coordinate's step shrinks with the sum s of its squared gradients: coordinates with large
    gradients slow down, rare ones keep moving. Weight decay adds lambda w to g.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float, default=1e-2
        The learning rate, > 0.
    eps : float, default=1e-10
        Added to sqrt(s) to avoid a division by 0, > 0.
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
    >>> opt = gn.optim.Adagrad([w], lr=0.1)
    >>> w.grad = np.array([0.5, -1.0], np.float32)
    >>> opt.step()  # the first step moves each coordinate by lr g / |g| = lr
    >>> w.data, opt.state[0]["sum_sq"]
    (array([ 0.9, -1.9], dtype=float32), array([0.25, 1.  ], dtype=float32))
    """

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
