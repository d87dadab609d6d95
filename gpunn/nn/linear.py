"""Linear: the affine gate y = x W + b."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE
from ..validation import check_int
from .init import as_rng, init_std, normal_weights
from .module import Module, computes_as
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
        x = self._checked(x)
        self._cache = x
        y = ops.matmul(x, self.W.data)  # x W
        if self.b is not None:
            y += self.b.data  # + b, broadcast over the batch
        return y

    def backward(self, dout, input_grad: bool = True):
        x = self._saved()
        dout = self._upstream(dout, (x.shape[0], self.out_features))
        self.W.accumulate(ops.matmul(x.T, dout))  # dW = x^T dout
        if self.b is not None:
            self.b.accumulate(dout.sum(axis=0))  # db = dout summed over the batch
        return ops.matmul(dout, self.W.data.T) if input_grad else None  # dx = dout W^T

    # ------------------------------------------------------------------ fused with the activation after it
    def forward_fused(self, x, act):
        """``act(x W + b)`` for the activation gate that follows: the bias and f share one pass over x W.

        The result equals ``act.forward(self.forward(x))``; each gate still keeps what its own backward needs.
        """
        x = self._checked(x)
        z = ops.matmul(x, self.W.data)
        if self.b is not None:
            y = ops.bias_activation(z, self.b.data, act)  # f(z + b) in one pass; z holds z + b
        else:
            y = ops.activation(z, act)
        self._cache = x
        act._cache = y if act.backward_from == "output" else z
        return y

    def backward_fused(self, dout, act, input_grad: bool = True):
        """Backward of f(x W + b) from the gradient w.r.t. its output: dz and db in one pass, then the GEMMs."""
        x, saved = self._saved(), act._saved()
        dz, db = ops.bias_activation_backward(act._upstream(dout, saved.shape), saved, act)
        self.W.accumulate(ops.matmul(x.T, dz))
        if self.b is not None:
            self.b.accumulate(db)
        return ops.matmul(dz, self.W.data.T) if input_grad else None

    def _checked(self, x):
        x = self._input(x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        return x

    @property
    def fusable(self) -> bool:
        """True when this gate is Linear's own computation (a subclass overriding a pass runs its own code)."""
        return computes_as(self, Linear)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.b is not None else ", bias=False")
