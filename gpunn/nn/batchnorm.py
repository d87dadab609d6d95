"""BatchNorm1d: normalise each feature over the batch, then scale and shift."""

from __future__ import annotations

import numpy as np

from ..devices import DEFAULT_DTYPE
from ..validation import check_int, check_number
from .module import Module
from .parameter import Parameter


class BatchNorm1d(Module):
    """y = gamma (x - mean) / sqrt(var + eps) + beta, per feature, for x of shape (N, features).

    Training uses the batch's mean and (biased) variance and updates the running
    statistics: running <- (1 - momentum) running + momentum batch, with the unbiased
    variance, as PyTorch does. Evaluation uses the running statistics.
    """

    buffers = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = check_int("num_features", num_features, low=1)
        self.eps = check_number("eps", eps, low=0, low_open=True)
        self.momentum = check_number("momentum", momentum, low=0, high=1)
        self.gamma = Parameter(np.ones(num_features, DEFAULT_DTYPE), decay=False)
        self.beta = Parameter(np.zeros(num_features, DEFAULT_DTYPE), decay=False)
        self.running_mean = np.zeros(num_features, DEFAULT_DTYPE)
        self.running_var = np.ones(num_features, DEFAULT_DTYPE)

    def forward(self, x):
        x = self._input(x, ndim=2)
        n = x.shape[0]
        if x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.num_features}), got {tuple(x.shape)}")
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r} needs at least 2 rows per batch in training, got {n}")
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + (m * n / (n - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / (var + self.eps) ** 0.5
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std, self.training)
        return self.gamma.data * xhat + self.beta.data

    def backward(self, dout, input_grad: bool = True):
        xhat, inv_std, batch_stats = self._saved()
        dout = self._upstream(dout, xhat.shape)
        self.gamma.accumulate((dout * xhat).sum(axis=0))
        self.beta.accumulate(dout.sum(axis=0))
        dxhat = dout * self.gamma.data
        if not batch_stats:  # running statistics are constants: a plain per-feature scale
            return dxhat * inv_std
        n = dout.shape[0]
        # the mean and variance depend on every row, which adds the two correction terms
        return (inv_std / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
