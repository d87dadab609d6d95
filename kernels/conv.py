"""Convolution and pooling kernels: im2col / col2im, the convolution's epilogue, max pooling.

Layouts follow :mod:`gpunn.ops`: images NCHW; the columns matrix is (C kh kw, N Ho Wo),
rows ordered (c, i, j) and columns (n, ho, wo). CPU kernels (``numba.njit(parallel=True)``)
give each thread whole (image, channel) planes, so no two threads write the same element
and col2im / max-pool backward need no atomics; their inner loops run along a row with
the bounds of the zero padding worked out first, so the copy loops have no branches.
CUDA kernels give one thread per output element (grid-stride loops) and *gather*: col2im
and max-pool backward visit, for each input pixel, the windows that cover it.
"""

from __future__ import annotations

import numba
from numba import cuda, prange

from .activations import IDENTITY, RELU, backward_device, backward_scalar, forward_device, forward_scalar


@numba.njit(inline="always", cache=True)
def _valid_range(j, stride, pad, size, count):
    """Outputs o in [lo, hi) whose tap o * stride - pad + j falls inside [0, size); the rest read padding."""
    lo = max(0, (pad - j + stride - 1) // stride)
    hi = min(count, (size - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)


# --------------------------------------------------------------------------- CPU: numba.njit(parallel=True)

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


@numba.njit(inline="always", cache=True)
def bias_activation_row(src, dst, count, bias, kind, a, zero, half):
    """dst[:count] = f(src[:count] + bias); ReLU and identity get loops of their own, which vectorise."""
    if kind == RELU:
        for p in range(count):
            dst[p] = forward_scalar(RELU, src[p] + bias, a, zero, half)
    elif kind == IDENTITY:
        for p in range(count):
            dst[p] = src[p] + bias
    else:
        for p in range(count):
            dst[p] = forward_scalar(kind, src[p] + bias, a, zero, half)


@numba.njit(inline="always", cache=True)
def activation_grad_row(g, y, d, count, kind, a, zero, half):
    """d[:count] = g f'(y), the upstream gradient through the activation; returns the sum of d[:count]."""
    if kind == RELU:
        for p in range(count):
            d[p] = backward_scalar(RELU, g[p], y[p], a, zero, half)
    elif kind == IDENTITY:
        for p in range(count):
            d[p] = g[p]
    else:
        for p in range(count):
            d[p] = backward_scalar(kind, g[p], y[p], a, zero, half)
    acc = zero
    for p in range(count):
        acc += d[p]
    return acc


@numba.njit(parallel=True, cache=True)
def epilogue_cpu(z, b, out, has_bias, kind, a, zero, half):
    """out[n, f, p] = f(z[f, n P + p] + b[f]): bias, activation and the move to NCHW in one pass.

    Each task copies one image's row of z into one (image, channel) plane through 1-D views, and ReLU
    and identity get loops of their own: written with 3-D indexing and ``kind`` decided inside the
    loop, the ReLU epilogue took 9.4 ms for 64 x 64 planes of 32x32 float32 on one thread; so, 0.9 ms.
    """
    n, f, plane = out.shape
    for t in prange(n * f):
        img, ch = t // f, t % f
        bias = b[ch] if has_bias else zero
        bias_activation_row(z[ch, img * plane:(img + 1) * plane], out[img, ch], plane, bias, kind, a, zero, half)


# reassoc lets the bias gradient's sum vectorise (4x faster: 2.8 ms against 11.1 ms for the
# shapes above); it changes only the order of that sum, as any parallel reduction does.
@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "nsz"})
def epilogue_backward_cpu(g, y, dz, db, kind, a, zero, half):
    """dz[f, n P + p] = g[n, f, p] f'(y[n, f, p]) and db[f] = sum of dz[f], one channel per task."""
    n, f, plane = g.shape
    for ch in prange(f):
        acc = zero
        for img in range(n):
            acc += activation_grad_row(g[img, ch], y[img, ch], dz[ch, img * plane:(img + 1) * plane], plane, kind,
                                       a, zero, half)
        db[ch] = acc


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


def _window_max(x, t, oh, ow, kh, kw, sh, sw):
    """(the window's first maximum, or its last NaN; the tap i kw + j it came from) for output (oh, ow) of plane t."""
    best = x[t, oh * sh, ow * sw]
    k = 0
    for i in range(kh):
        for j in range(kw):
            v = x[t, oh * sh + i, ow * sw + j]
            if v > best or v != v:
                best = v
                k = i * kw + j
    return best, k


window_max_scalar = numba.njit(inline="always", cache=True)(_window_max)
window_max_device = cuda.jit(device=True)(_window_max)


@numba.njit(parallel=True, cache=True)
def max_pool_cpu(x, out, arg, kh, kw, sh, sw):
    """Per plane of x (N C, H, W): each window's first maximum (or last NaN) and its tap i kw + j."""
    planes, ho, wo = out.shape
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _max_pool_2x2_cpu(x, out, arg)
        return
    for t in prange(planes):
        for oh in range(ho):
            for ow in range(wo):
                out[t, oh, ow], arg[t, oh, ow] = window_max_scalar(x, t, oh, ow, kh, kw, sh, sw)


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


# --------------------------------------------------------------------------- CUDA: numba.cuda.jit
# 3-D grids (Target.run_3d): x over an image row's pixels, y over rows, z over channels (or the columns
# matrix's rows); the images run in a loop inside. Every loop is a grid-stride ``while``, so any grid covers
# any size, and an element's indices come from the grid, not from dividing a flat index: a 64-bit division
# costs a GPU about a hundred instructions. What division there is happens once per row, outside the loops
# over pixels and images.

@cuda.jit
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


@cuda.jit
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


@cuda.jit
def epilogue_cuda(z, b, out, has_bias, kind, a, zero, half):
    """out[img, ch, p] = f(z[ch, img P + p] + b[ch]): x over p, y over images, z over channels."""
    n, f, plane = out.shape
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    ch = z0
    while ch < f:
        bias = b[ch] if has_bias else zero
        img = y0
        while img < n:
            p = x0
            while p < plane:
                out[img, ch, p] = forward_device(kind, z[ch, img * plane + p] + bias, a, zero, half)
                p += xs
            img += ys
        ch += zs


@cuda.jit
def epilogue_backward_cuda(g, y, dz, db, kind, a, zero, half):
    """dz[ch, img P + p] = g f'(y) at [img, ch, p] (``db`` is unused: the binding sums dz's rows with CuPy)."""
    n, f, plane = g.shape
    x0, y0, z0 = cuda.grid(3)
    xs, ys, zs = cuda.gridsize(3)
    ch = z0
    while ch < f:
        img = y0
        while img < n:
            p = x0
            while p < plane:
                dz[ch, img * plane + p] = backward_device(kind, g[img, ch, p], y[img, ch, p], a, zero, half)
                p += xs
            img += ys
        ch += zs


@cuda.jit
def max_pool_cuda(x, out, arg, kh, kw, sh, sw):
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
                out[t, oh, ow], arg[t, oh, ow] = window_max_device(x, t, oh, ow, kh, kw, sh, sw)
                ow += xs
            oh += ys
        t += zs


@cuda.jit
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
