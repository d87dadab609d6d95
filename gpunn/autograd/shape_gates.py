"""The gates that reduce or rearrange an array: sum, mean, max, reshape, transpose, indexing.

Each one's backward sends the upstream gradient back to where its values came from: spread over the
summed axes, to the maximum, reshaped or transposed back, or added onto the indexed elements.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..devices import array_module, device_of
from .core import Gate, Tensor


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


# --------------------------------------------------------------------------- as Tensor's methods (installed by gates.py)


def _one_or_many(args):
    """``f(2, 3)`` and ``f((2, 3))`` alike: the arguments as one sequence."""
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def tensor_sum(self, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes by default) through the sum gate.

    Parameters
    ----------
    axis : int, tuple of int or None, default=None
        The axes to sum over; None: all.
    keepdims : bool, default=False
        Keep the summed axes with length 1.

    Returns
    -------
    Tensor
        The sum; its gradient reaches every summed element.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = ag.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> s = x.sum(axis=0)
    >>> s.backward(np.ones(2))
    >>> s.data, x.grad
    (array([4., 6.], dtype=float32), array([[1., 1.],
           [1., 1.]], dtype=float32))
    """
    return Sum(axis, keepdims)(self)


def tensor_mean(self, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes by default) through the mean gate.

    Parameters
    ----------
    axis : int, tuple of int or None, default=None
        The axes to average over; None: all.
    keepdims : bool, default=False
        Keep the averaged axes with length 1.

    Returns
    -------
    Tensor
        The mean; each averaged element gets 1/n of the upstream gradient.
    """
    return Mean(axis, keepdims)(self)


def tensor_max(self, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis`` (all axes by default) through the max gate.

    Parameters
    ----------
    axis : int, tuple of int or None, default=None
        The axes to reduce; None: all.
    keepdims : bool, default=False
        Keep the reduced axes with length 1.

    Returns
    -------
    Tensor
        The maximum; the max gate routes the upstream gradient to the maximal elements.
    """
    return Max(axis, keepdims)(self)


def tensor_reshape(self, *shape) -> Tensor:
    """The same values in another shape, through the reshape gate.

    Parameters
    ----------
    *shape : int or tuple of int
        The new shape, as ``reshape(2, 3)`` or ``reshape((2, 3))``; one entry may be -1.

    Returns
    -------
    Tensor
        The reshaped tensor; its gradient is reshaped back.
    """
    return Reshape(tuple(_one_or_many(shape)))(self)


def tensor_transpose(self, *axes) -> Tensor:
    """The axes permuted (reversed by default), through the transpose gate.

    Parameters
    ----------
    *axes : int or tuple of int
        The permutation, as ``transpose(1, 0)`` or ``transpose((1, 0))``; none: reverse the axes.

    Returns
    -------
    Tensor
        The transposed tensor; its gradient is transposed back.
    """
    return Transpose(tuple(_one_or_many(axes)) or None)(self)


def tensor_T(self) -> Tensor:
    """The transpose (axes reversed), as ``x.T``."""
    return Transpose(None)(self)
