"""Winograd F(2x2, 3x3) transforms for 3x3, stride-1 convolutions (the GEMMs between them are BLAS's).

The image is cut into overlapping 4x4 input tiles d, one per 2x2 output tile; with the 16
transformed weights U = G g G^T (per output and input channel), each output tile is
A^T [U (.) B^T d B] A, so the convolution becomes 16 GEMMs of (F, C) by (C, tiles) with
2.25x fewer multiplies than im2col's one GEMM (Lavin and Gray, 2016). Layouts, as
:mod:`gpunn.ops` documents them: V and M are (16, channels, tiles), the 16 ordered (a, b)
for the 4x4 positions, tiles ordered (n, tile row, tile column). The kernels take them as
(16, L) buffers, channel k's tiles at k T.., each row padded past K T: rows exactly a power of two
apart put all 16 streams of a transform in the same cache sets (the input transform ran 2x slower).

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

CPU kernels give each thread whole (image, channel) planes and work a tile row at a
time, first along the image row (contiguous, so the compiler vectorises it), then across
the four rows; the backward passes are the exact adjoints (transposes) of the forward ones.
CUDA kernels give one thread per (channel, tile); the input gradient gathers, per pixel,
from the tiles that cover it, so no two threads write one element.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange

from .activations import backward_device, forward_device
from .conv import activation_grad_row, bias_activation_row, nchw_index


# --------------------------------------------------------------------------- CPU: numba.njit(parallel=True)

@numba.njit(parallel=True, cache=True)
def input_cpu(x, V, ph, pw, th, tw, zero):
    """V[(a, b), c T + (n, r, q)] = (B^T d B)[a, b] for the 4x4 tile d at rows 2r - ph.., columns 2q - pw.. of x[n, c]."""
    n, c, h, w = x.shape
    tiles = n * th * tw
    wp = 2 * tw + 2
    for t in prange(n * c):
        img, ch = t // c, t % c
        pad = np.full((2 * th + 2, wp), zero)
        for a in range(h):
            pad[ph + a, pw:pw + w] = x[img, ch, a]
        rows = np.empty((4, wp), pad.dtype)
        for r in range(th):
            d0, d1, d2, d3 = pad[2 * r], pad[2 * r + 1], pad[2 * r + 2], pad[2 * r + 3]
            for k in range(wp):  # B^T down the tile's four rows
                rows[0, k] = d0[k] - d2[k]
                rows[1, k] = d1[k] + d2[k]
                rows[2, k] = d2[k] - d1[k]
                rows[3, k] = d1[k] - d3[k]
            base = ch * tiles + (img * th + r) * tw
            for a in range(4):  # then B across each tile's four columns
                s = rows[a]
                v0, v1 = V[4 * a, base:base + tw], V[4 * a + 1, base:base + tw]
                v2, v3 = V[4 * a + 2, base:base + tw], V[4 * a + 3, base:base + tw]
                for q in range(tw):
                    k = 2 * q
                    v0[q] = s[k] - s[k + 2]
                    v1[q] = s[k + 1] + s[k + 2]
                    v2[q] = s[k + 2] - s[k + 1]
                    v3[q] = s[k + 1] - s[k + 3]


@numba.njit(parallel=True, cache=True)
def input_backward_cpu(dV, dx, ph, pw, th, tw, zero):
    """dx = the adjoint of :func:`input_cpu`: each tile's B dV B^T added back onto the pixels it was read from."""
    n, c, h, w = dx.shape
    wp, tiles = 2 * tw + 2, n * th * tw
    for t in prange(n * c):
        img, ch = t // c, t % c
        pad = np.full((2 * th + 2, wp), zero)
        cols = np.empty((4, 4, tw), pad.dtype)  # (row u of the tile, column v, tile q)
        for r in range(th):
            base = ch * tiles + (img * th + r) * tw
            for b in range(4):  # B down the tile's four rows, for each column b of dV
                v0, v1 = dV[b, base:base + tw], dV[4 + b, base:base + tw]
                v2, v3 = dV[8 + b, base:base + tw], dV[12 + b, base:base + tw]
                for q in range(tw):
                    cols[0, b, q] = v0[q]
                    cols[1, b, q] = v1[q] - v2[q] + v3[q]
                    cols[2, b, q] = v1[q] + v2[q] - v0[q]
                    cols[3, b, q] = -v3[q]
            for u in range(4):  # then B^T across the columns, added at 2q + v
                e0, e1, e2, e3 = cols[u, 0], cols[u, 1], cols[u, 2], cols[u, 3]
                row = pad[2 * r + u]
                for q in range(tw):  # v = 0, 1: no two tiles of one pass overlap
                    row[2 * q] += e0[q]
                    row[2 * q + 1] += e1[q] - e2[q] + e3[q]
                for q in range(tw):  # v = 2, 3
                    row[2 * q + 2] += e1[q] + e2[q] - e0[q]
                    row[2 * q + 3] -= e3[q]
        for a in range(h):
            dx[img, ch, a] = pad[ph + a, pw:pw + w]


