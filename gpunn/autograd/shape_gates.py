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
