"""Adam and AdamW: momentum plus RMSProp-style scaling, with bias correction."""

from __future__ import annotations

import math

from ..devices import array_module
from ..validation import check_number
from .optimizer import Optimizer


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; w <- w - lr m_hat / (sqrt(v_hat) + eps).

    m_hat and v_hat divide by 1 - b^t (bias correction for the zero start). ``weight_decay``
    is L2 added to the gradient, as in ``torch.optim.Adam``; :class:`~gpunn.optim.AdamW` decouples it.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float, default=1e-3
        The learning rate, > 0.
    betas : tuple of float, default=(0.9, 0.999)
        (b1, b2): the decay rates of the running averages of g and g^2, each in [0, 1).
    eps : float, default=1e-8
        Added to sqrt(v_hat) to avoid a division by 0, > 0.
    weight_decay : float, default=0.0
        The L2 strength lambda, >= 0, added to the gradient as lambda w.
    decay_biases : bool, default=False
        Whether weight decay applies to the parameters not marked ``decay`` (biases,
        normalisation scales and shifts) too.

    Raises
    ------
    TypeError
        If ``betas`` is not a pair; if ``params`` is not an iterable of Parameters, or a
        hyperparameter is not a number.
    ValueError
        If ``params`` is empty or a hyperparameter is outside its range.

    Examples
    --------
    >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = gn.optim.Adam([w], lr=0.1)
    >>> w.grad = np.array([0.5, -1.0], np.float32)
    >>> opt.step()  # after bias correction m_hat = g and v_hat = g^2: a first step of lr sign(g)
    >>> w.data
    array([ 0.9, -1.9], dtype=float32)
    >>> opt.state[0]["m"], opt.beta1, opt.beta2
    (array([ 0.05, -0.1 ], dtype=float32), 0.9, 0.999)
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

    @property
    def beta1(self) -> float:
        """b1, the decay rate of the running average of g (``betas[0]``)."""
        return self.betas[0]

    @property
    def beta2(self) -> float:
        """b2, the decay rate of the running average of g^2 (``betas[1]``)."""
        return self.betas[1]

    @staticmethod
    def per_step(h, t):
        """(lr / (1 - b1^t), 1 - b2^t): the bias corrections of step t, once per step.

        Parameters
        ----------
        h : namedtuple
            The hyperparameters (``h.lr``, ``h.beta1``, ``h.beta2``, ``h.one``) in the weights' dtype.
        t : int or scalar
            The step's number, 1 for the first.

        Returns
        -------
        tuple
            (lr / (1 - b1^t), 1 - b2^t), the ``s`` that :meth:`update` and ``rule`` read.
        """
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
    """Adam with decoupled weight decay: w <- w (1 - lr lambda) before the Adam step (``torch.optim.AdamW``).

    The gradient is left alone, so the decay is not scaled by Adam's per-coordinate steps (as L2 in
    :class:`~gpunn.optim.Adam` is); it adds no term to the loss (``penalty()`` is 0).

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float, default=1e-3
        The learning rate, > 0.
    betas : tuple of float, default=(0.9, 0.999)
        (b1, b2): the decay rates of the running averages of g and g^2, each in [0, 1).
    eps : float, default=1e-8
        Added to sqrt(v_hat) to avoid a division by 0, > 0.
    weight_decay : float, default=1e-2
        The L2 strength lambda, >= 0, applied as w <- w (1 - lr lambda).
    decay_biases : bool, default=False
        Whether weight decay applies to the parameters not marked ``decay`` (biases,
        normalisation scales and shifts) too.

    Raises
    ------
    TypeError
        If ``betas`` is not a pair; if ``params`` is not an iterable of Parameters, or a
        hyperparameter is not a number.
    ValueError
        If ``params`` is empty or a hyperparameter is outside its range.

    Examples
    --------
    >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = gn.optim.AdamW([w], lr=0.1, weight_decay=0.01)
    >>> w.grad = np.array([0.5, -1.0], np.float32)
    >>> opt.step()  # w (1 - 0.1 * 0.01), then Adam's first step of lr sign(g)
    >>> w.data
    array([ 0.899, -1.898], dtype=float32)
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, decay_biases: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, decay_biases)
