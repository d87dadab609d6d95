"""The gates: each a small class, forward keeps what its local gradient needs, backward applies it.

Add distributes, multiply switches, max routes, and a branch sums (in ``Tensor.backward``).
Every ``backward`` returns one gradient per input, upstream times local, possibly in the
broadcast shape; :func:`~gpunn.autograd.core.sum_to` brings it back to the input's shape.
"""

from __future__ import annotations

import numbers

from ..devices import array_module
from ..nn import activations
from .core import Gate, Tensor, tensor
from .shape_gates import GetItem, tensor_max, tensor_mean, tensor_reshape, tensor_sum, tensor_T, tensor_transpose


class Add(Gate):
    """x + y. Add distributes: each input gets the upstream gradient as it is."""

    label = "+"

    def forward(self, x, y):
        return x + y

    def backward(self, gy):
        return gy, gy


class Sub(Gate):
    """x - y: the upstream gradient to x, its negative to y."""

    label = "-"

    def forward(self, x, y):
        return x - y

    def backward(self, gy):
        return gy, -gy


class Neg(Gate):
    """-x."""

    label = "neg"

    def forward(self, x):
        return -x

    def backward(self, gy):
        return (-gy,)


class Mul(Gate):
    """x * y. Multiply switches: each input's gradient is the upstream times the other input."""

    label = "*"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, gy):
        return gy * self.y, gy * self.x


class Div(Gate):
    """x / y: d/dx = 1 / y, d/dy = -x / y^2."""

    label = "/"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, gy):
        return gy / self.y, -gy * self.x / (self.y * self.y)


class Pow(Gate):
    """x ** p for a number p: d/dx = p x^(p-1)."""

    def __init__(self, p):
        if isinstance(p, Tensor) or isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"'**' takes a number as exponent, got {type(p).__name__}")
        self.p = float(p)
        self.label = f"**{p:g}"

    def forward(self, x):
        self.x = x
        return x ** x.dtype.type(self.p)

    def backward(self, gy):
        return (gy * self.x.dtype.type(self.p) * self.x ** self.x.dtype.type(self.p - 1),)


class MatMul(Gate):
    """x @ w: d/dx = gy @ w^T, d/dw = x^T @ gy (1-D operands act as a row and a column)."""

    label = "@"

    def forward(self, x, w):
        self.x, self.w = x, w
        return x @ w

    def backward(self, gy):
        x = self.x[None, :] if self.x.ndim == 1 else self.x
        w = self.w[:, None] if self.w.ndim == 1 else self.w
        g = gy.reshape(x.shape[:-1] + w.shape[-1:]) if self.x.ndim == 1 or self.w.ndim == 1 else gy
        gx = (g @ w.swapaxes(-1, -2)).reshape(self.x.shape) if self.x.ndim == 1 else g @ w.swapaxes(-1, -2)
        gw = (x.swapaxes(-1, -2) @ g).reshape(self.w.shape) if self.w.ndim == 1 else x.swapaxes(-1, -2) @ g
        return gx, gw


class Exp(Gate):
    """e^x: its own derivative, so backward reuses the output."""

    label = "exp"

    def forward(self, x):
        self.y = array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return (gy * self.y,)


class Log(Gate):
    """log x: d/dx = 1 / x."""

    label = "log"

    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, gy):
        return (gy / self.x,)


class Maximum(Gate):
    """max(x, y) elementwise. Max routes: the whole upstream gradient goes to the larger input (x on ties)."""

    label = "max"

    def forward(self, x, y):
        xp = array_module(x)
        self.x_wins = x >= y
        return xp.maximum(x, y)

    def backward(self, gy):
        xp = array_module(gy)
        zero = gy.dtype.type(0)
        return xp.where(self.x_wins, gy, zero), xp.where(self.x_wins, zero, gy)


class _Elementwise(Gate):
    """An activation of ``gpunn.nn`` as an autograd gate: its own rules, f forward and df backward from the output."""

    rule = None  # the gpunn.nn activation whose f and df this gate runs

    def forward(self, x):
        self.y = self.rule.f(x.reshape(-1)).reshape(x.shape)  # as 1-D: the rules work in place on whole arrays
        return self.y

    def backward(self, gy):
        return (self.rule.df(gy.reshape(-1), self.y.reshape(-1)).reshape(gy.shape),)


class ReLU(_Elementwise):
    """max(0, x): the gradient passes where the output is positive and stops elsewhere."""

    label, rule = "relu", activations.ReLU()


class Sigmoid(_Elementwise):
    """1 / (1 + e^-x): d/dx = y (1 - y), from the output."""

    label, rule = "sigmoid", activations.Sigmoid()


class Tanh(_Elementwise):
    """tanh x: d/dx = 1 - y^2, from the output."""

    label, rule = "tanh", activations.Tanh()


# --------------------------------------------------------------------------- gates as functions