@numba.njit(parallel=True, cache=True)
def output_cpu(M, b, out, has_bias, kind, alpha, zero, half):
    """out[n, f] = f((A^T m A) + b[f]) for each tile m of M[:, f], cropped to out's (Ho, Wo)."""
    n, f, ho, wo = out.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    tiles = n * th * tw
    for t in prange(n * f):
        img, ch = t // f, t % f
        bias = b[ch] if has_bias else zero
        full = np.empty((2 * th, 2 * tw), out.dtype)
        s = np.empty((4, 2, tw), out.dtype)  # (row a of the tile, output column j, tile q)
        for r in range(th):
            base = ch * tiles + (img * th + r) * tw
            for a in range(4):  # A across each tile row's four columns
                m0, m1 = M[4 * a, base:base + tw], M[4 * a + 1, base:base + tw]
                m2, m3 = M[4 * a + 2, base:base + tw], M[4 * a + 3, base:base + tw]
                for q in range(tw):
                    s[a, 0, q] = m0[q] + m1[q] + m2[q]
                    s[a, 1, q] = m1[q] - m2[q] - m3[q]
            top, bottom = full[2 * r], full[2 * r + 1]
            for j in range(2):  # then A^T down the four rows
                for q in range(tw):
                    top[2 * q + j] = s[0, j, q] + s[1, j, q] + s[2, j, q]
                    bottom[2 * q + j] = s[1, j, q] - s[2, j, q] - s[3, j, q]
        for a in range(ho):
            bias_activation_row(full[a], out[img, ch, a], wo, bias, kind, alpha, zero, half)


# reassoc lets the bias gradient's sum vectorise; it changes only that sum's order (as in kernels/conv.py).
@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "nsz"})
def output_backward_cpu(g, y, dM, db, kind, alpha, zero, half):
    """dz = g f'(y), db[f] = sum of dz[:, f], and dM = the adjoint of :func:`output_cpu` applied to dz."""
    n, f, ho, wo = g.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    tiles = n * th * tw
    for ch in prange(f):
        acc = zero
        dz = np.zeros((2 * th, 2 * tw), g.dtype)  # rows and columns past (Ho, Wo) stay 0
        s = np.empty((4, 2, tw), g.dtype)
        for img in range(n):
            for a in range(ho):
                acc += activation_grad_row(g[img, ch, a], y[img, ch, a], dz[a], wo, kind, alpha, zero, half)
            for r in range(th):
                top, bottom = dz[2 * r], dz[2 * r + 1]
                for j in range(2):  # A down the rows: (p0, p0 + p1, p0 - p1, -p1)
                    for q in range(tw):
                        p0, p1 = top[2 * q + j], bottom[2 * q + j]
                        s[0, j, q] = p0
                        s[1, j, q] = p0 + p1
                        s[2, j, q] = p0 - p1
                        s[3, j, q] = -p1
                base = ch * tiles + (img * th + r) * tw
                for a in range(4):  # then A^T across the columns
                    m0, m1 = dM[4 * a, base:base + tw], dM[4 * a + 1, base:base + tw]
                    m2, m3 = dM[4 * a + 2, base:base + tw], dM[4 * a + 3, base:base + tw]
                    for q in range(tw):
                        p0, p1 = s[a, 0, q], s[a, 1, q]
                        m0[q] = p0
                        m1[q] = p0 + p1
                        m2[q] = p0 - p1
                        m3[q] = -p1
        db[ch] = acc


