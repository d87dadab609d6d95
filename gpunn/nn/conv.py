"""Conv2d: the convolution gate, as a direct convolution or im2col + one GEMM.

Direct (stride 1): ``ops.conv_direct`` on the zero-padded input, with no columns matrix; on the CPU in
float32 it is a register-blocked kernel (kernels/conv_direct.py), elsewhere its im2col reference. The input
gradient is the same op on the upstream gradient padded by k - 1 - p, with the filters flipped and
transposed; the weight and bias gradients are ``ops.conv_direct_param_grads``.

x (N, C, H, W) -> y (N, F, Ho, Wo) with y[n, f] = sum_c x[n, c] (cross-correlated with) W[f, c] + b[f],
Ho = (H + 2 ph - kh) // sh + 1 (likewise Wo).

im2col (any kernel, stride, padding): each image's patches are laid out as the columns of a
(C kh kw, N Ho Wo) matrix (``ops.im2col``), so the forward pass is one GEMM, ``W.reshape(F, -1) @ cols``,
and the backward pass two more: dW = dz cols^T, dcols = W^T dz, then ``ops.col2im`` sums dcols back
onto the pixels.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE
from ..kernels.conv_direct import direct_geometry
from ..validation import arguments_of, check_int
from .activations import Identity, ReLU
from .init import as_rng, init_std, normal_weights
from .module import Module, computes_as
from .parameter import Parameter

IDENTITY = Identity()  # the epilogue's gate where no activation follows: bias and layout only

# The columns matrix of a chunk of the batch stays under this many bytes: memory is bounded for
# any batch size, and one chunk is still large enough for an efficient GEMM (bench/test_conv.py).
COLS_BYTES = 128 << 20
# "auto" runs the direct convolution where a kernel for it is registered (the CPU, float32, stride 1, outputs a
# multiple of 16 wide, padding below the kernel size), im2col elsewhere.
ALGORITHMS = ("auto", "direct", "im2col")
KEEP_BYTES = 32 << 20  # work arrays from this size are kept between calls (Conv2d._buffer)


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

    x (N, C, H, W) -> y (N, F, Ho, Wo), y[n, f] = sum over c of x[n, c] cross-correlated with
    W[f, c], + b[f]; Ho = (H + 2 ph - kh) // sh + 1, likewise Wo. With cols the (C kh kw, N Ho Wo)
    matrix of x's patches (``ops.im2col``) and W as an (F, C kh kw) matrix, the forward pass is one
    product, y = W cols + b, and the backward pass, from dout (N, F, Ho, Wo) as an (F, N Ho Wo) matrix::

        db = dout summed over n, Ho, Wo
        dW = dout cols^T              accumulated into W.grad
        dx = col2im(W^T dout)         each patch's gradient summed back onto its pixels

    Followed by an activation in a fusing :class:`~gpunn.nn.Sequential`, the bias, the activation
    and the move to NCHW share one pass (:meth:`forward_fused`).

    Parameters
    ----------
    in_channels : int
        Channels C of the input images, >= 1.
    out_channels : int
        Filters F, the output's channels, >= 1.
    kernel_size : int or tuple of int
        The filters' (kh, kw); an int k means (k, k). Each >= 1.
    stride : int or tuple of int, default=1
        The step (sh, sw) between windows; each >= 1.
    padding : int or tuple of int, default=0
        Rows and columns of zeros (ph, pw) added on each side of the image; each >= 0.
    bias : bool, default=True
        Whether to add a bias per filter; without it ``b`` is None.
    init : {"he", "xavier"} or float, default="he"
        The weights' standard deviation: "he" sqrt(2 / (in_channels kh kw)), "xavier"
        sqrt(2 / ((in_channels + out_channels) kh kw)), or a positive float.
    rng : None, int or numpy.random.Generator, default=None
        An int seed or a Generator for reproducible weights; None for fresh entropy.
    algorithm : {"auto", "direct", "im2col"}, default="auto"
        "direct" (stride 1, padding below the kernel size: no columns matrix), "im2col" (any
        geometry: one GEMM) or "auto": the direct convolution where it has a kernel (the CPU,
        float32, outputs a multiple of 16 wide), im2col elsewhere (:meth:`algorithm_for` says which).

    Attributes
    ----------
    W : Parameter
        The filters, (out_channels, in_channels, kh, kw).
    b : Parameter or None
        The biases, (out_channels,); None with ``bias=False``.

    Raises
    ------
    ValueError
        If ``algorithm`` is not one of "auto", "direct", "im2col"; if it is "direct" for a stride
        other than 1 or a padding not below the kernel size; if a size is below its minimum; or if
        ``init`` is not "he", "xavier" or a positive float.
    TypeError
        If a size is not an integer (or a pair of them), or ``rng`` is not a seed or a Generator.

    Examples
    --------
    >>> conv = gn.nn.Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
    >>> conv
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> conv.W.shape
    (8, 3, 3, 3)
    >>> x = np.zeros((2, 3, 16, 16), np.float32)
    >>> y = conv.forward(x)
    >>> y.shape  # padding 1 keeps 16 x 16
    (2, 8, 16, 16)
    >>> conv.backward(np.ones_like(y)).shape
    (2, 3, 16, 16)
    >>> conv.b.grad  # each filter's bias saw 2 x 16 x 16 ones
    array([512., 512., 512., 512., 512., 512., 512., 512.], dtype=float32)
    >>> gn.nn.Conv2d(3, 8, kernel_size=2, stride=2).output_shape(16, 16)
    (8, 8)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 init="he", rng=None, algorithm: str = "auto"):
        super().__init__()
        with arguments_of(type(self).__name__):
            self.in_channels = check_int("in_channels", in_channels, low=1)
            self.out_channels = check_int("out_channels", out_channels, low=1)
            self.kernel_size = pair("kernel_size", kernel_size, 1)
            self.stride = pair("stride", stride, 1)
            self.padding = pair("padding", padding, 0)
            if algorithm not in ALGORITHMS:
                raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
            if algorithm == "direct" and not self._direct_fits():
                raise ValueError(f"algorithm='direct' needs stride 1 and padding below the kernel size, got stride="
                                 f"{self.stride}, padding={self.padding}, kernel_size={self.kernel_size}; "
                                 "use 'im2col' or 'auto'")
            kh, kw = self.kernel_size
            std = init_std(init, self.in_channels * kh * kw, self.out_channels * kh * kw)
        self.algorithm = algorithm
        w = normal_weights((self.out_channels, self.in_channels, kh, kw), std, as_rng(rng))
        self.W = Parameter(w.astype(DEFAULT_DTYPE))
        self.b = Parameter(np.zeros(self.out_channels, DEFAULT_DTYPE), decay=False) if bias else None
        self._scratch = {}

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

    def algorithm_for(self, shape) -> str:
        """"direct" or "im2col": what this layer runs for images of ``shape`` (N, C, H, W).

        Parameters
        ----------
        shape : tuple of int
            The input's shape (N, C, H, W).

        Returns
        -------
        str
            The layer's ``algorithm`` where it is not "auto", else what "auto" picks on the layer's
            device and dtype (:func:`gpunn.ops.conv_algorithm`).
        """
        if self.algorithm != "auto":
            return self.algorithm
        return ops.conv_algorithm(self.output_shape(*shape[2:])[1], *self._geometry(), self.dtype, self.device.type)

    def _direct_fits(self) -> bool:
        return direct_geometry(*self._geometry())

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding

    def _chunks(self, x):
        """Batch slices whose columns matrices stay under ``COLS_BYTES``."""
        ho, wo = self.output_shape(*x.shape[2:])
        per_image = self.in_channels * self.kernel_size[0] * self.kernel_size[1] * ho * wo * x.itemsize
        step = max(1, COLS_BYTES // per_image)
        return [slice(lo, min(lo + step, x.shape[0])) for lo in range(0, x.shape[0], step)]

    def forward(self, x):
        return self.forward_fused(x, None)

    def backward(self, dout, input_grad: bool = True):
        return self.backward_fused(dout, None, input_grad)

    def forward_fused(self, x, act):
        """f(conv(x) + b) for the activation layer ``act`` that follows (None: no activation).

        The epilogue's backward reads the activation's output; an activation whose backward needs its input
        (GELU) runs as its own gate after the convolution. The result equals
        ``act.forward(self.forward(x))``.

        Parameters
        ----------
        x : ndarray
            The input images, (N, in_channels, H, W).
        act : Activation or None
            The activation gate that follows; None for the convolution alone (:meth:`forward`).

        Returns
        -------
        ndarray
            f(conv(x) + b), (N, out_channels, Ho, Wo), in the layer's dtype.

        Raises
        ------
        ValueError
            If ``x`` is not 4-D with ``in_channels`` channels, or is smaller than the (padded) kernel.
        """
        if act is not None and act.backward_from != "output":
            return act.forward(self.forward_fused(x, None))
        x = check_images(self, x, self.in_channels, self.kernel_size, self.padding)
        gate = IDENTITY if act is None else act
        b = None if self.b is None else self.b.data
        algorithm = self.algorithm_for(x.shape)
        if algorithm == "direct":  # the padded input is kept for backward's dW and no chunks are needed
            (y, kept), chunks = self._direct_forward(x, b, gate), None
        else:
            y = self.device.xp.empty((x.shape[0], self.out_channels, *self.output_shape(*x.shape[2:])),
                                     dtype=self.dtype)
            # in training, a single chunk's columns are kept for backward's dW; with several chunks, or after an
            # evaluation forward (where holding them would only pin memory), backward rebuilds them
            chunks = self._chunks(x)
            kept = self._im2col_forward(x, b, y, chunks, gate)
        self._cache = (x, kept, chunks, algorithm)
        if act is not None:
            act._cache = y
        return y

    def _direct_forward(self, x, b, gate):
        """(y, padded x): y = f(conv(x) + b) by the direct convolution, ReLU in its kernel, another activation after."""
        ph, pw = self.padding
        xpad = ops.pad_images(x, (ph, pw)) if ph or pw else x
        relu = type(gate) is ReLU
        y = ops.conv_direct(xpad, self.W.data, b, relu)
        return (y if relu or type(gate) is Identity else ops.activation(y, gate)), xpad

    def _im2col_forward(self, x, b, y, chunks, gate):
        """y[part] = f(W cols + b) per chunk; in training with one chunk, returns its columns (kept for dW)."""
        w2, y3 = self.W.data.reshape(self.out_channels, -1), y.reshape(*y.shape[:2], -1)
        keep = len(chunks) == 1 and self.training
        cols = None
        for part in chunks:
            cols = ops.im2col(x[part], *self._geometry(), out=self._buffer("kept" if keep else "cols",
                                                                           self._cols_shape(x[part])))
            z = ops.matmul(w2, cols, out=self._buffer("z", (self.out_channels, cols.shape[1])))
            ops.conv_bias_activation(z, b, y3[part], gate)
        return cols if keep else None

    def _cols_shape(self, x) -> tuple[int, int]:
        ho, wo = self.output_shape(*x.shape[2:])
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1], x.shape[0] * ho * wo

    def _buffer(self, name, shape):
        """A work array, kept between calls from ``KEEP_BYTES`` up.

        glibc maps every allocation above 32 MiB afresh, one page fault per 4 KiB on first touch, while
        smaller ones come back from its heap still in cache. Measured interleaved (fwd + bwd, N=64): keeping
        the large ones made 32->64 at 32x32 (75 MB of columns) 1.14x faster and the 7x7 layer of the ConvNet
        (38 MB) 1.17x, keeping the small ones made 3->32 at 32x32 (7-8 MB) 1.16x slower. Outputs (y, dx) are
        always new arrays. Kept arrays are dropped when the layer moves, and not pickled.
        """
        def new():
            return self.device.xp.empty(shape, self.dtype)

        if int(np.prod(shape)) * np.dtype(self.dtype).itemsize < KEEP_BYTES:
            return new()
        key = (name, tuple(shape), self.dtype)
        if key not in self._scratch:
            if len(self._scratch) > 32:  # the batch size keeps changing: start over
                self._scratch.clear()
            self._scratch[key] = new()
        return self._scratch[key]

    def _moved(self) -> None:
        self._scratch = {}

    def __getstate__(self):
        state = dict(vars(self))
        state["_scratch"] = {}
        return state

    def backward_fused(self, dout, act, input_grad: bool = True):
        """Backward of f(conv(x) + b): dz and db in one pass, then dW and dx by the forward pass's algorithm.

        After :meth:`forward_fused` with the same ``act``; accumulates dW and db into ``W.grad`` and
        ``b.grad``.

        Parameters
        ----------
        dout : ndarray
            The upstream gradient w.r.t. the activation's output (or the convolution's, where ``act``
            is None), (N, out_channels, Ho, Wo).
        act : Activation or None
            The activation gate passed to :meth:`forward_fused`.
        input_grad : bool, default=True
            Whether to compute the gradient w.r.t. the input (False skips it: a first layer fed
            with data needs none).

        Returns
        -------
        ndarray or None
            dx, (N, in_channels, H, W); None with ``input_grad=False``.
        """
        if act is not None and act.backward_from != "output":
            return self.backward_fused(act.backward(dout), None, input_grad)
        x, kept, chunks, algorithm = self._saved()
        n, f = x.shape[0], self.out_channels
        ho, wo = self.output_shape(*x.shape[2:])
        if act is None:
            dout, y, gate = self._upstream(dout, (n, f, ho, wo)), None, IDENTITY
        else:
            y = act._saved()
            dout, gate = act._upstream(dout, y.shape), act
        run = {"direct": self._direct_backward, "im2col": self._im2col_backward}[algorithm]
        dw, db, dx = run(x, kept, chunks, dout, y, gate, input_grad)
        self.W.accumulate(dw)
        if self.b is not None:
            self.b.accumulate(db)
        return dx

    def _im2col_backward(self, x, cols, chunks, dout, y, gate, input_grad):
        """(dW, db, dx): dz per chunk, dW += dz cols^T, dx[part] = col2im(W^T dz)."""
        n, f, xp = x.shape[0], self.out_channels, self.device.xp
        dout, y = dout.reshape(n, f, -1), None if y is None else y.reshape(n, f, -1)
        w2 = self.W.data.reshape(f, -1)
        dx = xp.empty(x.shape, dtype=self.dtype) if input_grad else None
        dw, db = None, None
        for part in chunks:
            shape = self._cols_shape(x[part])
            dz, db_part = ops.conv_bias_activation_backward(dout[part], None if y is None else y[part], gate,
                                                            out=self._buffer("dz", (f, shape[1])))
            part_cols = cols if cols is not None else ops.im2col(x[part], *self._geometry(),
                                                                 out=self._buffer("cols", shape))
            # dW^T = cols dz^T: OpenBLAS ran this orientation 1.6-1.7x faster than dz cols^T (timed interleaved:
            # 5.5 against 9.5 ms for F=64, K=288, N Ho Wo=16384)
            dw_part = ops.matmul(part_cols, dz.T).T
            dw, db = (dw_part, db_part) if dw is None else (dw + dw_part, db + db_part)
            if input_grad:
                dcols = ops.matmul(w2.T, dz, out=self._buffer("dcols", shape))
                ops.col2im(dcols, x[part].shape, *self._geometry(), out=dx[part])
        return dw.reshape(self.W.shape), db, dx  # the reshape copies: dw is a transposed view

    def _direct_backward(self, x, xpad, chunks, dout, y, gate, input_grad):
        """(dW, db, dx): dz, then dW and db by the direct kernel, and dx as the direct convolution of dz (padded by
        k - 1 - p) with the filters flipped and transposed to (C, F, kh, kw)."""
        dz = dout if y is None else ops.activation_backward(dout, y, gate)
        dw, db = ops.conv_direct_param_grads(xpad, dz, self.kernel_size)
        dx = None
        if input_grad:
            (kh, kw), (ph, pw) = self.kernel_size, self.padding
            dzpad = ops.pad_images(dz, (kh - 1 - ph, kw - 1 - pw))
            dx = ops.conv_direct(dzpad, self.W.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), None, False)
        return dw, db, dx

    @property
    def fusable(self) -> bool:
        """True when this gate is Conv2d's own computation, so ``Sequential`` may fuse the activation after it."""
        return computes_as(self, Conv2d)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}"
        s += "" if self.b is not None else ", bias=False"
        return s + ("" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}")