def exp(x) -> Tensor:
    """e^x elementwise: the exp gate, whose local gradient is its output.

    Parameters
    ----------
    x : Tensor, array_like or float
        The input; an array or number becomes a constant (no gradient is kept for it).

    Returns
    -------
    Tensor
        e^x, same shape; backward multiplies the upstream gradient by e^x.

    Raises
    ------
    TypeError
        If ``x`` is neither a Tensor nor numbers.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = ag.tensor(0.0)
    >>> y = ag.exp(x)
    >>> y.backward()
    >>> float(y.data), float(x.grad)
    (1.0, 1.0)
    """
    return Exp()(_tensor_arg(x, "exp"))


def log(x) -> Tensor:
    """Natural logarithm elementwise: the log gate, local gradient 1 / x.

    Parameters
    ----------
    x : Tensor, array_like or float
        The input; an array or number becomes a constant (no gradient is kept for it).

    Returns
    -------
    Tensor
        log x, same shape.

    Raises
    ------
    TypeError
        If ``x`` is neither a Tensor nor numbers.
    """
    return Log()(_tensor_arg(x, "log"))


def maximum(x, y) -> Tensor:
    """Elementwise maximum of two tensors (or a tensor and a number): the max gate, which routes.

    The upstream gradient goes to the larger input; where they tie, to ``x``.

    Parameters
    ----------
    x, y : Tensor, array_like or float
        The inputs, broadcast together; at least one is a Tensor.

    Returns
    -------
    Tensor
        ``max(x, y)`` elementwise.

    Raises
    ------
    TypeError
        If neither is a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x, y = ag.tensor([1.0, 5.0]), ag.tensor([3.0, 2.0])
    >>> m = ag.maximum(x, y)
    >>> m.sum().backward()
    >>> m.data, x.grad, y.grad
    (array([3., 5.], dtype=float32), array([0., 1.], dtype=float32), array([1., 0.], dtype=float32))
    """
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        raise TypeError("maximum needs at least one Tensor argument")
    return Maximum()(x, y)


def relu(x) -> Tensor:
    """max(0, x) elementwise: the ReLU gate, which passes the gradient where x > 0.

    Parameters
    ----------
    x : Tensor, array_like or float
        The input; an array or number becomes a constant (no gradient is kept for it).

    Returns
    -------
    Tensor
        max(0, x), same shape.

    Raises
    ------
    TypeError
        If ``x`` is neither a Tensor nor numbers.
    """
    return ReLU()(_tensor_arg(x, "relu"))


def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x) elementwise, computed without overflow: the sigmoid gate.

    Parameters
    ----------
    x : Tensor, array_like or float
        The input; an array or number becomes a constant (no gradient is kept for it).

    Returns
    -------
    Tensor
        sigma(x), same shape; its local gradient is sigma(x) (1 - sigma(x)).

    Raises
    ------
    TypeError
        If ``x`` is neither a Tensor nor numbers.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> s = ag.tensor(2.0)
    >>> f = ag.sigmoid(s)
    >>> f.backward()
    >>> round(float(f.data), 4), round(float(s.grad), 4)     # the lecture's neuron: f (1 - f)
    (0.8808, 0.105)
    """
    return Sigmoid()(_tensor_arg(x, "sigmoid"))


def tanh(x) -> Tensor:
    """tanh x elementwise: the tanh gate.

    Parameters
    ----------
    x : Tensor, array_like or float
        The input; an array or number becomes a constant (no gradient is kept for it).

    Returns
    -------
    Tensor
        tanh x, same shape; its local gradient is 1 - tanh(x)^2.

    Raises
    ------
    TypeError
        If ``x`` is neither a Tensor nor numbers.
    """
    return Tanh()(_tensor_arg(x, "tanh"))


def _tensor_arg(x, gate: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Real) or hasattr(x, "shape") or isinstance(x, list):
        return tensor(x, requires_grad=False)
    raise TypeError(f"{gate} takes a Tensor, got {type(x).__name__}")


# --------------------------------------------------------------------------- Tensor's operators, each a gate

def _install_operators() -> None:
    """Give Tensor its operators: each builds the gate above that computes it."""
    def both(gate):
        return (lambda self, other: gate()(self, other)), (lambda self, other: gate()(other, self))

    Tensor.__add__, Tensor.__radd__ = both(Add)
    Tensor.__sub__, Tensor.__rsub__ = both(Sub)
    Tensor.__mul__, Tensor.__rmul__ = both(Mul)
    Tensor.__truediv__, Tensor.__rtruediv__ = both(Div)
    Tensor.__matmul__, Tensor.__rmatmul__ = both(MatMul)
    Tensor.__neg__ = lambda self: Neg()(self)
    Tensor.__pow__ = lambda self, p: Pow(p)(self)
    Tensor.__getitem__ = lambda self, key: GetItem(key)(self)
    Tensor.sum, Tensor.mean, Tensor.max = tensor_sum, tensor_mean, tensor_max  # documented where their gates are
    Tensor.reshape, Tensor.transpose, Tensor.T = tensor_reshape, tensor_transpose, property(tensor_T)


_install_operators()
