"""Pooling gates over NCHW images: MaxPool2d, AvgPool2d, GlobalAvgPool2d.

Max pooling routes each window's gradient to its maximum (it caches the winning tap);
average pooling spreads it evenly over the window.
"""

from __future__ import annotations

from .. import ops
from ..validation import arguments_of
from .conv import check_images, pair
from .module import Module


class _Pool2d(Module):
    """Shared geometry: a ``kernel_size`` window moved by ``stride`` (default: the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        with arguments_of(type(self).__name__):
            self.kernel_size = pair("kernel_size", kernel_size, 1)
            self.stride = self.kernel_size if stride is None else pair("stride", stride, 1)
            self.padding = pair("padding", padding, 0)
            for k, p in zip(self.kernel_size, self.padding):
                if 2 * p > k:
                    raise ValueError(f"padding must be at most half the kernel size, got padding={self.padding} "
                                     f"for kernel_size={self.kernel_size}")

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        return tuple(ops.output_size(s, k, st, p) for s, k, st, p in zip((h, w), self.kernel_size, self.stride,
                                                                          self.padding))

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return s + (f", padding={self.padding}" if any(self.padding) else "")


class MaxPool2d(_Pool2d):
    """y[n, c, i, j] = max of x[n, c] over the window at (i sh, j sw); x (N, C, H, W), no padding."""

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)

    def forward(self, x):
        x = check_images(self, x, None, self.kernel_size)
        y, argmax = ops.max_pool_forward(x, self.kernel_size, self.stride)
        self._cache = (argmax, x.shape)
        return y

    def backward(self, dout, input_grad: bool = True):
        argmax, x_shape = self._saved()
        dout = self._upstream(dout, argmax.shape)
        return ops.max_pool_backward(dout, argmax, x_shape, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """y[n, c, i, j] = mean of x[n, c] over the window at (i sh, j sw); zero ``padding`` counts in the mean."""

    def forward(self, x):
        x = check_images(self, x, None, self.kernel_size, self.padding)
        self._cache = x.shape
        return ops.avg_pool_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dout, input_grad: bool = True):
        x_shape = self._saved()
        dout = self._upstream(dout, (*x_shape[:2], *self.output_shape(*x_shape[2:])))
        return ops.avg_pool_backward(dout, x_shape, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): each channel's mean over the whole image."""

    def forward(self, x):
        x = self._input(x)
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects images of shape (N, C, H, W), got shape {tuple(x.shape)}")
        self._cache = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout, input_grad: bool = True):
        n, c, h, w = self._saved()
        dout = self._upstream(dout, (n, c))
        share = dout * dout.dtype.type(1.0 / (h * w))
        return self.device.xp.broadcast_to(share[:, :, None, None], (n, c, h, w)).copy()
