"""im2col and col2im: a convolution as one matrix product, and the product's gradient back onto the pixels.

Layouts: images NCHW; the columns matrix is (C kh kw, N Ho Wo), rows ordered (c, i, j) and columns
(n, ho, wo). Row (c, i, j), column (n, ho, wo) holds x[n, c, ho sh - ph + i, wo sw - pw + j], 0
outside x, so ``W.reshape(F, -1) @ cols`` is the convolution. Geometry arguments are pairs: kernel
(kh, kw), stride (sh, sw), padding (ph, pw).

The CPU kernels give each thread whole (image, channel) planes, so no two threads write the same
element and col2im needs no atomics; their inner loops run along a row with the bounds of the zero
padding worked out first, so the copy loops have no branches. The CUDA kernels run on 3-D grids (pixels
of a row, rows, channels or rows of the columns matrix) with the images in a loop inside; col2im
*gathers*: each pixel visits the taps that read it. Every CUDA loop is a grid-stride ``while``, and an
element's indices come from the grid, not from dividing a flat index (a 64-bit division costs a GPU
about a hundred instructions); what division there is happens once per row.
"""

from __future__ import annotations

import numba
from numba import cuda, prange

from .arrays import array_module
from .checks import compute_dtype, contiguous, cpu_half, into, out_array, same_arrays
from .launch import Kernels, run
from .op import op


