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
        """(Ho, Wo) for an input of height ``h`` and width ``w``: Ho = (h + 2 ph - kh) // sh + 1, likewise Wo.

        Parameters
        ----------
        h : int
            The input images' height H.
        w : int
            The input images' width W.

        Returns
        -------
        tuple of int
            (Ho, Wo), the output's height and width.
        """
        return tuple(ops.output_size(s, k, st, p) for s, k, st, p in zip((h, w), self.kernel_size, self.stride,
                                                                          self.padding))

    def extra_repr(self):
        """The window's geometry, as the layer's repr shows it.

        Returns
        -------
        str
            ``kernel_size=(kh, kw), stride=(sh, sw)``, and the padding where there is some.
        """
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return s + (f", padding={self.padding}" if any(self.padding) else "")


class MaxPool2d(_Pool2d):
    """y[n, c, i, j] = max of x[n, c] over the window at (i sh, j sw); x (N, C, H, W), no padding.

    Backward routes each window's gradient to its maximum (forward saves which tap won; the first
    one on ties): dx[n, c] at the winner of window (i, j) gets dout[n, c, i, j], the rest 0.
    Ho = (H - kh) // sh + 1, likewise Wo.

    Parameters
    ----------
    kernel_size : int or tuple of int
        The window's (kh, kw); an int k means (k, k). Each >= 1.
    stride : int or tuple of int or None, default=None
        The step (sh, sw) between windows, each >= 1; None: the kernel size (windows that
        do not overlap).

    Raises
    ------
    ValueError
        If a size is below 1.
    TypeError
        If a size is not an integer or a pair of them.

    Examples
    --------
    >>> pool = gn.nn.MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=(2, 2), stride=(2, 2))
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool.forward(x)
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    >>> pool.backward(np.ones((1, 1, 2, 2)))
    array([[[[0., 0., 0., 0.],
             [0., 1., 0., 1.],
             [0., 0., 0., 0.],
             [0., 1., 0., 1.]]]], dtype=float32)
    """

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
    """y[n, c, i, j] = mean of x[n, c] over the window at (i sh, j sw); zero ``padding`` counts in the mean.

    Backward spreads each window's gradient evenly over it: every tap of window (i, j) gets
    dout[n, c, i, j] / (kh kw). Ho = (H + 2 ph - kh) // sh + 1, likewise Wo.

    Parameters
    ----------
    kernel_size : int or tuple of int
        The window's (kh, kw); an int k means (k, k). Each >= 1.
    stride : int or tuple of int or None, default=None
        The step (sh, sw) between windows, each >= 1; None: the kernel size.
    padding : int or tuple of int, default=0
        Rows and columns of zeros (ph, pw) on each side, each at most half the kernel size.

    Raises
    ------
    ValueError
        If a size is below its minimum, or the padding is more than half the kernel size.
    TypeError
        If a size is not an integer or a pair of them.

    Examples
    --------
    >>> pool = gn.nn.AvgPool2d(2)
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool.forward(x)
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]], dtype=float32)
    >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    array([[0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25]], dtype=float32)
    >>> gn.nn.AvgPool2d(3, stride=1, padding=1).output_shape(4, 4)  # padding 1 keeps 4 x 4
    (4, 4)
    """

    def forward(self, x):
        x = check_images(self, x, None, self.kernel_size, self.padding)
        self._cache = x.shape
        return ops.avg_pool_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dout, input_grad: bool = True):
        x_shape = self._saved()
        dout = self._upstream(dout, (*x_shape[:2], *self.output_shape(*x_shape[2:])))
        return ops.avg_pool_backward(dout, x_shape, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): each channel's mean over the whole image.

    Forward ``y[n, c] = mean of x[n, c]``; backward ``dx[n, c] = dout[n, c] / (H W)`` at every pixel.
    Often the last pooling of a convolutional net, in place of :class:`~gpunn.nn.Flatten`.

    Examples
    --------
    >>> pool = gn.nn.GlobalAvgPool2d()
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> pool.forward(x)
    array([[7.5]], dtype=float32)
    >>> pool.backward(np.ones((1, 1))).shape
    (1, 1, 4, 4)
    """

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
