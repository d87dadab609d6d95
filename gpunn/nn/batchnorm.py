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
    """Batch normalisation per feature of x (N, features), statistics over the batch.

    y = gamma (x - mean) / sqrt(var + eps) + beta for each feature (column). In training the mean and
    the (biased) variance are the batch's, and the running statistics are updated; in evaluation
    mode the running statistics are used, and backward is a plain per-feature scale. Backward in
    training includes the terms from the mean and variance depending on every row of the batch::

        dgamma = sum over N of dout xhat          accumulated into gamma.grad
        dbeta  = sum over N of dout               accumulated into beta.grad
        dx     = inv_std / N (N dxhat - sum(dxhat) - xhat sum(dxhat xhat)),  dxhat = dout gamma

    Parameters
    ----------
    num_features : int
        Features per row, C >= 1: the length of ``gamma``, ``beta`` and the running statistics.
    eps : float, default=1e-5
        Added to the variance before its square root, > 0.
    momentum : float, default=0.1
        The running statistics' update weight in [0, 1]: running <- (1 - momentum) running +
        momentum batch (the batch's unbiased variance for ``running_var``).

    Attributes
    ----------
    gamma : Parameter
        The per-channel scale, (C,), starting at 1; not weight-decayed.
    beta : Parameter
        The per-channel shift, (C,), starting at 0; not weight-decayed.
    running_mean : ndarray
        (C,) buffer, starting at 0: the mean evaluation mode normalises with.
    running_var : ndarray
        (C,) buffer, starting at 1: the variance evaluation mode normalises with.

    Raises
    ------
    ValueError
        If ``num_features`` is below 1, ``eps`` not above 0 or ``momentum`` outside [0, 1]. A forward
        pass raises it too for an input of another shape than (N, C), and in training for fewer
        than 2 rows.
    TypeError
        If ``num_features`` is not an integer, or ``eps`` or ``momentum`` not a number.

    Examples
    --------
    >>> bn = gn.nn.BatchNorm1d(2)
    >>> bn
    BatchNorm1d(2, eps=1e-05, momentum=0.1)
    >>> x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]])
    >>> bn.forward(x)  # each column to mean 0, variance 1
    array([[-1.2247, -1.2247],
           [ 0.    ,  0.    ],
           [ 1.2247,  1.2247]], dtype=float32)
    >>> bn.running_mean  # 0.9 * 0 + 0.1 * the batch's mean
    array([0.3, 2. ], dtype=float32)
    >>> bn.backward(np.ones_like(x))  # a shift of every row changes nothing after normalising
    array([[0., 0.],
           [0., 0.],
           [0., 0.]], dtype=float32)
    >>> bn.beta.grad
    array([3., 3.], dtype=float32)
    """

    ndim = 2
    layout = "(N, {c})"


class BatchNorm2d(_BatchNorm):
    """Spatial batch normalisation per channel of NCHW images, statistics over N, H and W (cs231n's spatial batchnorm).

    :class:`BatchNorm1d`'s computation with each channel of x (N, C, H, W) as one feature, its
    statistics taken over the N H W values of the channel; the output has the input's shape.

    Parameters
    ----------
    num_features : int
        Channels of the images, C >= 1: the length of ``gamma``, ``beta`` and the running statistics.
    eps : float, default=1e-5
        Added to the variance before its square root, > 0.
    momentum : float, default=0.1
        The running statistics' update weight in [0, 1]: running <- (1 - momentum) running +
        momentum batch (the batch's unbiased variance for ``running_var``).

    Attributes
    ----------
    gamma : Parameter
        The per-channel scale, (C,), starting at 1; not weight-decayed.
    beta : Parameter
        The per-channel shift, (C,), starting at 0; not weight-decayed.
    running_mean : ndarray
        (C,) buffer, starting at 0: the mean evaluation mode normalises with.
    running_var : ndarray
        (C,) buffer, starting at 1: the variance evaluation mode normalises with.

    Raises
    ------
    ValueError
        If ``num_features`` is below 1, ``eps`` not above 0 or ``momentum`` outside [0, 1]. A forward
        pass raises it too for an input of another shape than (N, C, H, W), and in training for fewer
        than 2 values per channel (N H W).
    TypeError
        If ``num_features`` is not an integer, or ``eps`` or ``momentum`` not a number.

    Examples
    --------
    >>> bn = gn.nn.BatchNorm2d(3)
    >>> x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 3, 5, 5))
    >>> y = bn.forward(x)
    >>> y.shape
    (4, 3, 5, 5)
    >>> bool(np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)), y.std(axis=(0, 2, 3)).round(3)
    (True, array([1., 1., 1.], dtype=float32))
    >>> bn.eval().forward(x).shape  # evaluation mode: the running statistics
    (4, 3, 5, 5)
    """

    ndim = 4
    layout = "(N, {c}, H, W)"
    unit = "values per channel (N H W)"