def output_size(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """Output length of a window of ``kernel`` sliding by ``stride`` over ``size`` + 2 ``pad`` values.

    Parameters
    ----------
    size : int
        The input's length along the axis (H or W).
    kernel : int
        The window's length.
    stride : int
        The step between windows, >= 1.
    pad : int, default=0
        Zeros added at each end.

    Returns
    -------
    int
        ``(size + 2 pad - kernel) // stride + 1``: the number of whole windows.

    Examples
    --------
    >>> gn.ops.output_size(32, 3, 1, 1), gn.ops.output_size(7, 2, 2)
    (32, 3)
    """
    return (size + 2 * pad - kernel) // stride + 1


def window(offset: int, count: int, stride: int) -> slice:
    """The ``count`` positions ``offset``, ``offset + stride``, ...: one kernel tap over every output."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


@op(size=lambda x, kernel, stride, padding, out=None: x.shape[0] * x.shape[1] * kernel[0] * kernel[1] * output_size(
    x.shape[2], kernel[0], stride[0], padding[0]) * output_size(x.shape[3], kernel[1], stride[1], padding[1]))
def im2col(x, kernel, stride, padding, out=None):
    """Patches of x (N, C, H, W) as columns: (C kh kw, N Ho Wo), rows ordered (c, i, j), columns (n, ho, wo).

    The reference copies one strided slice per kernel tap (kh kw copies).

    Parameters
    ----------
    x : array of shape (N, C, H, W), float16, float32 or float64 (NumPy or CuPy)
        The images.
    kernel : tuple of int
        (kh, kw), the window's height and width.
    stride : tuple of int
        (sh, sw), the steps between windows.
    padding : tuple of int
        (ph, pw), the rows and columns of zeros on each side.
    out : array of shape (C kh kw, N Ho Wo) or None, default=None
        A C-contiguous array of ``x``'s dtype to write into (and return); None: a new one.

    Returns
    -------
    array of shape (C kh kw, N Ho Wo)
        The patches, in ``x``'s dtype: column (n, ho, wo) holds the window at output pixel (ho, wo) of image n.

    Raises
    ------
    ValueError
        If ``out`` does not have that shape and dtype (or, where a kernel runs, is not C-contiguous on
        ``x``'s device).

    Examples
    --------
    >>> x = np.ones((2, 3, 5, 5), np.float32)
    >>> gn.ops.im2col(x, (3, 3), (1, 1), (1, 1)).shape      # 3 * 3 * 3 rows, 2 * 5 * 5 columns
    (27, 50)
    """
    xp = array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, window(i, ho, sh), window(j, wo, sw)].transpose(1, 0, 2, 3)
    return into(out, cols.reshape(c * kh * kw, n * ho * wo))


@op(size=lambda cols, *args, **kwargs: cols.size)
def col2im(cols, x_shape, kernel, stride, padding, out=None):
    """The adjoint of :func:`im2col`: sums each column entry back onto the pixel it was copied from.

    Parameters
    ----------
    cols : array of shape (C kh kw, N Ho Wo), float16, float32 or float64 (NumPy or CuPy)
        Values laid out as :func:`im2col` lays out patches (the gradient with respect to its output).
    x_shape : tuple of int
        (N, C, H, W), the images' shape.
    kernel : tuple of int
        (kh, kw), the window's height and width.
    stride : tuple of int
        (sh, sw), the steps between windows.
    padding : tuple of int
        (ph, pw), the rows and columns of zeros on each side.
    out : array of shape ``x_shape`` or None, default=None
        A C-contiguous array of ``cols``'s dtype to write into (and return); None: a new one.

    Returns
    -------
    array of shape ``x_shape``
        Each pixel's sum of the entries copied from it, in ``cols``'s dtype (entries on padding dropped).

    Raises
    ------
    ValueError
        If ``out`` does not have that shape and dtype (or, where a kernel runs, is not C-contiguous on
        ``cols``'s device).

    Examples
    --------
    >>> x = np.ones((1, 1, 3, 3), np.float32)
    >>> cols = gn.ops.im2col(x, (2, 2), (1, 1), (0, 0))
    >>> gn.ops.col2im(cols, x.shape, (2, 2), (1, 1), (0, 0))[0, 0]   # how many windows hold each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    xp = array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    dpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dpad[:, :, window(i, ho, sh), window(j, wo, sw)] += c6[:, i, j].transpose(1, 0, 2, 3)
    return into(out, xp.ascontiguousarray(dpad[:, :, ph:ph + h, pw:pw + w]))


# --------------------------------------------------------------------------- CPU kernels

@numba.njit(inline="always", cache=True)
def _valid_range(j, stride, pad, size, count):
    """Outputs o in [lo, hi) whose tap o * stride - pad + j falls inside [0, size); the rest read padding."""
    lo = max(0, (pad - j + stride - 1) // stride)
    hi = min(count, (size - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)


@numba.njit(parallel=True, cache=True)
def im2col_cpu(x, cols, kh, kw, sh, sw, ph, pw, ho, wo, zero):
    """cols[(c, i, j), (n, oh, ow)] = x[n, c, oh sh - ph + i, ow sw - pw + j] (0 outside x)."""
    n, c, h, w = x.shape
    plane = ho * wo
    for t in prange(n * c):
        img, ch = t // c, t % c
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(i, sh, ph, h, ho)
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                ow_lo, ow_hi = _valid_range(j, sw, pw, w, wo)
                for oh in range(ho):
                    dst = img * plane + oh * wo
                    if oh < oh_lo or oh >= oh_hi:
                        for ow in range(wo):
                            cols[row, dst + ow] = zero
                        continue
                    src = oh * sh - ph + i
                    for ow in range(ow_lo):
                        cols[row, dst + ow] = zero
                    if sw == 1:  # a contiguous run: a plain copy the compiler vectorises
                        cols[row, dst + ow_lo:dst + ow_hi] = x[img, ch, src, ow_lo - pw + j:ow_hi - pw + j]
                    else:
                        for ow in range(ow_lo, ow_hi):
                            cols[row, dst + ow] = x[img, ch, src, ow * sw - pw + j]
                    for ow in range(ow_hi, wo):
                        cols[row, dst + ow] = zero


@numba.njit(parallel=True, cache=True)
def col2im_cpu(cols, dx, kh, kw, sh, sw, ph, pw, ho, wo, zero):
    """dx[n, c] = sum of the column entries im2col copied from each pixel (dx is overwritten)."""
    n, c, h, w = dx.shape
    plane = ho * wo
    for t in prange(n * c):
        img, ch = t // c, t % c
        for a in range(h):
            for b in range(w):
                dx[img, ch, a, b] = zero
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(i, sh, ph, h, ho)
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                ow_lo, ow_hi = _valid_range(j, sw, pw, w, wo)
                for oh in range(oh_lo, oh_hi):
                    src = img * plane + oh * wo
                    dst = oh * sh - ph + i
                    for ow in range(ow_lo, ow_hi):
                        dx[img, ch, dst, ow * sw - pw + j] += cols[row, src + ow]


# --------------------------------------------------------------------------- CUDA kernels

@cuda.jit(cache=True)
def im2col_cuda(x, cols, kh, kw, sh, sw, ph, pw, ho, wo, zero):
    """cols[(c kh + i) kw + j, (n Ho + oh) Wo + ow] = x[n, c, oh sh - ph + i, ow sw - pw + j], 0 in the padding."""
    n, c, h, w = x.shape
    plane = ho * wo
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    row = z0
    while row < cols.shape[0]:
        ch, tap = row // (kh * kw), row % (kh * kw)
        i, j = tap // kw, tap % kw
        oh = y0
        while oh < ho:
            a = oh * sh - ph + i
            ow = x0
            while ow < wo:
                b = ow * sw - pw + j
                inside = 0 <= a < h and 0 <= b < w
                for img in range(n):
                    cols[row, img * plane + oh * wo + ow] = x[img, ch, a, b] if inside else zero
                ow += xs
            oh += ys
        row += zs


@cuda.jit(cache=True)
def col2im_cuda(cols, dx, kh, kw, sh, sw, ph, pw, ho, wo, zero):
    """Each pixel (a, b) gathers what the columns took from it: taps i = a + ph - oh sh, j = b + pw - ow sw.

    The taps of a pixel step by the stride from the first one: i0 = (a + ph) mod sh at output row
    oh0 = (a + ph) // sh, then i0 + sh at oh0 - 1, and so on; likewise along the row.
    """
    n, c, h, w = dx.shape
    plane = ho * wo
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    ch = z0
    while ch < c:
        a = y0
        while a < h:
            i0, oh0 = (a + ph) % sh, (a + ph) // sh
            b = x0
            while b < w:
                j0, ow0 = (b + pw) % sw, (b + pw) // sw
                for img in range(n):
                    acc = zero
                    i, oh = i0, oh0
                    while i < kh:
                        if 0 <= oh < ho:
                            j, ow = j0, ow0
                            while j < kw:
                                if 0 <= ow < wo:
                                    acc += cols[(ch * kh + i) * kw + j, img * plane + oh * wo + ow]
                                j += sw
                                ow -= 1
                        i += sh
                        oh -= 1
                    dx[img, ch, a, b] = acc
                b += xs
            a += ys
        ch += zs


IM2COL, COL2IM = Kernels(im2col_cpu, im2col_cuda), Kernels(col2im_cpu, col2im_cuda)


@im2col.kernel("cpu", "cuda")
def _im2col(x, kernel, stride, padding, out=None):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if cpu_half(x):
        return NotImplemented
    x = contiguous(x)
    dt = same_arrays("im2col", x)
    cols = out_array(out, x, (c * kh * kw, n * ho * wo), dt, "im2col")
    run(IM2COL, cols.size, x, cols, kh, kw, sh, sw, ph, pw, ho, wo, compute_dtype(dt).type(0),
        grid=(cols.shape[0], ho, wo))
    return cols


@col2im.kernel("cpu", "cuda")
def _col2im(cols, x_shape, kernel, stride, padding, out=None):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if cpu_half(cols):
        return NotImplemented
    cols = contiguous(cols)
    dt = same_arrays("col2im", cols)
    if cols.shape != (c * kh * kw, n * ho * wo):
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected {(c * kh * kw, n * ho * wo)} "
                         f"for images {tuple(x_shape)}")
    dx = out_array(out, cols, tuple(x_shape), dt, "col2im")
    # float16 columns are summed in float32 (the zero's dtype), each pixel rounded once
    run(COL2IM, cols.size, cols, dx, kh, kw, sh, sw, ph, pw, ho, wo, compute_dtype(dt).type(0), grid=(c, h, w))
    return dx
