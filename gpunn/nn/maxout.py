"""Maxout: the largest of ``pieces`` affine functions for each output unit."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE, array_module
from ..validation import check_int
from .init import as_rng, init_std, normal_weights
from .module import Module
from .parameter import Parameter


class Maxout(Module):
    """y_j = max_k (x W_jk + b_jk) for x of shape (N, in_features); y is (N, out_features).

    W is (in_features, out_features * pieces), columns grouped unit by unit.
    The gradient flows only through the winning piece (the first one on ties): with z = x W + b,
    dz is dout at each unit's winning piece and 0 elsewhere, then dW = x^T dz, db = dz summed over
    the batch, dx = dz W^T.

    Parameters
    ----------
    in_features : int
        Input features per sample, >= 1.
    out_features : int
        Output units, >= 1.
    pieces : int, default=2
        Affine pieces per unit, >= 1 (one piece is a plain affine layer).
    init : {"he", "xavier"} or float, default="xavier"
        The weights' standard deviation, as :class:`~gpunn.nn.Linear`'s (fan-out ``out_features``).
    rng : None, int or numpy.random.Generator, default=None
        An int seed or a Generator for reproducible weights; None for fresh entropy.

    Attributes
    ----------
    W : Parameter
        The weights, (in_features, out_features * pieces).
    b : Parameter
        The biases, (out_features * pieces,).

    Raises
    ------
    ValueError
        If a size is below 1 or ``init`` is not "he", "xavier" or a positive float.
    TypeError
        If a size is not an integer, or ``rng`` is not a seed or a Generator.

    Examples
    --------
    >>> maxout = gn.nn.Maxout(3, 2, pieces=3, rng=0)
    >>> maxout
    Maxout(3, 2, pieces=3)
    >>> maxout.W.shape
    (3, 6)
    >>> maxout.forward(np.ones((4, 3))).shape
    (4, 2)
    >>> maxout.backward(np.ones((4, 2))).shape
    (4, 3)
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, init="xavier", rng=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        self.pieces = check_int("pieces", pieces, low=1)
        width = self.out_features * self.pieces
        w = normal_weights((self.in_features, width), init_std(init, self.in_features, self.out_features), as_rng(rng))
        self.W = Parameter(w.astype(DEFAULT_DTYPE))
        self.b = Parameter(np.zeros(width, DEFAULT_DTYPE), decay=False)

    def forward(self, x):
        x = self._input(x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        z = (ops.matmul(x, self.W.data) + self.b.data).reshape(x.shape[0], self.out_features, self.pieces)
        winner = z.argmax(axis=2)
        self._cache = (x, winner)
        return z.max(axis=2)

    def backward(self, dout, input_grad: bool = True):
        x, winner = self._saved()
        dout = self._upstream(dout, winner.shape)
        xp = array_module(dout)
        chosen = xp.arange(self.pieces) == winner[..., None]  # (N, out, pieces), one True per unit
        dz = (chosen * dout[..., None]).reshape(x.shape[0], -1)
        self.W.accumulate(ops.matmul(x.T, dz))
        self.b.accumulate(dz.sum(axis=0))
        return ops.matmul(dz, self.W.data.T) if input_grad else None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, pieces={self.pieces}"
