"""Euclidean distances from a matrix product: ||a||^2 + ||b||^2 - 2 a.b, alone or with each query's k best.

The product G = A B^T comes from BLAS / cuBLAS (the caller's GEMM, gpunn.ops.matmul); this file holds
what follows it. :func:`l2_distances` turns G into the distance matrix (pairwise distances).
:func:`l2_select` keeps each query's k best of one block of G: on the CPU in one pass fused with the
distances (a vector of distances against the query's limit, then only the few at or below it appended to
its buffer, kernels/topk.py's :class:`~gpunn.kernels.topk.Buffers`); on CUDA the same distances kernel,
then the selection kernel.

The formula cancels: its rounding error is about eps (a_sq + b_sq). Values below
``L2_FLOOR_ULPS * eps * (a_sq + b_sq)`` cannot be told from 0 and are reported as 0, so duplicate rows
are exactly 0 apart (and tie), and rounding never gives a negative.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from . import blas_pool
from .arrays import array_module, device_of
from .launch import clamped_grid as grid
from .launch import cpu_threads, run_cuda
from .simd import lanes, vabove, vadd, vlane, vload, vmask_le, vmask_lt, vmul, vsplat, vsub, vzeros
from .topk import offer, select_cuda

L2_FLOOR_ULPS = 16
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# The selection pass hands out its rows 16 at a time as threads free up, not in fixed halves: a thread that
# shares its core (another process, or a BLAS thread still spinning) then holds the others up little.
DYNAMIC_ROWS = 16


def reference(G, a_sq, b_sq, take_sqrt: bool):
    """The definition: a_sq[i] + b_sq[j] - 2 G[i, j], 0 below its rounding floor, square-rooted if asked (xp)."""
    total = a_sq[:, None] + b_sq[None, :]
    d = total - (G + G)
    floor = total * G.dtype.type(L2_FLOOR_ULPS * np.finfo(G.dtype).eps)
    d = array_module(G).where(d > floor, d, 0).astype(G.dtype, copy=False)
    return array_module(G).sqrt(d) if take_sqrt else d


def squared_norms(A):
    """(N,) squared row norms of A (N, D), in A's dtype: every L2 search's ||a||^2 and ||b||^2 come from here.

    On NumPy ``einsum`` sums each row's products without the (N, D) temporary of ``(A * A).sum(axis=1)``.
    """
    return np.einsum("ij,ij->i", A, A) if array_module(A) is np else (A * A).sum(axis=1)


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})  # any order of a float64 sum will do
def pair_distances_cpu(A, qi, R, ri, out):
    """out[m] = sum_f (A[qi[m], f] - R[ri[m], f])^2 in float64, for the pairs m (no row is copied)."""
    for m in prange(out.shape[0]):
        a, b = A[qi[m]], R[ri[m]]
        total = 0.0
        for f in range(a.shape[0]):
            diff = np.float64(a[f]) - np.float64(b[f])
            total += diff * diff
        out[m] = total


# Pairs' elements from which their distances are measured on every thread: rows gathered from memory, not
# computed on (500 x 5,000 x 3,072, k = 100: 1,181 pairs, 2.1 ms alone).
PAIR_PARALLEL = 1 << 20
PAIR_BYTES = 64 << 20  # CUDA: the float64 differences of pairs measured at once, at most


def pair_distances(A, qi, R, ri):
    """(M,) float64 squared distances between rows A[qi[m]] and R[ri[m]] (A (Q, D), R (N, D) on one device)."""
    xp = array_module(A)
    out = xp.empty(qi.shape[0], np.float64)
    if xp is np:
        if out.size:
            with cpu_threads(A.shape[1] * out.size, at=PAIR_PARALLEL):
                pair_distances_cpu(A, qi, R, ri, out)
        return out
    step = max(1, PAIR_BYTES // (8 * max(1, A.shape[1])))
    for s in range(0, out.shape[0], step):
        diff = A[qi[s:s + step]].astype(np.float64) - R[ri[s:s + step]].astype(np.float64)
        out[s:s + step] = (diff * diff).sum(axis=1)
    return out


@numba.njit(parallel=True, cache=True)
def sort_rows_cpu(sq, d, i):
    """Each row of sq, d, i (M, k) sorted in place by (sq, i): an insertion sort, linear for rows that come
    nearly sorted (a search's neighbours after their near-ties were measured again), quadratic at worst."""
    for r in prange(sq.shape[0]):
        s, dr, ir = sq[r], d[r], i[r]
        for a in range(1, s.shape[0]):
            key, dist, row = s[a], dr[a], ir[a]
            b = a - 1
            while b >= 0 and (s[b] > key or (s[b] == key and ir[b] > row)):
                s[b + 1], dr[b + 1], ir[b + 1] = s[b], dr[b], ir[b]
                b -= 1
            s[b + 1], dr[b + 1], ir[b + 1] = key, dist, row


def sort_rows(sq, d, i):
    """Each row of sq (M, k) float64 and of d, i (M, k) with it, sorted by (sq, i), in place; returns (sq, d, i).

    The rows of ``i`` hold distinct values (a query's neighbours). On CUDA two sorts: by i, then a stable one
    by sq (CuPy's argsort is stable).
    """
    xp = array_module(sq)
    if xp is np:
        if sq.size:
            with cpu_threads(sq.size):
                sort_rows_cpu(sq, d, i)
        return sq, d, i
    by_row = xp.argsort(i, axis=1)
    sq, d, i = (xp.take_along_axis(a, by_row, axis=1) for a in (sq, d, i))
    order = xp.argsort(sq, axis=1)
    return tuple(xp.take_along_axis(a, order, axis=1) for a in (sq, d, i))


def floor_ulps(dtype) -> np.generic:
    """L2_FLOOR_ULPS * eps in ``dtype``: the kernels' rounding floor, relative to a_sq + b_sq."""
    return np.dtype(dtype).type(L2_FLOOR_ULPS * np.finfo(dtype).eps)


# --------------------------------------------------------------------------- CPU


@numba.njit(parallel=True, cache=True)
def distances_cpu(G, a_sq, b_sq, take_sqrt, floor, zero):
    """In place on G (Q, N): the distance matrix (see :func:`reference`); ``floor`` and ``zero`` in G's dtype."""
    q, n = G.shape
    for i in prange(q):
        for j in range(n):
            total = a_sq[i] + b_sq[j]
            d = total - (G[i, j] + G[i, j])
            d = d if d > total * floor else zero
            G[i, j] = np.sqrt(d) if take_sqrt else d


@numba.njit(parallel=True, cache=True)
def select_cpu(G, a_sq, b_sq, col0, floor, zero, keys, raws, idx, fill, limit, k):
    """Offer the distances of G (Q, n) (columns col0 ..) to each query's buffer keys/raws/idx (parts, Q, capacity).

    ``floor`` and ``zero`` in G's dtype (a float32 kernel computes in float32 throughout); ``fill`` and
    ``limit`` (parts, Q): entries held and the raw limit (kernels/topk.py's :class:`~gpunn.kernels.topk.Buffers`).
    Part p of a query takes the p-th share of the columns (in whole vectors). A vector of raw distances
    (before the square root) is compared with the limit; the lanes at or below it are appended, and a full
    buffer is compacted, which lowers the limit. Keys are offered as raw values: the buffers' result takes the
    square root of the few kept (``Buffers(take_sqrt=True)``).
    """
    q, n = G.shape
    parts = keys.shape[0]
    L = lanes(G)
    span = -(-n // (parts * L)) * L
    lanes_like = vzeros(G)
    vfloor = vsplat(lanes_like, floor)
    for task in prange(q * parts):
        i = task // parts
        p = task - i * parts
        j0 = p * span
        j1 = min(n, j0 + span)
        kb, rb, ib = keys[p, i], raws[p, i], idx[p, i]
        held, lim = fill[p, i], limit[p, i]
        row = G[i]
        qs = a_sq[i]
        vq = vsplat(lanes_like, qs)
        j = j0
        while j + L <= j1:
            g = vload(row, j)
            total = vadd(vq, vload(b_sq, j))
            d = vabove(vsub(total, vadd(g, g)), vmul(total, vfloor))
            mask = vmask_le(d, lim)
            while mask:
                lane = trailing_zeros(mask)
                mask &= mask - 1
                r = vlane(d, lane)
                if r <= lim:  # a compaction within this vector may have lowered the limit
                    held, new = offer(kb, rb, ib, held, k, r, r, col0 + j + lane)  # the square root at the end
                    if new >= 0:
                        lim = new
            j += L
        while j < j1:
            total = qs + b_sq[j]
            r = total - (row[j] + row[j])
            r = r if r > total * floor else zero
            if r <= lim:
                held, new = offer(kb, rb, ib, held, k, r, r, col0 + j)
                if new >= 0:
                    lim = new
            j += 1
        fill[p, i], limit[p, i] = held, lim


# --------------------------------------------------------------------------- CUDA


@cuda.jit(cache=True)
def distances_cuda(G, a_sq, b_sq, take_sqrt, floor, zero):
    """In place on G: x covers the columns (one each; the grid's x reaches 2^31 blocks), y strides over the rows.

    ``zero`` in G's dtype keeps float32 in float32.
    """
    j, i = cuda.grid(2)
    q, n = G.shape
    if j < n:
        while i < q:  # a while loop: range with a variable step divides
            total = a_sq[i] + b_sq[j]
            d = total - (G[i, j] + G[i, j])
            d = d if d > total * floor else zero
            G[i, j] = math.sqrt(d) if take_sqrt else d
            i += cuda.gridDim.y * cuda.blockDim.y


def _launch_distances(G, a_sq, b_sq, take_sqrt: bool) -> None:
    q, n = G.shape
    if q and n:
        run_cuda(distances_cuda, grid(-(-n // 32), -(-q // 8)), (32, 8), G, a_sq, b_sq, bool(take_sqrt),
                 floor_ulps(G.dtype), G.dtype.type(0))


# --------------------------------------------------------------------------- launches


def _check(op: str, G, a_sq, b_sq):
    """G a C-contiguous float (Q, n) matrix, a_sq (Q,) and b_sq (n,) of its dtype, all on one device."""
    if getattr(G, "ndim", 0) != 2 or G.dtype not in FLOATS or not G.flags.c_contiguous:
        raise ValueError(f"{op}: G must be a C-contiguous float32 or float64 (Q, n) matrix, "
                         f"got {getattr(G, 'dtype', type(G).__name__)} of shape {getattr(G, 'shape', None)}")
    for name, v, size in (("a_sq", a_sq, G.shape[0]), ("b_sq", b_sq, G.shape[1])):
        if getattr(v, "shape", None) != (size,) or v.dtype != G.dtype or not v.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be a contiguous {G.dtype} vector of length {size}, "
                             f"got {getattr(v, 'dtype', type(v).__name__)} of shape {getattr(v, 'shape', None)}")
        if device_of(v) != device_of(G):
            raise ValueError(f"{op}: {name} is on {device_of(v)} but G is on {device_of(G)}")


def l2_distances(G, a_sq, b_sq, take_sqrt: bool):
    """The (Q, n) distance matrix from G = A B^T (Q, n) and the squared row norms, in place in G; returns G."""
    _check("l2_distances", G, a_sq, b_sq)
    if device_of(G).type == "cuda":
        _launch_distances(G, a_sq, b_sq, take_sqrt)
    elif G.size:
        distances_cpu(G, a_sq, b_sq, bool(take_sqrt), floor_ulps(G.dtype), G.dtype.type(0))
        blas_pool.parallel_kernel_ran()
    return G


def l2_select(G, a_sq, b_sq, col0: int, take_sqrt: bool, best, last: bool = False) -> None:
    """Merge the distances of the block G = A B^T (Q, n), columns col0 .., into ``best``.

    ``best``: on the CPU a :class:`~gpunn.kernels.topk.Buffers` (one fused pass; G is left as it was), on
    CUDA a :class:`~gpunn.kernels.topk.Best` (G becomes the distances, then the selection kernel).
    ``last`` is accepted for the callers' symmetry with :func:`gpunn.kernels.knn_l1.l1_select`.
    """
    _check("l2_select", G, a_sq, b_sq)
    if best.keys.shape[1] != G.shape[0] or best.keys.dtype != G.dtype:
        raise ValueError(f"l2_select: best holds {best.keys.shape[1]} {best.keys.dtype} lists, "
                         f"G is {G.dtype} {tuple(G.shape)}")
    if device_of(G).type == "cuda":
        _launch_distances(G, a_sq, b_sq, take_sqrt)
        select_cuda(G, best, col0)
    elif G.size:
        with numba.parallel_chunksize(DYNAMIC_ROWS):  # rows handed out as threads free up (see DYNAMIC_ROWS)
            select_cpu(G, a_sq, b_sq, np.int64(col0), floor_ulps(G.dtype), G.dtype.type(0), best.keys, best.raws,
                       best.idx, best.fill, best.limit, np.int64(best.k))
        blas_pool.parallel_kernel_ran()
