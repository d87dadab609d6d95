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
from .shape_gates import GetItem, Max, Mean, Reshape, Sum, Transpose


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
    """e^x elementwise."""
    return Exp()(_tensor_arg(x, "exp"))


def log(x) -> Tensor:
    """Natural logarithm elementwise."""
    return Log()(_tensor_arg(x, "log"))


def maximum(x, y) -> Tensor:
    """Elementwise max of two tensors (or a tensor and a number): the max gate."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        raise TypeError("maximum needs at least one Tensor argument")
    return Maximum()(x, y)


def relu(x) -> Tensor:
    """max(0, x) elementwise."""
    return ReLU()(_tensor_arg(x, "relu"))


def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x) elementwise, computed without overflow."""
    return Sigmoid()(_tensor_arg(x, "sigmoid"))


def tanh(x) -> Tensor:
    """tanh x elementwise."""
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
    Tensor.sum = lambda self, axis=None, keepdims=False: Sum(axis, keepdims)(self)
    Tensor.mean = lambda self, axis=None, keepdims=False: Mean(axis, keepdims)(self)
    Tensor.max = lambda self, axis=None, keepdims=False: Max(axis, keepdims)(self)
    Tensor.reshape = lambda self, *shape: Reshape(tuple(_one_or_many(shape)))(self)
    Tensor.transpose = lambda self, *axes: Transpose(tuple(_one_or_many(axes)) or None)(self)
    Tensor.T = property(lambda self: Transpose(None)(self))


def _one_or_many(args):
    """``f(2, 3)`` and ``f((2, 3))`` alike: the arguments as one sequence."""
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


_install_operators()
