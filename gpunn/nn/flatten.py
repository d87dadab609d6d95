"""Flatten: (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

from __future__ import annotations

import math

from .module import Module


class Flatten(Module):
    """Reshape each sample to a vector, e.g. CIFAR images (N, 32, 32, 3) to (N, 3072).

    Forward ``y = x.reshape(N, -1)``; backward reshapes the upstream gradient back to x's shape.
    The gate between the convolutional layers and the affine ones.

    Examples
    --------
    >>> flatten = gn.nn.Flatten()
    >>> flatten.forward(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    >>> flatten.backward(np.ones((2, 48))).shape
    (2, 3, 4, 4)
    """

    def forward(self, x):
        x = self._input(x)
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout, input_grad: bool = True):
        shape = self._saved()
        return self._upstream(dout, (shape[0], math.prod(shape[1:]))).reshape(shape)