# --------------------------------------------------------------------------- CUDA: numba.cuda.jit
# One thread per (channel, tile), grid-stride loops, scalars in the arrays' dtype; the input gradient is
# one thread per pixel, gathering from the (at most 2 x 2) tiles that read it.

@cuda.jit(device=True, inline=True)
def _bt_device(d0, d1, d2, d3):
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@cuda.jit(device=True, inline=True)
def _bt_adjoint_entry(v0, v1, v2, v3, u):
    """Entry u of B (v0, v1, v2, v3) = (v0, v1 - v2 + v3, v1 + v2 - v0, -v3)."""
    if u == 0:
        return v0
    if u == 1:
        return v1 - v2 + v3
    if u == 2:
        return v1 + v2 - v0
    return -v3


@cuda.jit(device=True, inline=True)
def _at_adjoint_entry(p0, p1, a):
    """Entry a of A (p0, p1) = (p0, p0 + p1, p0 - p1, -p1)."""
    if a == 0:
        return p0
    if a == 1:
        return p0 + p1
    if a == 2:
        return p0 - p1
    return -p1


@cuda.jit(device=True, inline=True)
def _tile(e, tiles, th, tw):
    """Thread e's (channel, image, tile row r, tile column q, column i of the (16, K T) rows)."""
    ch, t = e // tiles, e % tiles
    return ch, t // (th * tw), (t // tw) % th, t % tw, ch * tiles + t


@cuda.jit(device=True, inline=True)
def _column(x, img, ch, row, col, h, w, zero):
    """B^T down the 4 pixels of column ``col`` from ``row`` (zero padding outside the image)."""
    inside = 0 <= col < w
    d0 = x[img, ch, row, col] if inside and 0 <= row < h else zero
    d1 = x[img, ch, row + 1, col] if inside and 0 <= row + 1 < h else zero
    d2 = x[img, ch, row + 2, col] if inside and 0 <= row + 2 < h else zero
    d3 = x[img, ch, row + 3, col] if inside and 0 <= row + 3 < h else zero
    return _bt_device(d0, d1, d2, d3)


@cuda.jit
def input_cuda(x, V, ph, pw, th, tw, zero):
    n, c, h, w = x.shape
    tiles = n * th * tw
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, c * tiles, stride):
        ch, img, r, q, i = _tile(e, tiles, th, tw)
        row, col = 2 * r - ph, 2 * q - pw
        c0 = _column(x, img, ch, row, col, h, w, zero)
        c1 = _column(x, img, ch, row, col + 1, h, w, zero)
        c2 = _column(x, img, ch, row, col + 2, h, w, zero)
        c3 = _column(x, img, ch, row, col + 3, h, w, zero)
        for a in range(4):
            v0, v1, v2, v3 = _bt_device(c0[a], c1[a], c2[a], c3[a])
            V[4 * a, i] = v0
            V[4 * a + 1, i] = v1
            V[4 * a + 2, i] = v2
            V[4 * a + 3, i] = v3


