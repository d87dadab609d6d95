"""The gates: each a small class, forward keeps what its local gradient needs, backward applies it.

Add distributes, multiply switches, max routes, and a branch sums (in ``Tensor.backward``).
Every ``backward`` returns one gradient per input, upstream times local, possibly in the
broadcast shape; :func:`~gpunn.autograd.core.sum_to` brings it back to the input's shape.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..devices import array_module, device_of
from .core import Gate, Tensor, tensor


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


class ReLU(Gate):
    """max(0, x): the gradient passes where x > 0 and stops elsewhere."""

    label = "relu"

    def forward(self, x):
        xp = array_module(x)
        self.passes = x > 0
        return xp.where(self.passes, x, x.dtype.type(0))

    def backward(self, gy):
        return (array_module(gy).where(self.passes, gy, gy.dtype.type(0)),)


class Sigmoid(Gate):
    """1 / (1 + e^-x): d/dx = y (1 - y), from the output."""

    label = "sigmoid"

    def forward(self, x):
        half = x.dtype.type(0.5)
        self.y = half * array_module(x).tanh(half * x) + half  # the tanh form never overflows
        return self.y

    def backward(self, gy):
        return (gy * self.y * (1 - self.y),)


class Tanh(Gate):
    """tanh x: d/dx = 1 - y^2, from the output."""

    label = "tanh"

    def forward(self, x):
        self.y = array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return (gy * (1 - self.y * self.y),)


def _axes(axis, ndim: int) -> tuple:
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axis))


class Sum(Gate):
    """Sum over ``axis``: a many-input add, so every summed element gets the upstream gradient."""

    label = "sum"

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.shape, self.axes = x.shape, _axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        xp = array_module(gy)
        kept = gy if self.keepdims else xp.expand_dims(gy, self.axes)
        return (xp.broadcast_to(kept, self.shape),)


class Mean(Sum):
    """Mean over ``axis``: a sum scaled by 1/n, so each element gets the upstream gradient / n."""

    label = "mean"

    def forward(self, x):
        total = super().forward(x)
        self.n = math.prod(x.shape[a] for a in self.axes)
        return total / x.dtype.type(self.n)

    def backward(self, gy):
        (g,) = super().backward(gy)
        return (g / gy.dtype.type(self.n),)


class Max(Gate):
    """Max over ``axis``: routes the upstream gradient to the largest element (shared evenly among ties)."""

    label = "max"

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.axes = _axes(self.axis, x.ndim)
        top = x.max(axis=self.axes, keepdims=True)
        winners = (x == top).astype(x.dtype)
        self.route = winners / winners.sum(axis=self.axes, keepdims=True)
        return top if self.keepdims else top.reshape([n for i, n in enumerate(top.shape) if i not in self.axes])

    def backward(self, gy):
        kept = gy if self.keepdims else array_module(gy).expand_dims(gy, self.axes)
        return (kept * self.route,)


class Reshape(Gate):
    """The same values in another shape; the gradient is reshaped back."""

    label = "reshape"

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return (gy.reshape(self.in_shape),)


class Transpose(Gate):
    """Axes permuted (reversed for ``.T``); the gradient is permuted back."""

    label = "T"

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.perm = tuple(reversed(range(x.ndim))) if self.axes is None else tuple(a % x.ndim for a in self.axes)
        if sorted(self.perm) != list(range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of {x.ndim} axes")
        return x.transpose(self.perm)

    def backward(self, gy):
        return (gy.transpose(tuple(np.argsort(self.perm))),)


class GetItem(Gate):
    """x[key] (slices, integers, index arrays): the gradient lands where the picked elements came from."""

    label = "[ ]"

    def __init__(self, key):
        self.key = key

    def forward(self, x):
        key = self.key if isinstance(self.key, tuple) else (self.key,)
        dev = device_of(x)
        key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
        self.basic = all(k is None or k is Ellipsis or isinstance(k, (slice, numbers.Integral)) for k in key)
        self.index = tuple(k if self.basic or not hasattr(k, "shape") and not isinstance(k, list)
                           else dev.asarray(k) for k in key)
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if self.basic:
            gx[self.index] = gy  # basic slicing picks each element at most once
        else:
            _scatter_add(xp, gx, self.index, gy)  # an index array may pick an element twice: both count
        return (gx,)


def _scatter_add(xp, target, index, values) -> None:
    if xp is np:
        np.add.at(target, index, values)
    else:  # CuPy
        import cupyx

        cupyx.scatter_add(target, index, values)


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
