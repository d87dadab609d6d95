"""Pooling: max pooling (forward with the winning taps, backward routing each gradient to its maximum) and
average pooling, of NCHW images, with no padding for max pooling.

Max pooling keeps each window's first maximum in row-major order, or its last NaN (a NaN in a window
makes its maximum NaN), and the tap i kw + j it came from (int32), which the backward pass routes the
gradient to, summed where windows overlap. Average pooling counts padded zeros in the average
(PyTorch's default); its kernels are the references (a few strided passes, fast enough).

The CPU kernels give each thread whole (image, channel) planes; 2x2 windows of stride 2, the common case,
have a loop of their own. The CUDA kernels run on 3-D grids (columns, rows, planes); the backward pass
*gathers*: each pixel sums the gradients of the windows that cover it and chose it, so nothing needs atomics.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module
from .checks import compute_dtype, contiguous, cpu_half, empty, same_arrays
from .im2col import output_size, window
from .launch import Kernels, run
from .op import op


@op
def max_pool_forward(x, kernel, stride):
    """(out, argmax) for max pooling x (N, C, H, W) with no padding; both (N, C, Ho, Wo).

    ``argmax`` (int32) is the winning tap i kw + j inside each window: the first maximum
    in row-major order, or the last NaN (a NaN in a window makes its maximum NaN).

    Parameters
    ----------
    x : array of shape (N, C, H, W), float16, float32 or float64 (NumPy or CuPy)
        The images.
    kernel : tuple of int
        (kh, kw), the window's height and width.
    stride : tuple of int
        (sh, sw), the steps between windows.

    Returns
    -------
    out : array of shape (N, C, Ho, Wo)
        Each window's maximum, in ``x``'s dtype; Ho = (H - kh) // sh + 1, Wo likewise.
    argmax : array of shape (N, C, Ho, Wo), int32
        The tap each maximum came from, what :func:`max_pool_backward` routes the gradient by.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, argmax = gn.ops.max_pool_forward(x, (2, 2), (2, 2))
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> argmax[0, 0]                      # the bottom-right tap, 1 * 2 + 1, of each window
    array([[3, 3],
           [3, 3]], dtype=int32)
    """
    xp = array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = output_size(x.shape[2], kh, sh), output_size(x.shape[3], kw, sw)
    out, arg = None, None
    for i in range(kh):
        for j in range(kw):
            v = x[:, :, window(i, ho, sh), window(j, wo, sw)]
            if out is None:
                out, arg = v.copy(), xp.zeros(v.shape, dtype=xp.int32)
                continue
            take = (v > out) | xp.isnan(v)
            out = xp.where(take, v, out)
            arg = xp.where(take, xp.int32(i * kw + j), arg)
    return xp.ascontiguousarray(out), xp.ascontiguousarray(arg)


@op
def max_pool_backward(dout, argmax, x_shape, kernel, stride):
    """dx of shape ``x_shape``: each window's upstream gradient routed to its maximum (summed where windows overlap).

    Parameters
    ----------
    dout : array of shape (N, C, Ho, Wo), float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to the pooled output.
    argmax : array of shape (N, C, Ho, Wo), int32
        The taps :func:`max_pool_forward` returned.
    x_shape : tuple of int
        (N, C, H, W), the shape of the pooled images.
    kernel : tuple of int
        (kh, kw), the window's height and width.
    stride : tuple of int
        (sh, sw), the steps between windows.

    Returns
    -------
    array of shape ``x_shape``
        dx, in ``dout``'s dtype: zero where no window took its maximum.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, argmax = gn.ops.max_pool_forward(x, (2, 2), (2, 2))
    >>> gn.ops.max_pool_backward(np.ones_like(out), argmax, x.shape, (2, 2), (2, 2))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]], dtype=float32)
    """
    xp = array_module(dout)
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = dout.shape[2], dout.shape[3]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, window(i, ho, sh), window(j, wo, sw)] += xp.where(argmax == i * kw + j, dout, 0)
    return dx


@op
def avg_pool_forward(x, kernel, stride, padding):
    """Average pooling of x (N, C, H, W) -> (N, C, Ho, Wo); padded zeros count in the average (PyTorch's default).

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

    Returns
    -------
    array of shape (N, C, Ho, Wo)
        Each window's mean over its kh kw taps, in ``x``'s dtype; Ho = (H + 2 ph - kh) // sh + 1, Wo likewise.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> gn.ops.avg_pool_forward(x, (2, 2), (2, 2), (0, 0))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    xp = array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_size(x.shape[2], kh, sh, ph), output_size(x.shape[3], kw, sw, pw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    out = xp.zeros((*x.shape[:2], ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += xpad[:, :, window(i, ho, sh), window(j, wo, sw)]
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


@op
def avg_pool_backward(dout, x_shape, kernel, stride, padding):
    """dx of shape ``x_shape``: each window's upstream gradient spread evenly over its kh kw taps.

    Parameters
    ----------
    dout : array of shape (N, C, Ho, Wo), float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to the pooled output.
    x_shape : tuple of int
        (N, C, H, W), the shape of the pooled images.
    kernel : tuple of int
        (kh, kw), the window's height and width.
    stride : tuple of int
        (sh, sw), the steps between windows.
    padding : tuple of int
        (ph, pw), the rows and columns of zeros on each side.

    Returns
    -------
    array of shape ``x_shape``
        dx, in ``dout``'s dtype (the shares that fell on padding are dropped).

    Examples
    --------
    >>> gn.ops.avg_pool_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2, 2), (2, 2), (2, 2), (0, 0))
    array([[[[0.25, 0.25],
             [0.25, 0.25]]]], dtype=float32)
    """
    xp = array_module(dout)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = dout.shape[2], dout.shape[3]
    share = dout * dout.dtype.type(1.0 / (kh * kw))
    dpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            dpad[:, :, window(i, ho, sh), window(j, wo, sw)] += share
    return xp.ascontiguousarray(dpad[:, :, ph:ph + h, pw:pw + w])


# --------------------------------------------------------------------------- CPU kernels

@numba.njit(parallel=True, cache=True)
def _max_pool_2x2_cpu(x, out, arg):
    """The common 2x2, stride 2 case written out on two row views: 24x faster than the general loop
    (0.28 ms against 6.8 ms for 64 x 32 planes of 32x32 float32, one thread), same results."""
    planes, ho, wo = out.shape
    for t in prange(planes):
        for oh in range(ho):
            top, bottom = x[t, 2 * oh], x[t, 2 * oh + 1]
            for ow in range(wo):
                best, k = top[2 * ow], 0
                v = top[2 * ow + 1]
                if v > best or v != v:
                    best, k = v, 1
                v = bottom[2 * ow]
                if v > best or v != v:
                    best, k = v, 2
                v = bottom[2 * ow + 1]
                if v > best or v != v:
                    best, k = v, 3
                out[t, oh, ow] = best
                arg[t, oh, ow] = k


def _window_max(x, t, oh, ow, kh, kw, sh, sw, zero):
    """(the window's first maximum, or its last NaN; the tap i kw + j it came from) for output (oh, ow) of plane t.

    Each load is widened (``zero`` + x: float16 is compared in float32, exactly): numba-cuda's float16 comparisons
    give PTX that nvJitLink refuses (ERROR_INTERNAL, seen with numba-cuda 0.30.4).
    """
    best = zero + x[t, oh * sh, ow * sw]
    k = 0
    for i in range(kh):
        for j in range(kw):
            v = zero + x[t, oh * sh + i, ow * sw + j]
            if v > best or v != v:
                best = v
                k = i * kw + j
    return best, k


window_max_scalar = numba.njit(inline="always", cache=True)(_window_max)
window_max_device = cuda.jit(device=True)(_window_max)


@numba.njit(parallel=True, cache=True)
def max_pool_cpu(x, out, arg, kh, kw, sh, sw, zero):
    """Per plane of x (N C, H, W): each window's first maximum (or last NaN) and its tap i kw + j."""
    planes, ho, wo = out.shape
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _max_pool_2x2_cpu(x, out, arg)
        return
    for t in prange(planes):
        for oh in range(ho):
            for ow in range(wo):
                out[t, oh, ow], arg[t, oh, ow] = window_max_scalar(x, t, oh, ow, kh, kw, sh, sw, zero)


@numba.njit(parallel=True, cache=True)
def max_pool_backward_cpu(g, arg, dx, kh, kw, sh, sw, zero):
    """dx (N C, H, W) = each window's gradient added at its winning tap (dx is overwritten).

    Zeroing the plane, then scattering, measured 2x faster for 2x2 windows than writing each
    window's four values (1.3 ms against 2.6 ms, 64 x 32 planes of 32x32 float32, one thread).
    """
    planes, ho, wo = g.shape
    h, w = dx.shape[1], dx.shape[2]
    for t in prange(planes):
        for a in range(h):
            for b in range(w):
                dx[t, a, b] = zero
        for oh in range(ho):
            for ow in range(wo):
                k = arg[t, oh, ow]
                dx[t, oh * sh + k // kw, ow * sw + k % kw] += g[t, oh, ow]


# --------------------------------------------------------------------------- CUDA kernels

@cuda.jit(cache=True)
def max_pool_cuda(x, out, arg, kh, kw, sh, sw, zero):
    """Per window: its first maximum (or last NaN) and its tap i kw + j; x over ow, y over oh, z over planes."""
    planes, ho, wo = out.shape
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    t = z0
    while t < planes:
        oh = y0
        while oh < ho:
            ow = x0
            while ow < wo:
                out[t, oh, ow], arg[t, oh, ow] = window_max_device(x, t, oh, ow, kh, kw, sh, sw, zero)
                ow += xs
            oh += ys
        t += zs


@cuda.jit(cache=True)
def max_pool_backward_cuda(g, arg, dx, kh, kw, sh, sw, zero):
    """Each pixel (a, b) sums the gradients of the windows that cover it and chose it.

    Windows covering row a: oh from a // sh down while the tap i = a - oh sh stays below kh; likewise ow.
    """
    planes, ho, wo = g.shape
    h, w = dx.shape[1], dx.shape[2]
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    t = z0
    while t < planes:
        a = y0
        while a < h:
            oh_last = a // sh
            b = x0
            while b < w:
                ow_last = b // sw
                acc = zero
                oh = min(oh_last, ho - 1)
                while oh >= 0 and a - oh * sh < kh:
                    i = a - oh * sh
                    ow = min(ow_last, wo - 1)
                    while ow >= 0 and b - ow * sw < kw:
                        if arg[t, oh, ow] == i * kw + b - ow * sw:
                            acc += g[t, oh, ow]
                        ow -= 1
                    oh -= 1
                dx[t, a, b] = acc
                b += xs
            a += ys
        t += zs


MAX_POOL, MAX_POOL_BACKWARD = Kernels(max_pool_cpu, max_pool_cuda), Kernels(max_pool_backward_cpu,
                                                                            max_pool_backward_cuda)


@max_pool_forward.kernel("cpu", "cuda")
def _max_pool_forward(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    if cpu_half(x):
        return NotImplemented
    x = contiguous(x)
    dt = same_arrays("max_pool_forward", x)
    out, arg = empty(x, (n * c, ho, wo), dt), empty(x, (n * c, ho, wo), np.int32)
    run(MAX_POOL, out.size, x.reshape(n * c, h, w), out, arg, kh, kw, sh, sw, compute_dtype(dt).type(0),
        grid=(n * c, ho, wo))
    return out.reshape(n, c, ho, wo), arg.reshape(n, c, ho, wo)


@max_pool_backward.kernel("cpu", "cuda")
def _max_pool_backward(dout, argmax, x_shape, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x_shape
    if cpu_half(dout):
        return NotImplemented
    dout, argmax = contiguous(dout), contiguous(argmax)
    dt = same_arrays("max_pool_backward", dout)
    if argmax.shape != dout.shape or argmax.dtype != np.int32:
        raise ValueError(f"max_pool_backward: argmax must be int32 of shape {tuple(dout.shape)}, "
                         f"got {argmax.dtype} {tuple(argmax.shape)}")
    _, _, ho, wo = dout.shape
    dx = empty(dout, (n * c, h, w), dt)
    run(MAX_POOL_BACKWARD, dx.size, dout.reshape(n * c, ho, wo), argmax.reshape(n * c, ho, wo), dx, kh, kw, sh, sw,
        compute_dtype(dt).type(0), grid=(n * c, h, w))  # float16 gradients summed in float32
    return dx.reshape(n, c, h, w)