@cuda.jit
def input_backward_cuda(dV, dx, ph, pw, th, tw, zero):
    """Pixel (a, b) is entry (u, v) = (a + ph - 2r, b + pw - 2q) of the tiles (r, q) that read it."""
    n, c, h, w = dx.shape
    tiles = n * th * tw
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, dx.size, stride):
        img, ch, a, b = nchw_index(e, c, h, w)
        acc = zero
        for r in range(max(0, (a + ph - 2) // 2), min(th, (a + ph) // 2 + 1)):
            u = a + ph - 2 * r
            for q in range(max(0, (b + pw - 2) // 2), min(tw, (b + pw) // 2 + 1)):
                i = ch * tiles + (img * th + r) * tw + q
                e0 = _bt_adjoint_entry(dV[0, i], dV[4, i], dV[8, i], dV[12, i], u)
                e1 = _bt_adjoint_entry(dV[1, i], dV[5, i], dV[9, i], dV[13, i], u)
                e2 = _bt_adjoint_entry(dV[2, i], dV[6, i], dV[10, i], dV[14, i], u)
                e3 = _bt_adjoint_entry(dV[3, i], dV[7, i], dV[11, i], dV[15, i], u)
                acc += _bt_adjoint_entry(e0, e1, e2, e3, b + pw - 2 * q)
        dx[img, ch, a, b] = acc


@cuda.jit
def output_cuda(M, b, out, has_bias, kind, alpha, zero, half):
    n, f, ho, wo = out.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    tiles = n * th * tw
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, f * tiles, stride):
        ch, img, r, q, i = _tile(e, tiles, th, tw)
        bias = b[ch] if has_bias else zero
        s00 = M[0, i] + M[1, i] + M[2, i]
        s01 = M[1, i] - M[2, i] - M[3, i]
        s10 = M[4, i] + M[5, i] + M[6, i]
        s11 = M[5, i] - M[6, i] - M[7, i]
        s20 = M[8, i] + M[9, i] + M[10, i]
        s21 = M[9, i] - M[10, i] - M[11, i]
        s30 = M[12, i] + M[13, i] + M[14, i]
        s31 = M[13, i] - M[14, i] - M[15, i]
        row, col = 2 * r, 2 * q
        out[img, ch, row, col] = forward_device(kind, s00 + s10 + s20 + bias, alpha, zero, half)
        if col + 1 < wo:
            out[img, ch, row, col + 1] = forward_device(kind, s01 + s11 + s21 + bias, alpha, zero, half)
        if row + 1 < ho:
            out[img, ch, row + 1, col] = forward_device(kind, s10 - s20 - s30 + bias, alpha, zero, half)
            if col + 1 < wo:
                out[img, ch, row + 1, col + 1] = forward_device(kind, s11 - s21 - s31 + bias, alpha, zero, half)


@cuda.jit(device=True, inline=True)
def _dz(g, y, img, ch, row, col, ho, wo, kind, alpha, zero, half):
    if row < ho and col < wo:
        return backward_device(kind, g[img, ch, row, col], y[img, ch, row, col], alpha, zero, half)
    return zero


@cuda.jit
def output_backward_cuda(g, y, dM, db, kind, alpha, zero, half):
    """dM only (``db`` is unused: the binding sums the bias gradient with CuPy)."""
    n, f, ho, wo = g.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    tiles = n * th * tw
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, f * tiles, stride):
        ch, img, r, q, i = _tile(e, tiles, th, tw)
        row, col = 2 * r, 2 * q
        p00 = _dz(g, y, img, ch, row, col, ho, wo, kind, alpha, zero, half)
        p01 = _dz(g, y, img, ch, row, col + 1, ho, wo, kind, alpha, zero, half)
        p10 = _dz(g, y, img, ch, row + 1, col, ho, wo, kind, alpha, zero, half)
        p11 = _dz(g, y, img, ch, row + 1, col + 1, ho, wo, kind, alpha, zero, half)
        for a in range(4):
            p0 = _at_adjoint_entry(p00, p10, a)
            p1 = _at_adjoint_entry(p01, p11, a)
            dM[4 * a, i] = p0
            dM[4 * a + 1, i] = p0 + p1
            dM[4 * a + 2, i] = p0 - p1
            dM[4 * a + 3, i] = -p1
