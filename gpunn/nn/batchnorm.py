"""Batch normalisation: BatchNorm1d (per feature of (N, D)) and BatchNorm2d (per channel of NCHW images).

Both normalise each channel over every other axis of the batch, then scale and shift;
they share one implementation and differ only in the input's layout.
"""

from __future__ import annotations

import numpy as np

from ..devices import DEFAULT_DTYPE
from ..validation import arguments_of, check_int, check_number
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """y = gamma (x - mean) / sqrt(var + eps) + beta per channel (axis 1), statistics over the other axes.

    Training uses the batch's mean and (biased) variance and updates the running
    statistics: running <- (1 - momentum) running + momentum batch, with the unbiased
    variance, as PyTorch does. Evaluation uses the running statistics. In a model computing in
    mixed precision it stays float32 (as under PyTorch's autocast): float16 input is cast to float32
    on the way in, and the next layer casts the output back.
    """

    buffers = ("running_mean", "running_var")
    keeps_float32 = True  # mixed precision: float16 would lose the statistics (a variance's range and digits)
    ndim = 2
    layout = "(N, {c})"
    unit = "rows per batch"  # what the statistics are taken over, for messages

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        with arguments_of(type(self).__name__):
            self.num_features = check_int("num_features", num_features, low=1)
            self.eps = check_number("eps", eps, low=0, low_open=True)
            self.momentum = check_number("momentum", momentum, low=0, high=1)
        self.gamma = Parameter(np.ones(num_features, DEFAULT_DTYPE), decay=False)
        self.beta = Parameter(np.zeros(num_features, DEFAULT_DTYPE), decay=False)
        self.running_mean = np.zeros(num_features, DEFAULT_DTYPE)
        self.running_var = np.ones(num_features, DEFAULT_DTYPE)

    @property
    def _axes(self) -> tuple:
        return (0, *range(2, self.ndim))

    def _per_channel(self, v):
        """A (C,) vector shaped to broadcast along axis 1 of the input."""
        return v.reshape(-1, *(1,) * (self.ndim - 2))

    def forward(self, x):
        x = self._input(x)
        if x.ndim != self.ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input of shape {self.layout.format(c=self.num_features)}, "
                             f"got {tuple(x.shape)}")
        n = x.size // self.num_features  # values per channel
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r} needs at least 2 {self.unit} in training, got {n}")
            mean = x.mean(axis=self._axes)
            var = x.var(axis=self._axes)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + (m * n / (n - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / (var + self.eps) ** 0.5
        xhat = (x - self._per_channel(mean)) * self._per_channel(inv_std)
        self._cache = (xhat, inv_std, self.training)
        return self._per_channel(self.gamma.data) * xhat + self._per_channel(self.beta.data)

    def backward(self, dout, input_grad: bool = True):
        xhat, inv_std, batch_stats = self._saved()
        dout = self._upstream(dout, xhat.shape)
        axes, col = self._axes, self._per_channel
        self.gamma.accumulate((dout * xhat).sum(axis=axes))
        self.beta.accumulate(dout.sum(axis=axes))
        dxhat = dout * col(self.gamma.data)
        if not batch_stats:  # running statistics are constants: a plain per-channel scale
            return dxhat * col(inv_std)
        n = dout.size // self.num_features
        # the mean and variance depend on every value of the channel, which adds the two correction terms
        return col(inv_std / n) * (n * dxhat - col(dxhat.sum(axis=axes)) - xhat * col((dxhat * xhat).sum(axis=axes)))

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation per feature of x (N, features), statistics over the batch."""

    ndim = 2
    layout = "(N, {c})"


class BatchNorm2d(_BatchNorm):
    """Spatial batch normalisation per channel of NCHW images, statistics over N, H and W (cs231n's spatial batchnorm)."""

    ndim = 4
    layout = "(N, {c}, H, W)"
    unit = "values per channel (N H W)"
