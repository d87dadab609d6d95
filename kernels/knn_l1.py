"""L1 (Manhattan) distances, sum_k |a_k - b_k|: the matrix, or each query's k best fused with the distances.

L1 has no GEMM to lean on: the kernels are the whole computation, register-blocked.

CPU: the training rows are first packed into panels of one vector's width (16 rows for float32, 8 for
float64), feature by feature, so that one load gives one feature of a panel's rows. A register block is
4 queries x 2 panels: per feature, two panel loads and four broadcast query values feed 8 accumulators
(a subtraction, an absolute value and an addition each). The accumulators are the distances: stored
(:func:`l1_distances`), or compared with the worst of each query's k best and the few lanes below it
pushed into the query's heap (:func:`l1_select`, kernels/topk.py), so no distance matrix is ever written.
Terms are summed 32 at a time in the input's dtype, then added to float64 totals, and the heaps are
ordered by those totals (float64 keys): float32 rounding does not reorder neighbours (:func:`block`).
A task owns a range of queries (and, with few queries, a share of the panels); it runs its queries over 8
panels at a time, which stay in cache.

CUDA: a thread block computes a 64 x 64 block of distances, each of its 16 x 16 threads 4 x 4 of them
(rows ty + 16 m, columns tx + 16 n, so that shared-memory reads are conflict-free), with both operands
staged 16 features at a time through shared memory; the selection kernel (kernels/topk.py) then merges
the block into the running k best.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from . import blas_pool
from .arrays import array_module, device_of
from .launch import clamped_grid as grid
from .launch import run_cuda
from .simd import (lanes, vabs, vadd, vbroadcast, vlane, vload, vmask_le, vmask_lt, vnarrow, vstore, vsub, vwiden,
                   vzeros)
from .topk import NO_INDEX, Best, push, select_cuda, sort_heap

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
QUERIES = 4  # CPU register block: queries ...
PANELS = 2  # ... x panels of training rows
L1_CHUNK = 32  # features summed in the input's dtype before they join the float64 totals (see block)
PANEL_BLOCK = 8  # panels a task's queries pass over while they stay in cache (8 x 16 rows x 128 float32 = 64 KB)
REFERENCE_BYTES = 64 << 20  # the reference's broadcast temporaries per chunk of queries


def reference(A, B):
    """The definition: (Q, N) matrix of sum_k |A[i, k] - B[j, k]| for A (Q, D), B (N, D), in A's dtype (xp)."""
    xp = array_module(A)
    out = xp.empty((A.shape[0], B.shape[0]), dtype=A.dtype)
    chunk = max(1, REFERENCE_BYTES // max(1, B.shape[0] * A.shape[1] * A.itemsize))
    for i in range(0, A.shape[0], chunk):
        out[i:i + chunk] = xp.abs(A[i:i + chunk, None, :] - B[None, :, :]).sum(axis=2)
    return out


# --------------------------------------------------------------------------- CPU


def key_dtype(A) -> np.dtype:
    """The dtype of the k best's keys in an L1 search of A: float64 on the CPU (the kernels' totals), else A's."""
    return np.dtype(np.float64) if device_of(A).type == "cpu" else A.dtype


def panel_count(rows: int, dtype) -> int:
    """Panels that hold ``rows`` training rows, rounded up to whole register blocks."""
    width = 64 // np.dtype(dtype).itemsize
    return -(-rows // (width * PANELS)) * PANELS


@numba.njit(parallel=True, cache=True)
def pack_cpu(X, P):
    """P (panels, D L): panel p holds rows p L .. p L + L - 1 of X (N, D), feature by feature; zeros past N."""
    n, d = X.shape
    L = lanes(X)
    for p in prange(P.shape[0]):
        row = P[p]
        for k in range(d):  # writes in order; the panel's L rows of X stay in cache
            for lane in range(L):
                j = p * L + lane
                row[k * L + lane] = X[j, k] if j < n else 0


@numba.njit(inline="always")
def block(a0, a1, a2, a3, d, pa, pb, L):
    """The 4 x 2 register block: L1 distances of the queries a0 .. a3 (D,) to the rows of the panels pa, pb, in float64.

    Terms are summed L1_CHUNK at a time in the input's dtype, each chunk's sums then added to float64
    totals (two registers each for float32 input): a float32 sum of D terms drifts by about sqrt(D) of
    its last bits and reorders near-equal distances; chunks of 32 keep each total within a few float64
    roundings of the exact distance, and the heaps order by these totals (kernels/topk.py's keys in
    float64), so only distances equal in float64 tie.
    """
    w = vwiden(vzeros(a0))
    t00 = t01 = t10 = t11 = t20 = t21 = t30 = t31 = w
    for k0 in range(0, d, L1_CHUNK):
        s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = vzeros(a0)
        for k in range(k0, min(d, k0 + L1_CHUNK)):
            b = vload(pa, k * L)
            e = vload(pb, k * L)
            x = vbroadcast(a0, k)
            s00 = vadd(s00, vabs(vsub(x, b)))
            s01 = vadd(s01, vabs(vsub(x, e)))
            x = vbroadcast(a1, k)
            s10 = vadd(s10, vabs(vsub(x, b)))
            s11 = vadd(s11, vabs(vsub(x, e)))
            x = vbroadcast(a2, k)
            s20 = vadd(s20, vabs(vsub(x, b)))
            s21 = vadd(s21, vabs(vsub(x, e)))
            x = vbroadcast(a3, k)
            s30 = vadd(s30, vabs(vsub(x, b)))
            s31 = vadd(s31, vabs(vsub(x, e)))
        t00, t01 = vadd(t00, vwiden(s00)), vadd(t01, vwiden(s01))
        t10, t11 = vadd(t10, vwiden(s10)), vadd(t11, vwiden(s11))
        t20, t21 = vadd(t20, vwiden(s20)), vadd(t21, vwiden(s21))
        t30, t31 = vadd(t30, vwiden(s30)), vadd(t31, vwiden(s31))
    return t00, t01, t10, t11, t20, t21, t30, t31


@numba.njit(inline="always")
def _rows(A, i0):
    """Queries i0 .. i0 + 3 of A, the last one repeated past A's end (computed, never stored)."""
    last = A.shape[0] - 1
    return A[i0], A[min(i0 + 1, last)], A[min(i0 + 2, last)], A[min(i0 + 3, last)]


@numba.njit(inline="always")
def _take(w, col, end, kb, ib):
    """Push the lanes of w (float64 distances of rows col .. col + lanes - 1) that beat the heap's worst, rows < end."""
    mask = vmask_le(w, kb[0]) if ib[0] == NO_INDEX else vmask_lt(w, kb[0])
    while mask:
        lane = trailing_zeros(mask)
        mask &= mask - 1
        if col + lane < end:
            r = vlane(w, lane)
            push(kb, kb, ib, r, r, col + lane)


@numba.njit(inline="always")
def _store(v, out, i, col):
    """out[i, col: col + lanes] = v, as far as out's row goes."""
    n = out.shape[1]
    L = lanes(out)
    if col + L <= n:
        vstore(out[i], col, v)
    else:
        for lane in range(n - col):
            out[i, col + lane] = vlane(v, lane)


@numba.njit(parallel=True, cache=True)
def distances_cpu(A, P, chunk, out):
    """out (Q, n) = the L1 distances of A (Q, D) to the packed rows P; ``chunk``: query blocks per task."""
    q, d = A.shape
    L = lanes(A)
    pans = -(-out.shape[1] // (L * PANELS)) * PANELS
    blocks = -(-q // QUERIES)
    tasks = -(-blocks // chunk)
    for t in prange(tasks):
        for p0 in range(0, pans, PANEL_BLOCK):
            for g in range(t * chunk, min(blocks, (t + 1) * chunk)):
                i0 = g * QUERIES
                for pn in range(p0, min(pans, p0 + PANEL_BLOCK), PANELS):
                    a0, a1, a2, a3 = _rows(A, i0)
                    s = block(a0, a1, a2, a3, d, P[pn], P[pn + 1], L)
                    like = vzeros(a0)
                    for r in range(min(QUERIES, q - i0)):
                        _store(vnarrow(s[2 * r], like), out, i0 + r, pn * L)
                        _store(vnarrow(s[2 * r + 1], like), out, i0 + r, pn * L + L)


@numba.njit(parallel=True, cache=True)
def select_cpu(A, P, n, col0, chunk, last, keys, idx):
    """Push the L1 distances of A (Q, D) to the n packed rows P (rows col0 ..) into the heaps keys/idx (parts, Q, k).

    ``keys`` float64 (the distances as the register block sums them, see :func:`block`).

    Task (t, p) takes query blocks t chunk .. and the p-th share of the panels; its columns come in
    increasing order, so a distance equal to a heap's worst never enters (except into empty slots).
    ``last``: the queries' last block; with one part, each task then sorts its queries' heaps.
    """
    q, d = A.shape
    parts = keys.shape[0]
    L = lanes(A)
    pans = -(-n // (L * PANELS)) * PANELS
    share = -(-pans // (parts * PANELS)) * PANELS
    blocks = -(-q // QUERIES)
    tasks = -(-blocks // chunk)
    end = col0 + n
    for task in prange(tasks * parts):
        t = task // parts
        p = task - t * parts
        for p0 in range(p * share, min(pans, (p + 1) * share), PANEL_BLOCK):
            for g in range(t * chunk, min(blocks, (t + 1) * chunk)):
                i0 = g * QUERIES
                for pn in range(p0, min(pans, (p + 1) * share, p0 + PANEL_BLOCK), PANELS):
                    a0, a1, a2, a3 = _rows(A, i0)
                    s = block(a0, a1, a2, a3, d, P[pn], P[pn + 1], L)
                    col = col0 + pn * L
                    for r in range(min(QUERIES, q - i0)):
                        kb, ib = keys[p, i0 + r], idx[p, i0 + r]
                        _take(s[2 * r], col, end, kb, ib)
                        _take(s[2 * r + 1], col + L, end, kb, ib)
        if last and parts == 1:
            for i in range(t * chunk * QUERIES, min(q, (t + 1) * chunk * QUERIES)):
                sort_heap(keys[0, i], keys[0, i], idx[0, i])


# --------------------------------------------------------------------------- CUDA

CUDA_TILE = 64  # distances per thread block along each axis: 16 x 16 threads, 4 x 4 each
CUDA_STEP = 16  # features staged in shared memory per step
CUDA_STEP_PADDED = 17  # a shared row of 17: the 16 rows a half-warp reads at one feature sit in 16 banks


def _distances_kernel(dtype):
    """The CUDA L1 distance kernel for Numba float type ``dtype`` (its shared tiles are of that type)."""

    @cuda.jit(cache=True)
    def distances(A, B, out, zero):
        """out (Q, n) = L1 distances of A (Q, D) to B (n, D): 64 x 64 per block, grid-stride over both axes."""
        a_s = cuda.shared.array((CUDA_TILE, CUDA_STEP_PADDED), dtype)
        b_s = cuda.shared.array((CUDA_TILE, CUDA_STEP_PADDED), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        q, d = A.shape
        n = B.shape[0]
        i0 = cuda.blockIdx.y * CUDA_TILE
        while i0 < q:  # grid-stride over both axes (while loops: range with a variable step divides)
            j0 = cuda.blockIdx.x * CUDA_TILE
            while j0 < n:
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
                for k0 in range(0, d, CUDA_STEP):
                    k = k0 + tx
                    for m in range(4):
                        i = i0 + ty + 16 * m
                        a_s[ty + 16 * m, tx] = A[i, k] if i < q and k < d else zero
                        j = j0 + ty + 16 * m
                        b_s[ty + 16 * m, tx] = B[j, k] if j < n and k < d else zero
                    cuda.syncthreads()
                    for kk in range(CUDA_STEP):
                        a0, a1, a2, a3 = a_s[ty, kk], a_s[ty + 16, kk], a_s[ty + 32, kk], a_s[ty + 48, kk]
                        b0, b1, b2, b3 = b_s[tx, kk], b_s[tx + 16, kk], b_s[tx + 32, kk], b_s[tx + 48, kk]
                        s00 += abs(a0 - b0)
                        s01 += abs(a0 - b1)
                        s02 += abs(a0 - b2)
                        s03 += abs(a0 - b3)
                        s10 += abs(a1 - b0)
                        s11 += abs(a1 - b1)
                        s12 += abs(a1 - b2)
                        s13 += abs(a1 - b3)
                        s20 += abs(a2 - b0)
                        s21 += abs(a2 - b1)
                        s22 += abs(a2 - b2)
                        s23 += abs(a2 - b3)
                        s30 += abs(a3 - b0)
                        s31 += abs(a3 - b1)
                        s32 += abs(a3 - b2)
                        s33 += abs(a3 - b3)
                    cuda.syncthreads()
                _put4(out, i0 + ty, j0 + tx, s00, s01, s02, s03)
                _put4(out, i0 + ty + 16, j0 + tx, s10, s11, s12, s13)
                _put4(out, i0 + ty + 32, j0 + tx, s20, s21, s22, s23)
                _put4(out, i0 + ty + 48, j0 + tx, s30, s31, s32, s33)
                j0 += cuda.gridDim.x * CUDA_TILE
            i0 += cuda.gridDim.y * CUDA_TILE

    return distances


@cuda.jit(device=True, inline=True, cache=True)
def _put4(out, i, j, v0, v1, v2, v3):
    """out[i, j + 16 n] = v_n, within out."""
    if i < out.shape[0]:
        n = out.shape[1]
        if j < n:
            out[i, j] = v0
        if j + 16 < n:
            out[i, j + 16] = v1
        if j + 32 < n:
            out[i, j + 32] = v2
        if j + 48 < n:
            out[i, j + 48] = v3


DISTANCES_CUDA = {np.dtype(np.float32): _distances_kernel(numba.float32),
                  np.dtype(np.float64): _distances_kernel(numba.float64)}


def _launch_distances(A, B, out) -> None:
    q, n = out.shape
    if q and n:
        run_cuda(DISTANCES_CUDA[np.dtype(A.dtype)], grid(-(-n // CUDA_TILE), -(-q // CUDA_TILE)), (16, 16), A, B, out,
                 A.dtype.type(0))


# --------------------------------------------------------------------------- launches


def _check(op: str, A, B):
    """A (Q, D) and B (N, D): C-contiguous, one float dtype, one device."""
    for name, M in (("A", A), ("B", B)):
        if getattr(M, "ndim", 0) != 2 or M.dtype not in FLOATS or not M.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be a C-contiguous float32 or float64 matrix, "
                             f"got {getattr(M, 'dtype', type(M).__name__)} of shape {getattr(M, 'shape', None)}")
    if A.shape[1] != B.shape[1] or A.dtype != B.dtype:
        raise ValueError(f"{op}: A and B must be (Q, D) and (N, D) of one dtype, got {A.dtype} {tuple(A.shape)} "
                         f"and {B.dtype} {tuple(B.shape)}")
    if device_of(A) != device_of(B):
        raise ValueError(f"{op}: A is on {device_of(A)} but B is on {device_of(B)}")


def pack(B):
    """B (N, D) packed for the CPU kernels: (panels, D lanes), zeros past N (see :func:`pack_cpu`)."""
    P = np.empty((panel_count(B.shape[0], B.dtype), B.shape[1] * 64 // B.itemsize), B.dtype)
    pack_cpu(B, P)
    return P


def _chunk(queries: int, parts: int) -> int:
    """Query blocks per task: about four tasks per thread, so that a slow thread delays the others little."""
    blocks = -(-queries // QUERIES)
    tasks = max(1, 4 * numba.get_num_threads() // parts)
    return max(1, -(-blocks // tasks))


def l1_distances(A, B):
    """The (Q, N) matrix of L1 distances between the rows of A (Q, D) and B (N, D), on their device."""
    _check("l1_distances", A, B)
    out = array_module(A).empty((A.shape[0], B.shape[0]), A.dtype)
    if device_of(A).type == "cuda":
        _launch_distances(A, B, out)
    elif out.size:
        packed = pack(B)
        with numba.parallel_chunksize(1):
            distances_cpu(A, packed, _chunk(A.shape[0], 1), out)
        blas_pool.parallel_kernel_ran()
    return out


def l1_select(A, B, col0: int, best: Best, last: bool = False) -> None:
    """Merge the L1 distances of A (Q, D) to the block B (n, D) of training rows col0 .. into ``best``.

    CPU: packs B, then one fused pass. CUDA: the distance block, then the selection kernel.
    ``last``: no later block comes for these queries (the CPU kernel may then sort the heaps).
    """
    _check("l1_select", A, B)
    wanted = key_dtype(A)
    if best.keys.shape[1] != A.shape[0] or best.keys.dtype != wanted:
        raise ValueError(f"l1_select: best holds {best.keys.shape[1]} {best.keys.dtype} lists, A is "
                         f"{A.dtype} {tuple(A.shape)} (wanted {wanted} lists)")
    if device_of(A).type == "cuda":
        out = array_module(A).empty((A.shape[0], B.shape[0]), A.dtype)
        _launch_distances(A, B, out)
        select_cuda(out, best, col0)
    elif A.shape[0] and B.shape[0]:
        packed = pack(B)
        with numba.parallel_chunksize(1):  # tasks handed out as threads free up (about four per thread)
            select_cpu(A, packed, B.shape[0], np.int64(col0), _chunk(A.shape[0], best.keys.shape[0]), bool(last),
                       best.keys, best.idx)
        best.sorted = bool(last) and best.keys.shape[0] == 1
        blas_pool.parallel_kernel_ran()
