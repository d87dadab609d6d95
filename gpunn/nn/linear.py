"""Linear: the affine gate y = x W + b."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE
from ..validation import check_int
from .init import as_rng, init_std, normal_weights
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = x W + b for x of shape (N, in_features); W is (in_features, out_features), b is (out_features,).

    ``init``: "he" (default, for ReLU nets), "xavier", or a float standard deviation.
    ``rng``: an int seed or ``numpy.random.Generator`` for reproducible weights. Biases start at 0.
    """

    def __init__(self, in_features: int, out_features: int, init="he", bias: bool = True, rng=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        std = init_std(init, self.in_features, self.out_features)
        w = normal_weights((self.in_features, self.out_features), std, as_rng(rng))
        self.W = Parameter(w.astype(DEFAULT_DTYPE))
        self.b = Parameter(np.zeros(self.out_features, DEFAULT_DTYPE), decay=False) if bias else None

    def forward(self, x):
        x = self._input(x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        z = x @ self.W.data
        y = z if self.b is None else ops.bias_activation(z, self.b.data, "identity")
        self._cache = x
        return y

    def backward(self, dout, input_grad: bool = True):
        x = self._saved()
        dout = self._upstream(dout, (x.shape[0], self.out_features))
        self.W.accumulate(x.T @ dout)
        if self.b is not None:
            self.b.accumulate(dout.sum(axis=0))
        return dout @ self.W.data.T if input_grad else None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.b is not None else ", bias=False")
