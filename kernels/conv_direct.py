"""Direct convolution: no columns matrix; on the CPU in float32 (stride 1) a block of accumulators in registers.

``direct_forward_cpu`` computes y[n, f, p] = sum over (c, i, j) of xpad[n, c, oh + i, ow + j] w[f, c, i, j]
(+ b[f], then ReLU if asked) for an input ``xpad`` already zero-padded. The filters arrive packed by
:func:`pack_filters`, four at a time, so that the four weights of one tap sit side by side. Each task owns
one image and four filters, and walks the output plane 64 pixels at a time: four segments of 16, each
inside one row (Wo must be a multiple of 16). Its 4 x 4 accumulators of 16 lanes stay in registers across
the whole (c, i, j) sum; per tap it loads four input vectors and broadcasts four weights for 16 fused
multiply-adds. The same kernel gives the input gradient (a convolution of the padded upstream gradient
with the flipped, transposed filters).

``direct_param_grads_cpu`` computes dw[f, c, i, j] = sum over (n, oh, ow) of dy[n, f, oh, ow]
xpad[n, c, oh + i, ow + j], and db[f] = the sum of dy[n, f] over (n, oh, ow). Each task owns eight filters
and a share of the images. A pass takes one image (two or more where planes have under 32 segments of
16 pixels): it copies those filters' upstream gradient into one buffer, (segment, filter, lane), that
stays in L1, adding it into db's lane-wise sums on the way; then every (channel, kernel row, run of
three taps) goes over the buffer with 8 x 3 accumulators: per segment three input vectors and eight
gradient vectors for 24 fused multiply-adds. The accumulators are lane-wise partial sums, added over
the tasks and their lanes at the end.

Where the shapes do not divide evenly, the kernels compute a clamped copy and do not store it: the last
segments of a plane (forward), filters past F (weight gradient) and taps past kw (runs of three).

Measured, one thread, 32->64 channels at 16x16, N=64: forward 252 GFLOP/s, weight gradient 219 GFLOP/s
(oneDNN's forward: 234). Index arithmetic, negative-index wraparound and spilled pointers in the inner loop
cost about half of that: the loops index flat arrays from precomputed starts.

The references (and what runs elsewhere: other dtypes, devices and widths) are im2col + one GEMM.
:func:`conv_algorithm` is the one place that says which of the two a layer runs.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .arrays import array_module
from .checks import contiguous, empty, same_arrays
from .im2col import im2col
from .launch import cpu_threads
from .matmul import matmul
from .op import has_kernel, op
from .simd import LANES, vadd, vbroadcast, vfma, vload, vmax0, vstore, vzero

FILTERS = 4  # forward: filters per task (4 x 4 accumulators of 16 lanes)
SEGMENTS = 4  # forward: 16-pixel segments per step
GRAD_FILTERS = 8  # weight gradient: filters per task (8 x 3 accumulators)
TAPS = 3  # weight gradient: taps of a kernel row per pass
PASS_SEGMENTS = 32  # weight gradient: segments of dy per pass at least, from whole images


def conv_algorithm(out_width: int, kernel, stride, padding, dtype, device_type: str) -> str:
    """"direct" or "im2col": what a convolution of this geometry runs (Conv2d's ``algorithm="auto"``).

    The direct convolution where its kernel applies (stride 1, padding below the kernel size, a kernel for
    the device, float32, outputs a multiple of 16 wide), im2col + GEMM elsewhere: fastest of the two measured
    on this CPU in each case (bench/test_conv.py); on CUDA, im2col + cuBLAS until a GPU measures otherwise.

    Parameters
    ----------
    out_width : int
        The output's width Wo.
    kernel : tuple of int
        The filters' (kh, kw).
    stride : tuple of int
        (sh, sw).
    padding : tuple of int
        (ph, pw).
    dtype : numpy.dtype or type
        The arrays' dtype.
    device_type : str
        "cpu" or "cuda".

    Returns
    -------
    str
        "direct" or "im2col".

    Examples
    --------
    >>> with gn.ops.use_kernels(True):
    ...     gn.ops.conv_algorithm(16, (3, 3), (1, 1), (1, 1), np.float32, "cpu")
    'direct'
    >>> gn.ops.conv_algorithm(16, (3, 3), (2, 2), (1, 1), np.float32, "cpu")  # stride 2
    'im2col'
    """
    fits = direct_geometry(kernel, stride, padding) and has_kernel("conv_direct", device_type)
    return "direct" if fits and direct_kernel_takes(out_width, dtype) else "im2col"


def direct_geometry(kernel, stride, padding) -> bool:
    """True where the direct convolution applies at all: stride 1, padding below the kernel size.

    Parameters
    ----------
    kernel : tuple of int
        The filters' (kh, kw).
    stride : tuple of int
        (sh, sw).
    padding : tuple of int
        (ph, pw).

    Returns
    -------
    bool
        Whether the geometry suits the direct convolution.
    """
    return tuple(stride) == (1, 1) and all(p < k for p, k in zip(padding, kernel))


def direct_kernel_takes(out_width: int, dtype) -> bool:
    """True where the CPU kernel runs: float32, rows of outputs in whole 16-pixel segments.

    Parameters
    ----------
    out_width : int
        The output's width Wo.
    dtype : numpy.dtype or type
        The arrays' dtype.

    Returns
    -------
    bool
        Whether the kernel takes such outputs.
    """
    return np.dtype(dtype) == np.float32 and out_width % LANES == 0


@op
def conv_direct(xpad, w, b, relu: bool = False):
    """y (N, F, Ho, Wo) = the stride-1 correlation of xpad (N, C, H, W) with w (F, C, kh, kw), + b, ReLU if asked.

    Ho = H - kh + 1, Wo = W - kw + 1 (``xpad`` is already padded); ``b`` is (F,) or None.

    Parameters
    ----------
    xpad : ndarray
        The input images, already zero-padded, (N, C, H, W).
    w : ndarray
        The filters, (F, C, kh, kw), of ``xpad``'s dtype.
    b : ndarray or None
        The biases, (F,); None for none.
    relu : bool, default=False
        Whether to apply max(0, .) to the result.

    Returns
    -------
    ndarray
        y, (N, F, Ho, Wo), C-contiguous, of ``xpad``'s dtype.

    Examples
    --------
    >>> xpad = np.ones((1, 1, 4, 4), np.float32)
    >>> w = np.ones((2, 1, 3, 3), np.float32)
    >>> y = gn.ops.conv_direct(xpad, w, np.array([0.0, -10.0], np.float32), relu=True)
    >>> y.shape
    (1, 2, 2, 2)
    >>> y[0, :, 0, 0]  # 9 ones summed, + 0; and 9 - 10 < 0, cut by the ReLU
    array([9., 0.], dtype=float32)
    """
    xp = array_module(xpad)
    f, _, kh, kw = w.shape
    n, ho, wo = xpad.shape[0], xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1
    z = matmul(w.reshape(f, -1), im2col(xpad, (kh, kw), (1, 1), (0, 0))).reshape(f, n, ho, wo)
    if b is not None:
        z = z + b[:, None, None, None]
    if relu:
        z = xp.maximum(z, 0)  # ReLU, as its gate's rule
    return xp.ascontiguousarray(z.transpose(1, 0, 2, 3))


@op
def conv_direct_param_grads(xpad, dy, kernel):
    """(dW (F, C, kh, kw), db (F,)) of :func:`conv_direct` for the upstream gradient dy (N, F, Ho, Wo) of its output.

    dW[f, c, i, j] = sum over (n, oh, ow) of dy[n, f, oh, ow] xpad[n, c, oh + i, ow + j];
    db[f] = the sum of dy[n, f] over (n, oh, ow).

    Parameters
    ----------
    xpad : ndarray
        The padded input of the forward pass, (N, C, H, W).
    dy : ndarray
        The upstream gradient, (N, F, Ho, Wo), of ``xpad``'s dtype.
    kernel : tuple of int
        The filters' (kh, kw).

    Returns
    -------
    tuple of ndarray
        (dW, db): (F, C, kh, kw) and (F,).

    Examples
    --------
    >>> dw, db = gn.ops.conv_direct_param_grads(np.ones((1, 1, 4, 4), np.float32),
    ...                                         np.ones((1, 2, 2, 2), np.float32), (3, 3))
    >>> dw.shape, db
    ((2, 1, 3, 3), array([4., 4.], dtype=float32))
    """
    (kh, kw), f = kernel, dy.shape[1]
    cols = im2col(xpad, (kh, kw), (1, 1), (0, 0))
    d = array_module(dy).ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(f, -1)
    return matmul(d, cols.T).reshape(f, xpad.shape[1], kh, kw), d.sum(axis=1)


def pack_filters(w: np.ndarray) -> np.ndarray:
    """w (F, C, kh, kw) as (blocks, C, kh, kw, FILTERS): filter block * FILTERS + k is [block, ..., k], zeros past F.

    Parameters
    ----------
    w : numpy.ndarray
        The filters, (F, C, kh, kw).

    Returns
    -------
    numpy.ndarray
        The packed filters, (ceil(F / FILTERS), C, kh, kw, FILTERS), C-contiguous, of ``w``'s dtype.
    """
    f = w.shape[0]
    blocks = -(-f // FILTERS)
    packed = np.zeros((blocks * FILTERS,) + w.shape[1:], w.dtype)
    packed[:f] = w
    return np.ascontiguousarray(packed.reshape(blocks, FILTERS, *w.shape[1:]).transpose(0, 2, 3, 4, 1))


@numba.njit(parallel=True, cache=True)
def direct_forward_cpu(xpad, packed, b, relu, y):
    """y (N, F, Ho, Wo) = the stride-1 correlation of xpad (N, C, Ho + kh - 1, Wo + kw - 1) with the packed filters.

    ``packed`` comes from :func:`pack_filters`; ``b`` has one bias per packed filter (zeros past F).
    """
    n, c, hp, wp = xpad.shape
    blocks, _, kh, kw, _ = packed.shape
    f, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    plane = ho * wo
    last = plane - LANES  # the last segment's first pixel: later segments of a step are clamped to it
    x1, w1, y1 = xpad.reshape(-1), packed.reshape(-1), y.reshape(-1)
    per_channel = kh * kw * FILTERS
    for task in prange(n * blocks):
        img, blk = task // blocks, task % blocks
        f0 = blk * FILTERS
        for p in range(0, plane, SEGMENTS * LANES):
            s0, s1, s2, s3 = p, min(p + LANES, last), min(p + 2 * LANES, last), min(p + 3 * LANES, last)
            # where each segment's window starts in a padded input plane
            i0, i1 = (s0 // wo) * wp + s0 % wo, (s1 // wo) * wp + s1 % wo
            i2, i3 = (s2 // wo) * wp + s2 % wo, (s3 // wo) * wp + s3 % wo
            a0, b0, c0, d0 = vbroadcast(b, f0), vbroadcast(b, f0 + 1), vbroadcast(b, f0 + 2), vbroadcast(b, f0 + 3)
            a1, a2, a3 = a0, a0, a0
            b1, b2, b3 = b0, b0, b0
            c1, c2, c3 = c0, c0, c0
            d1, d2, d3 = d0, d0, d0
            for ch in range(c):
                xc = (img * c + ch) * hp * wp
                wc = (blk * c + ch) * per_channel
                for i in range(kh):
                    for j in range(kw):
                        at = xc + i * wp + j
                        v0, v1, v2, v3 = vload(x1, at + i0), vload(x1, at + i1), vload(x1, at + i2), vload(x1, at + i3)
                        tap = wc + (i * kw + j) * FILTERS
                        a0, a1, a2, a3 = _fma4(vbroadcast(w1, tap), v0, v1, v2, v3, a0, a1, a2, a3)
                        b0, b1, b2, b3 = _fma4(vbroadcast(w1, tap + 1), v0, v1, v2, v3, b0, b1, b2, b3)
                        c0, c1, c2, c3 = _fma4(vbroadcast(w1, tap + 2), v0, v1, v2, v3, c0, c1, c2, c3)
                        d0, d1, d2, d3 = _fma4(vbroadcast(w1, tap + 3), v0, v1, v2, v3, d0, d1, d2, d3)
            if relu:
                a0, a1, a2, a3 = vmax0(a0), vmax0(a1), vmax0(a2), vmax0(a3)
                b0, b1, b2, b3 = vmax0(b0), vmax0(b1), vmax0(b2), vmax0(b3)
                c0, c1, c2, c3 = vmax0(c0), vmax0(c1), vmax0(c2), vmax0(c3)
                d0, d1, d2, d3 = vmax0(d0), vmax0(d1), vmax0(d2), vmax0(d3)
            out = (img * f + f0) * plane
            _store_step(y1, out, s0, s1, s2, s3, a0, a1, a2, a3)
            if f0 + 1 < f:
                _store_step(y1, out + plane, s0, s1, s2, s3, b0, b1, b2, b3)
            if f0 + 2 < f:
                _store_step(y1, out + 2 * plane, s0, s1, s2, s3, c0, c1, c2, c3)
            if f0 + 3 < f:
                _store_step(y1, out + 3 * plane, s0, s1, s2, s3, d0, d1, d2, d3)


@numba.njit(inline="always", cache=True)
def _fma4(w, v0, v1, v2, v3, a0, a1, a2, a3):
    """(a0 + w v0, ..., a3 + w v3), each fused: one filter's weight times four segments."""
    return vfma(w, v0, a0), vfma(w, v1, a1), vfma(w, v2, a2), vfma(w, v3, a3)


@numba.njit(inline="always", cache=True)
def _store_step(y1, base, s0, s1, s2, s3, v0, v1, v2, v3):
    # clamped segments repeat s3's values, so any order of these stores leaves the same plane
    vstore(y1, base + s0, v0)
    vstore(y1, base + s1, v1)
    vstore(y1, base + s2, v2)
    vstore(y1, base + s3, v3)


@numba.njit(parallel=True, cache=True)
def direct_param_grads_cpu(xpad, dy, groups, dw, db):
    """dw (F, C, kh, kw) = sum over images and pixels of dy (N, F, Ho, Wo) times the matching xpad taps; db (F,) = the
    sum of dy over images and pixels.

    Each block of filters has ``groups`` tasks, each over every groups-th image (at most N are used).
    """
    n, c, hp, wp = xpad.shape
    f, _, kh, kw = dw.shape
    ho, wo = dy.shape[2], dy.shape[3]
    plane = ho * wo
    segments = plane // LANES
    blocks = (f + GRAD_FILTERS - 1) // GRAD_FILTERS
    runs = (kw + TAPS - 1) // TAPS
    groups = max(1, min(n, groups))
    width = GRAD_FILTERS * TAPS * LANES  # partial sums of one (channel, kernel row, run): (filter, tap, lane)
    x1, g1 = xpad.reshape(-1), dy.reshape(-1)
    # a pass over dy covers several images where planes are small (the partial sums' loads and stores
    # around each pass cost about a tenth of a 16-segment pass); task images are ``groups`` apart
    images = max(1, PASS_SEGMENTS // segments)
    window = np.empty(images * segments, np.int64)  # where each segment's window starts from its pass's first image
    for b in range(images):
        for s in range(segments):
            window[b * segments + s] = b * groups * c * hp * wp + (s * LANES // wo) * wp + (s * LANES) % wo
    bias_at = c * kh * runs * width  # each task's row: its dw partial sums, then its db ones, (filter, lane)
    # np.empty, not np.zeros: in a parallel function np.zeros is a parallel loop of its own, and
    # the callers' chunk size of 2 elements made it cost more than the whole kernel
    partials = np.empty((blocks * groups, bias_at + GRAD_FILTERS * LANES), np.float32)
    for task in prange(blocks * groups):
        blk, group = task // groups, task % groups
        f0 = blk * GRAD_FILTERS
        part = partials[task]
        for at in range(part.size):
            part[at] = 0
        g = np.empty(window.size * GRAD_FILTERS * LANES, np.float32)  # a pass's dy for these filters
        for first in range(group, n, groups * images):
            count = 0  # segments in this pass
            for img in range(first, min(n, first + groups * images), groups):
                for k in range(GRAD_FILTERS):
                    src = (img * f + min(f0 + k, f - 1)) * plane
                    total = vload(part, bias_at + k * LANES)
                    for s in range(segments):
                        t = vload(g1, src + s * LANES)
                        vstore(g, ((count + s) * GRAD_FILTERS + k) * LANES, t)
                        total = vadd(total, t)
                    vstore(part, bias_at + k * LANES, total)
                count += segments
            for ch in range(c):
                for i in range(kh):
                    row = ((first * c + ch) * hp + i) * wp
                    for run in range(runs):
                        j0 = TAPS * run
                        jb, jc = min(j0 + 1, kw - 1) - j0, min(j0 + 2, kw - 1) - j0
                        _weight_grad_run(x1, row + j0, jb, jc, window, count, g, part,
                                         ((ch * kh + i) * runs + run) * width)
    for blk in prange(blocks):
        f0 = blk * GRAD_FILTERS
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    run, tap = j // TAPS, j % TAPS
                    for k in range(min(GRAD_FILTERS, f - f0)):
                        dw[f0 + k, ch, i, j] = _task_sum(partials, blk, groups,
                                                         ((ch * kh + i) * runs + run) * width + (k * TAPS + tap) * LANES)
        for k in range(min(GRAD_FILTERS, f - f0)):
            db[f0 + k] = _task_sum(partials, blk, groups, bias_at + k * LANES)


@numba.njit(inline="always", cache=True)
def _task_sum(partials, blk, groups, at):
    """The sum of the 16 lanes from ``at`` over filter block ``blk``'s tasks."""
    total = np.float32(0)
    for group in range(groups):
        for lane in range(LANES):
            total += partials[blk * groups + group, at + lane]
    return total


@numba.njit(inline="always", cache=True)
def _weight_grad_run(x1, start, jb, jc, window, count, g, part, at):
    """part[at:at + width] += the 8 x 3 lane-wise products of a pass's ``count`` segments of dy with taps (0, jb, jc)."""
    a0, a1, a2 = vload(part, at), vload(part, at + 16), vload(part, at + 32)
    b0, b1, b2 = vload(part, at + 48), vload(part, at + 64), vload(part, at + 80)
    c0, c1, c2 = vload(part, at + 96), vload(part, at + 112), vload(part, at + 128)
    d0, d1, d2 = vload(part, at + 144), vload(part, at + 160), vload(part, at + 176)
    e0, e1, e2 = vload(part, at + 192), vload(part, at + 208), vload(part, at + 224)
    h0, h1, h2 = vload(part, at + 240), vload(part, at + 256), vload(part, at + 272)
    k0, k1, k2 = vload(part, at + 288), vload(part, at + 304), vload(part, at + 320)
    m0, m1, m2 = vload(part, at + 336), vload(part, at + 352), vload(part, at + 368)
    for s in range(count):
        q = start + window[s]
        xa, xb, xc = vload(x1, q), vload(x1, q + jb), vload(x1, q + jc)
        gs = s * GRAD_FILTERS * LANES
        a0, a1, a2 = _fma3(vload(g, gs), xa, xb, xc, a0, a1, a2)
        b0, b1, b2 = _fma3(vload(g, gs + 16), xa, xb, xc, b0, b1, b2)
        c0, c1, c2 = _fma3(vload(g, gs + 32), xa, xb, xc, c0, c1, c2)
        d0, d1, d2 = _fma3(vload(g, gs + 48), xa, xb, xc, d0, d1, d2)
        e0, e1, e2 = _fma3(vload(g, gs + 64), xa, xb, xc, e0, e1, e2)
        h0, h1, h2 = _fma3(vload(g, gs + 80), xa, xb, xc, h0, h1, h2)
        k0, k1, k2 = _fma3(vload(g, gs + 96), xa, xb, xc, k0, k1, k2)
        m0, m1, m2 = _fma3(vload(g, gs + 112), xa, xb, xc, m0, m1, m2)
    vstore(part, at, a0), vstore(part, at + 16, a1), vstore(part, at + 32, a2)
    vstore(part, at + 48, b0), vstore(part, at + 64, b1), vstore(part, at + 80, b2)
    vstore(part, at + 96, c0), vstore(part, at + 112, c1), vstore(part, at + 128, c2)
    vstore(part, at + 144, d0), vstore(part, at + 160, d1), vstore(part, at + 176, d2)
    vstore(part, at + 192, e0), vstore(part, at + 208, e1), vstore(part, at + 224, e2)
    vstore(part, at + 240, h0), vstore(part, at + 256, h1), vstore(part, at + 272, h2)
    vstore(part, at + 288, k0), vstore(part, at + 304, k1), vstore(part, at + 320, k2)
    vstore(part, at + 336, m0), vstore(part, at + 352, m1), vstore(part, at + 368, m2)


@numba.njit(inline="always", cache=True)
def _fma3(g, xa, xb, xc, a0, a1, a2):
    """(a0 + g xa, a1 + g xb, a2 + g xc), each fused: one filter's gradient times three taps."""
    return vfma(g, xa, a0), vfma(g, xb, a1), vfma(g, xc, a2)


# --------------------------------------------------------------------------- bindings (CPU, float32)
# The direct kernels hand out their tasks two at a time as threads free up (not in two fixed halves): after
# a GEMM, one of NumPy's OpenBLAS threads keeps spinning on a core, and with fixed halves the Numba thread
# sharing it held the whole kernel up (ConvNet training step: 22.9 ms with fixed halves, 16.7 ms so).
DIRECT_CHUNK = 2


@conv_direct.kernel("cpu")
def _conv_direct(xpad, w, b, relu=False):
    f, _, kh, kw = w.shape
    if not direct_kernel_takes(xpad.shape[3] - kw + 1, xpad.dtype):
        return NotImplemented
    xpad = contiguous(xpad)
    dt = same_arrays("conv_direct", xpad)
    if w.ndim != 4 or w.shape[1] != xpad.shape[1] or w.dtype != dt:
        raise ValueError(f"conv_direct: w must be {dt} (F, {xpad.shape[1]}, kh, kw), got {w.dtype} {tuple(w.shape)}")
    if b is not None and (b.shape != (f,) or b.dtype != dt):
        raise ValueError(f"conv_direct: b must be {dt} ({f},), got {b.dtype} {tuple(b.shape)}")
    packed = pack_filters(w)
    bias = np.zeros(packed.shape[0] * FILTERS, dt)
    if b is not None:
        bias[:f] = b
    y = empty(xpad, (xpad.shape[0], f, xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1), dt)
    # threads by multiply-adds, not elements: each output element costs C kh kw of them
    with numba.parallel_chunksize(DIRECT_CHUNK), cpu_threads(y.size * w[0].size):
        direct_forward_cpu(xpad, packed, bias, bool(relu), y)
    return y


@conv_direct_param_grads.kernel("cpu")
def _conv_direct_param_grads(xpad, dy, kernel):
    (kh, kw), (n, f, ho, wo) = kernel, dy.shape
    if not direct_kernel_takes(wo, xpad.dtype):
        return NotImplemented
    xpad, dy = contiguous(xpad), contiguous(dy)
    dt = same_arrays("conv_direct_param_grads", xpad)
    if dy.dtype != dt or (n, ho, wo) != (xpad.shape[0], xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1):
        raise ValueError(f"conv_direct_param_grads: dy must be {dt} (N, F, Ho, Wo) for images {tuple(xpad.shape)} "
                         f"and a kernel of {kh}x{kw}, got {dy.dtype} {tuple(dy.shape)}")
    dw, db = empty(xpad, (f, xpad.shape[1], kh, kw), dt), empty(xpad, (f,), dt)
    # two tasks per thread at least: the images are shared out where there are fewer filter blocks than that
    blocks = -(-f // GRAD_FILTERS)
    groups = -(-2 * numba.config.NUMBA_NUM_THREADS // blocks)
    with numba.parallel_chunksize(DIRECT_CHUNK), cpu_threads(dy.size * dw[0].size):
        direct_param_grads_cpu(xpad, dy, groups, dw, db)
    return dw, db
