"""Direct convolution on the CPU, float32, stride 1: no columns matrix, a block of accumulators in registers.

``direct_forward_cpu`` computes y[n, f, p] = sum over (c, i, j) of xp[n, c, oh + i, ow + j] w[f, c, i, j]
(+ b[f], then ReLU if asked) for an input ``xp`` already zero-padded. Each task owns one image and
four output channels, and walks the output plane 32 pixels at a time (two segments of 16, each inside
one row: Wo must be a multiple of 16); its 4 x 2 accumulators of 16 lanes stay in registers across
the whole (c, i, j) sum, each input vector is loaded once for four filters and each weight once for
32 pixels. The same kernel gives the input gradient (a convolution of the padded upstream gradient
with the flipped, transposed filters).

``direct_weight_grad_cpu`` computes dw[f, c, i, j] = sum over (n, oh, ow) of dy[n, f, oh, ow]
xp[n, c, oh + i, ow + j]: each task owns four filters; for each image it keeps those filters'
upstream gradient in L1 while every (channel, kernel row, three taps) passes over it with 4 x 3
accumulators, added into lane-wise partial sums whose lanes are summed at the end.
Filter counts that are not multiples of four, and kernel rows that are not multiples of three,
compute a clamped copy of the last filter or tap and do not store it.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .simd import LANES, vfma, vload, vmax0, vsplat, vstore, vsum, vzero

FILTERS = 4  # filters per task: 4 x 2 (forward) or 4 x 3 (weight gradient) accumulators of 16 lanes
SEGMENT = 2 * LANES  # output pixels per step of the forward kernel


@numba.njit(parallel=True, cache=True)
def direct_forward_cpu(xp, w, b, has_bias, relu, y):
    """y (N, F, Ho, Wo) = the stride-1 correlation of xp (N, C, Ho + kh - 1, Wo + kw - 1) with w (F, C, kh, kw)."""
    n, c, hp, wp = xp.shape
    f, _, kh, kw = w.shape
    ho, wo = y.shape[2], y.shape[3]
    plane = ho * wo
    blocks = (f + FILTERS - 1) // FILTERS
    x1, w1, y1 = xp.reshape(-1), w.reshape(-1), y.reshape(-1)
    kk = kh * kw
    taps = c * kk
    offsets = np.empty(kk, np.int64)  # tap (i, j) of a window is this far from its top-left input element
    for k in range(kk):
        offsets[k] = (k // kw) * wp + k % kw
    for task in prange(n * blocks):
        img, f0 = task // blocks, (task % blocks) * FILTERS
        fa, fb, fc, fd = f0, min(f0 + 1, f - 1), min(f0 + 2, f - 1), min(f0 + 3, f - 1)
        for p in range(0, plane, SEGMENT):
            q = min(p + LANES, plane - LANES)  # the second segment (a copy of the first at a plane's odd end)
            oh0, ow0, oh1, ow1 = p // wo, p % wo, q // wo, q % wo
            if has_bias:
                a0, b0, c0, d0 = vsplat(b[fa]), vsplat(b[fb]), vsplat(b[fc]), vsplat(b[fd])
            else:
                a0, b0, c0, d0 = vzero(), vzero(), vzero(), vzero()
            a1, b1, c1, d1 = a0, b0, c0, d0
            for ch in range(c):
                at0 = ((img * c + ch) * hp + oh0) * wp + ow0
                at1 = ((img * c + ch) * hp + oh1) * wp + ow1
                for k in range(kk):
                    v0, v1 = vload(x1, at0 + offsets[k]), vload(x1, at1 + offsets[k])
                    t = ch * kk + k
                    wa, wb = vsplat(w1[fa * taps + t]), vsplat(w1[fb * taps + t])
                    wc, wd = vsplat(w1[fc * taps + t]), vsplat(w1[fd * taps + t])
                    a0, a1 = vfma(wa, v0, a0), vfma(wa, v1, a1)
                    b0, b1 = vfma(wb, v0, b0), vfma(wb, v1, b1)
                    c0, c1 = vfma(wc, v0, c0), vfma(wc, v1, c1)
                    d0, d1 = vfma(wd, v0, d0), vfma(wd, v1, d1)
            if relu:
                a0, a1, b0, b1, c0, c1, d0, d1 = (vmax0(a0), vmax0(a1), vmax0(b0), vmax0(b1), vmax0(c0),
                                                  vmax0(c1), vmax0(d0), vmax0(d1))
            out = (img * f + f0) * plane
            _store_pair(y1, out, p, q, a0, a1)
            if f0 + 1 < f:
                _store_pair(y1, out + plane, p, q, b0, b1)
            if f0 + 2 < f:
                _store_pair(y1, out + 2 * plane, p, q, c0, c1)
            if f0 + 3 < f:
                _store_pair(y1, out + 3 * plane, p, q, d0, d1)


@numba.njit(inline="always", cache=True)
def _store_pair(y1, base, p, q, first, second):
    vstore(y1, base + p, first)
    vstore(y1, base + q, second)


@numba.njit(parallel=True, cache=True)
def direct_weight_grad_cpu(xp, dy, dw):
    """dw (F, C, kh, kw) = sum over images and pixels of dy (N, F, Ho, Wo) times the matching xp taps."""
    n, c, hp, wp = xp.shape
    f, _, kh, kw = dw.shape
    ho, wo = dy.shape[2], dy.shape[3]
    plane = ho * wo
    blocks = (f + FILTERS - 1) // FILTERS
    runs = (kw + 2) // 3  # kernel rows are done three taps at a time
    x1, g1 = xp.reshape(-1), dy.reshape(-1)
    for blk in prange(blocks):
        f0 = blk * FILTERS
        fs = (f0, min(f0 + 1, f - 1), min(f0 + 2, f - 1), min(f0 + 3, f - 1))
        # lane-wise partial sums, (channel, kernel row, run of 3 taps, filter, tap, lane): one image's upstream
        # gradient for these four filters (16 KB at 32x32) stays in L1 while every channel and tap passes over it
        part = np.zeros(c * kh * runs * FILTERS * 3 * LANES, np.float32)
        for img in range(n):
            ga0, gb0 = (img * f + fs[0]) * plane, (img * f + fs[1]) * plane
            gc0, gd0 = (img * f + fs[2]) * plane, (img * f + fs[3]) * plane
            for ch in range(c):
                for i in range(kh):
                    for run in range(runs):
                        j0 = 3 * run
                        ja, jb, jc = j0, min(j0 + 1, kw - 1), min(j0 + 2, kw - 1)
                        at = ((ch * kh + i) * runs + run) * FILTERS * 3 * LANES
                        a0, a1, a2 = vload(part, at), vload(part, at + 16), vload(part, at + 32)
                        b0, b1, b2 = vload(part, at + 48), vload(part, at + 64), vload(part, at + 80)
                        c0, c1, c2 = vload(part, at + 96), vload(part, at + 112), vload(part, at + 128)
                        d0, d1, d2 = vload(part, at + 144), vload(part, at + 160), vload(part, at + 176)
                        for oh in range(ho):
                            r = ((img * c + ch) * hp + oh + i) * wp
                            p = oh * wo
                            for ow in range(0, wo, LANES):
                                xa, xb, xc = vload(x1, r + ow + ja), vload(x1, r + ow + jb), vload(x1, r + ow + jc)
                                ga, gb = vload(g1, ga0 + p + ow), vload(g1, gb0 + p + ow)
                                gc, gd = vload(g1, gc0 + p + ow), vload(g1, gd0 + p + ow)
                                a0, a1, a2 = vfma(ga, xa, a0), vfma(ga, xb, a1), vfma(ga, xc, a2)
                                b0, b1, b2 = vfma(gb, xa, b0), vfma(gb, xb, b1), vfma(gb, xc, b2)
                                c0, c1, c2 = vfma(gc, xa, c0), vfma(gc, xb, c1), vfma(gc, xc, c2)
                                d0, d1, d2 = vfma(gd, xa, d0), vfma(gd, xb, d1), vfma(gd, xc, d2)
                        vstore(part, at, a0), vstore(part, at + 16, a1), vstore(part, at + 32, a2)
                        vstore(part, at + 48, b0), vstore(part, at + 64, b1), vstore(part, at + 80, b2)
                        vstore(part, at + 96, c0), vstore(part, at + 112, c1), vstore(part, at + 128, c2)
                        vstore(part, at + 144, d0), vstore(part, at + 160, d1), vstore(part, at + 176, d2)
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    run, tap = j // 3, j % 3
                    for k in range(FILTERS):
                        if f0 + k < f:
                            at = ((((ch * kh + i) * runs + run) * FILTERS + k) * 3 + tap) * LANES
                            dw[f0 + k, ch, i, j] = vsum(vload(part, at))
