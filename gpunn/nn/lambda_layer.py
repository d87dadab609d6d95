"""Lambda and FunctionLoss: a layer or a loss written as an autograd expression, backward for free.

    swish = gn.nn.Lambda(lambda x: x * ag.sigmoid(x))
    scale = gn.nn.Lambda(lambda x, g: x * g, g=np.ones(10))          # with a trainable parameter
    l1 = gn.nn.FunctionLoss(lambda s, y: ag.relu(1 - s[np.arange(len(y)), y]).mean())

Forward runs the expression on ``xp`` arrays wrapped as :class:`~gpunn.autograd.Tensor`;
backward runs the expression's own backward pass and hands the gradients to the engine
(the input gradient to the layer below, parameter gradients into ``Parameter.grad``).
Inside ``Sequential`` and ``Trainer`` these behave as every other gate, on CPU and CUDA.
"""

from __future__ import annotations

from .. import autograd as ag
from ..devices import adopt, device_of
from .losses import Loss
from .module import Module
from .parameter import Parameter

_TAKEN = frozenset(vars(Module()).keys()) | {"fn", "param_names", "name"}


def _returned_tensor(out, who: str) -> ag.Tensor:
    if not isinstance(out, ag.Tensor):
        raise TypeError(f"{who}: the function must return an autograd Tensor (built from its arguments), "
                        f"got {type(out).__name__}")
    return out


class Lambda(Module):
    """A layer computing ``fn(x, **params)`` with autograd; ``params`` (arrays or Parameters) are trained.

    ``fn`` takes the batch as a Tensor (N, ...) and each parameter as a Tensor by name, and
    returns a Tensor (N, ...). ``decay`` applies to parameters given as arrays (weight decay on them).

    Forward runs ``fn`` and keeps its graph (in training); backward runs the graph's own backward
    pass from dout, accumulates each parameter's gradient into its ``grad`` and returns the
    gradient w.r.t. x. The graph is released after one backward.

    Parameters
    ----------
    fn : callable
        ``fn(x, **params) -> Tensor``, written with :mod:`gpunn.autograd`'s operations.
    name : str or None, default=None
        The name shown in the layer's repr; None: ``fn``'s ``__name__``.
    decay : bool, default=True
        Whether weight decay applies to the parameters given as arrays.
    **params : ndarray or Parameter
        The trainable parameters, by the names ``fn`` takes them. Arrays become Parameters of the
        layer's dtype; a Parameter is kept, its data cast to the layer's dtype.

    Raises
    ------
    TypeError
        If ``fn`` is not callable, or a parameter given as a Parameter does not hold floats.
    ValueError
        If a parameter's name is taken by the layer itself (``fn``, ``name``, ``training``, ...)
        or starts with an underscore.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> swish = gn.nn.Lambda(lambda x: x * ag.sigmoid(x), name="swish")
    >>> swish
    Lambda(swish)
    >>> swish.forward(np.array([[-1.0, 0.0, 2.0]]))
    array([[-0.2689,  0.    ,  1.7616]], dtype=float32)
    >>> swish.backward(np.ones((1, 3)))
    array([[0.0723, 0.5   , 1.0908]], dtype=float32)

    With a trainable parameter ``g``, passed to ``fn`` by its name:

    >>> scale = gn.nn.Lambda(lambda x, g: x * g, g=np.full(3, 2.0))
    >>> scale.forward(np.array([[-1.0, 0.0, 2.0]]))
    array([[-2.,  0.,  4.]], dtype=float32)
    >>> scale.backward(np.ones((1, 3)))  # dx = dout g
    array([[2., 2., 2.]], dtype=float32)
    >>> scale.g.grad  # dg = dout x, summed over the batch
    array([-1.,  0.,  2.], dtype=float32)
    """

    keeps_float32 = True  # the autograd computes in float32 or float64: mixed precision leaves it in float32

    def __init__(self, fn, name: str | None = None, decay: bool = True, **params):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Lambda needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")
        self.param_names = tuple(params)
        for key, value in params.items():
            if key in _TAKEN or key.startswith("_"):
                raise ValueError(f"Lambda parameter name {key!r} is taken by the layer itself; choose another")
            p = value if isinstance(value, Parameter) else Parameter(self.device.asarray(value, self.dtype), decay)
            if p.data.dtype.kind != "f":
                raise TypeError(f"Lambda parameter {key!r} must hold floats, got dtype {p.data.dtype}")
            setattr(self, key, p)
        for key in self.param_names:  # parameters follow the layer's dtype (float32 until .to() says otherwise)
            p = getattr(self, key)
            p.data = self.device.asarray(p.data, dtype=self.dtype)

    def forward(self, x):
        x = self._input(x)
        xt = ag.tensor(x, requires_grad=True)
        params = {k: ag.tensor(getattr(self, k).data, name=k) for k in self.param_names}
        if self.training:
            out = _returned_tensor(self.fn(xt, **params), repr(self))
            self._cache = (xt, params, out)
        else:
            with ag.no_grad():  # evaluation: nothing to differentiate, keep no graph
                out = _returned_tensor(self.fn(xt, **params), repr(self))
        if out.device != self.device:
            raise ValueError(f"{self!r}: the function returned a tensor on {out.device}, the layer is on {self.device}")
        return out.data

    def backward(self, dout, input_grad: bool = True):
        xt, params, out = self._saved()
        dout = self._upstream(dout, out.shape)
        out.backward(dout)
        for k, t in params.items():
            if t.grad is not None:
                getattr(self, k).accumulate(t.grad)
        self._cache = None  # one backward per forward: the graph is released
        if not input_grad:
            return None
        return xt.grad if xt.grad is not None else self.device.xp.zeros_like(xt.data)

    def extra_repr(self):
        return self.name + "".join(f", {k}={getattr(self, k).shape}" for k in self.param_names)


