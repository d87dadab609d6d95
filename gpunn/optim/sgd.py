"""SGD: plain, momentum and Nesterov momentum."""

from __future__ import annotations

from ..validation import check_number
from .optimizer import Optimizer


class SGD(Optimizer):
    """w <- w - lr g; with momentum mu: v <- mu v + g, w <- w - lr v; Nesterov: w <- w - lr (g + mu v).

    The same definition as ``torch.optim.SGD`` (no dampening). ``momentum`` in [0, 1). Weight decay adds
    lambda w to g. Without momentum there is no buffer (``state_names`` is empty).

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``.
    lr : float, default=1e-2
        The learning rate, > 0.
    momentum : float, default=0.0
        The momentum mu, in [0, 1); 0 is plain SGD.
    nesterov : bool, default=False
        Whether to use Nesterov momentum (needs ``momentum`` > 0).
    weight_decay : float, default=0.0
        The L2 strength lambda, >= 0, added to the gradient as lambda w.
    decay_biases : bool, default=False
        Whether weight decay applies to the parameters not marked ``decay`` (biases,
        normalisation scales and shifts) too.

    Raises
    ------
    ValueError
        If ``nesterov`` is True with ``momentum`` 0; if ``params`` is empty or a hyperparameter
        is outside its range.
    TypeError
        If ``params`` is not an iterable of Parameters, or a hyperparameter is not a number.

    Examples
    --------
    One parameter and a gradient set by hand show the rule, w <- w - lr v with v <- mu v + g:

    >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
    >>> opt = gn.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> opt
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, decay_biases=False)
    >>> w.grad = np.array([1.0, 1.0], np.float32)
    >>> opt.step()
    >>> w.data, opt.state[0]["velocity"]
    (array([ 0.9, -2.1], dtype=float32), array([1., 1.], dtype=float32))
    >>> opt.step()  # the same gradient again: v = 0.9 * 1 + 1
    >>> w.data
    array([ 0.71, -2.29], dtype=float32)

    In a training step, after the backward pass:

    >>> model = gn.nn.Linear(3, 2, rng=0)
    >>> loss = gn.nn.SoftmaxCrossEntropy()
    >>> opt = gn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> _ = loss(model.forward(np.ones((4, 3))), np.array([0, 1, 0, 1]))
    >>> _ = model.backward(loss.backward())
    >>> opt.step()
    >>> opt.zero_grad()
    >>> opt.steps
    1
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
        """Plain SGD for one element, w - lr (g + lambda w): the kernels' rule where momentum is 0 (no buffer).

        Parameters
        ----------
        w : float
            One element of the weights.
        g : float
            The matching element of the gradient.
        h : namedtuple
            The hyperparameters named in ``numbers`` (and 0, 1/2, 1), in w's dtype.
        s : tuple
            What ``per_step`` gives for this step (nothing, for SGD).
        wd : float
            This parameter's L2 strength (0 where it is not decayed).

        Returns
        -------
        float
            The new w.
        """
        return w - h.lr * (g + wd * w)
