"""Conv2d: the convolution gate, as im2col + one GEMM per batch chunk.

x (N, C, H, W) -> y (N, F, Ho, Wo) with y[n, f] = sum_c x[n, c] (cross-correlated with) W[f, c] + b[f],
Ho = (H + 2 ph - kh) // sh + 1 (likewise Wo). Each image's patches are laid out as the columns
of a (C kh kw, N Ho Wo) matrix (``ops.im2col``), so the forward pass is one GEMM,
``W.reshape(F, -1) @ cols``, and the backward pass two more:
dW = dz cols^T, dcols = W^T dz, then ``ops.col2im`` sums dcols back onto the pixels.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE
from ..validation import check_int
from .init import as_rng, init_std, normal_weights
from .module import Module, computes_as
from .parameter import Parameter

# The columns matrix of a chunk of the batch stays under this many bytes: memory is bounded for
# any batch size, and one chunk is still large enough for an efficient GEMM (bench/test_conv.py).
COLS_BYTES = 128 << 20


def pair(name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``low``, as a pair (kernel sizes, strides, padding)."""
    values = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if not isinstance(values, (tuple, list)) or len(values) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(check_int(name, v, low=low) for v in values)


def check_images(layer: Module, x, channels: int | None, kernel, padding=(0, 0)):
    """x as a 4-D (N, C, H, W) batch on ``layer``'s device with the right channels and room for the window."""
    x = layer._input(x)
    if x.ndim != 4:
        raise ValueError(f"{layer!r} expects images of shape (N, C, H, W), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer!r} expects {channels} input channels (N, {channels}, H, W), "
                         f"got shape {tuple(x.shape)}")
    h, w = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if kernel[0] > h or kernel[1] > w:
        what = "padded input" if any(padding) else "input"
        raise ValueError(f"{layer!r}: kernel {kernel[0]}x{kernel[1]} is larger than the {what} "
                         f"{h}x{w} (input shape {tuple(x.shape)})")
    return x


class Conv2d(Module):
    """2-D convolution of NCHW images: W (out_channels, in_channels, kh, kw), b (out_channels,).

    ``kernel_size``, ``stride`` and ``padding`` are ints or (height, width) pairs; padding is zeros.
    ``init``: "he" (default, fan_in = in_channels kh kw), "xavier", or a float std; ``rng`` seeds it.
    Followed by an activation in a fusing :class:`Sequential`, the bias, the activation and the
    move from the GEMM's channel-first layout to NCHW share one pass (:meth:`forward_fused`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 init="he", rng=None):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_channels = check_int("out_channels", out_channels, low=1)
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)
        kh, kw = self.kernel_size
        std = init_std(init, self.in_channels * kh * kw, self.out_channels * kh * kw)
        w = normal_weights((self.out_channels, self.in_channels, kh, kw), std, as_rng(rng))
        self.W = Parameter(w.astype(DEFAULT_DTYPE))
        self.b = Parameter(np.zeros(self.out_channels, DEFAULT_DTYPE), decay=False) if bias else None

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """(Ho, Wo) for an input of height ``h`` and width ``w``."""
        return tuple(ops.pooled_size(s, k, st, p) for s, k, st, p in zip((h, w), self.kernel_size, self.stride,
                                                                          self.padding))

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding

    def _chunks(self, x):
        """Batch slices whose columns matrix stays under ``COLS_BYTES``."""
        ho, wo = self.output_shape(*x.shape[2:])
        per_image = self.in_channels * self.kernel_size[0] * self.kernel_size[1] * ho * wo * x.itemsize
        step = max(1, COLS_BYTES // per_image)
        return [slice(lo, min(lo + step, x.shape[0])) for lo in range(0, x.shape[0], step)]

    def forward(self, x):
        return self.forward_fused(x, None)

    def backward(self, dout, input_grad: bool = True):
        return self.backward_fused(dout, None, input_grad)

    def forward_fused(self, x, act):
        """f(conv(x) + b) for the activation layer ``act`` that follows (None: no activation)."""
        x = check_images(self, x, self.in_channels, self.kernel_size, self.padding)
        n, f = x.shape[0], self.out_channels
        ho, wo = self.output_shape(*x.shape[2:])
        kind, alpha = ("identity", 0.0) if act is None else (act.kind, act.alpha)
        w2 = self.W.data.reshape(f, -1)
        b = None if self.b is None else self.b.data
        y = self.device.xp.empty((n, f, ho * wo), dtype=self.dtype)
        chunks = self._chunks(x)
        cols = None
        for part in chunks:
            cols = ops.im2col(x[part], *self._geometry())
            ops.conv_bias_activation(w2 @ cols, b, y[part], kind, alpha)
        y = y.reshape(n, f, ho, wo)
        # in training, a single chunk's columns are kept for backward's dW; with several chunks (or after an
        # evaluation forward, where holding them would only pin memory) backward rebuilds them chunk by chunk
        keep = len(chunks) == 1 and self.training
        self._cache = (x, cols if keep else None, chunks)
        if act is not None:
            act._cache = y
        return y

    def backward_fused(self, dout, act, input_grad: bool = True):
        """Backward of f(conv(x) + b): dz and db in one pass, then dW = dz cols^T and dx = col2im(W^T dz)."""
        x, cols, chunks = self._saved()
        n, f = x.shape[0], self.out_channels
        ho, wo = self.output_shape(*x.shape[2:])
        if act is None:
            dout, y, kind, alpha = self._upstream(dout, (n, f, ho, wo)), None, "identity", 0.0
        else:
            y = act._saved()
            dout, kind, alpha = act._upstream(dout, y.shape), act.kind, act.alpha
            y = y.reshape(n, f, ho * wo)
        dout = dout.reshape(n, f, ho * wo)
        w2 = self.W.data.reshape(f, -1)
        dx = self.device.xp.empty(x.shape, dtype=self.dtype) if input_grad and len(chunks) > 1 else None
        dw, db = None, None
        for part in chunks:
            dz, db_part = ops.conv_bias_activation_backward(dout[part], None if y is None else y[part], kind, alpha)
            part_cols = cols if cols is not None else ops.im2col(x[part], *self._geometry())
            # dW^T = cols dz^T: OpenBLAS ran this orientation 1.6-1.7x faster than dz cols^T (timed interleaved:
            # 5.5 against 9.5 ms for F=64, K=288, N Ho Wo=16384)
            dw_part = (part_cols @ dz.T).T
            dw, db = (dw_part, db_part) if dw is None else (dw + dw_part, db + db_part)
            if input_grad:
                dx_part = ops.col2im(w2.T @ dz, x[part].shape, *self._geometry())
                if dx is None:  # a single chunk: col2im's array is the whole gradient
                    dx = dx_part
                else:
                    dx[part] = dx_part
        self.W.accumulate(dw.reshape(self.W.shape))  # a copy: dw is a transposed view
        if self.b is not None:
            self.b.accumulate(db)
        return dx

    @property
    def fusable(self) -> bool:
        """True when this gate is Conv2d's own computation, so ``Sequential`` may fuse the activation after it."""
        return computes_as(self, Conv2d)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}"
        return s + ("" if self.b is not None else ", bias=False")