class FunctionLoss(Loss):
    """A loss ``fn(scores, y)`` written with autograd: ``scores`` is a Tensor (N, ...), ``y`` an array or None.

    ``fn`` returns a one-element Tensor, the mean loss over the batch (the engine's convention).
    ``y`` arrives on the scores' device, unchanged otherwise (labels or real-valued targets).
    Calling the loss returns its value (a 0-d array); ``backward()`` returns the gradient w.r.t.
    the scores, by the expression's own backward pass.

    Parameters
    ----------
    fn : callable
        ``fn(scores, y) -> Tensor`` of one element, written with :mod:`gpunn.autograd`'s operations.
    name : str or None, default=None
        The name shown in the loss's repr; None: ``fn``'s ``__name__``.

    Raises
    ------
    TypeError
        If ``fn`` is not callable.

    Examples
    --------
    A hinge on the correct class's score, max(0, 1 - s_y), averaged over the batch:

    >>> from gpunn import autograd as ag
    >>> hinge = gn.nn.FunctionLoss(lambda s, y: ag.relu(1 - s[np.arange(len(y)), y]).mean(), name="hinge")
    >>> hinge
    FunctionLoss(hinge)
    >>> scores, y = np.array([[2.0, 0.5], [0.2, 0.4]]), np.array([0, 1])
    >>> print(hinge(scores, y))  # (0 + 0.6) / 2
    0.3
    >>> hinge.backward()  # -1/N at the correct class where its margin is violated
    array([[ 0. ,  0. ],
           [ 0. , -0.5]])
    """

    def __init__(self, fn, name: str | None = None):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"FunctionLoss needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")

    def forward(self, scores, y=None):
        s = self._scores(scores, "(N, ...)", lambda sh: len(sh) >= 1)
        if y is not None:
            y = adopt(y, device_of(s), "y")
        st = ag.tensor(s)
        out = _returned_tensor(self.fn(st, y), repr(self))
        if out.size != 1:
            raise ValueError(f"{self!r}: the function must return the loss as one number, got shape {out.shape}")
        self._cache = (st, out)
        return out.data.reshape(())

    def _grad(self):
        st, out = self._cache
        if st.grad is None:
            out.backward()
        if st.grad is None:  # the loss does not depend on the scores
            return st.device.xp.zeros_like(st.data)
        return st.grad.copy()

    def __repr__(self):
        return f"FunctionLoss({self.name})"
