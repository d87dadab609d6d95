"""Euclidean distances from a matrix product: ||a||^2 + ||b||^2 - 2 a.b, alone or with each query's k best.

The product G = A B^T comes from BLAS / cuBLAS (the caller's GEMM, gpunn.ops.matmul); this file holds
what follows it. :func:`l2_distances` turns G into the distance matrix (pairwise distances).
:func:`l2_select` keeps each query's k best of one block of G: on the CPU in one pass fused with the
distances (a vector of distances against the worst of the query's k best, then only the few that beat it
inserted, kernels/topk.py); on CUDA the same distances kernel, then the selection kernel.

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
from .launch import run_cuda
from .simd import lanes, vabove, vadd, vlane, vload, vmask_le, vmask_lt, vmul, vsplat, vsub, vzeros
from .topk import NO_INDEX, Best, push, select_cuda, sort_heap

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
def select_cpu(G, a_sq, b_sq, col0, take_sqrt, floor, zero, last, keys, raws, idx):
    """Push the distances of G (Q, n) (columns col0 ..) into each query's heap keys/raws/idx (parts, Q, k).

    ``floor`` and ``zero`` in G's dtype (a float32 kernel computes in float32 throughout).
    Part p of a query takes the p-th share of the columns (in whole vectors). A vector of raw distances
    (before the square root) is compared with the heap's worst raw value; the lanes below it are pushed.
    Columns come in increasing order within a part, so a distance equal to the worst never enters,
    except into a heap with empty slots. ``last``: this is the queries' last block, and with one part
    each heap is sorted once its row is done (no separate pass over the heaps).
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
        row = G[i]
        qs = a_sq[i]
        vq = vsplat(lanes_like, qs)
        j = j0
        while j + L <= j1:
            g = vload(row, j)
            total = vadd(vq, vload(b_sq, j))
            d = vabove(vsub(total, vadd(g, g)), vmul(total, vfloor))
            mask = vmask_le(d, rb[0]) if ib[0] == NO_INDEX else vmask_lt(d, rb[0])
            while mask:
                lane = trailing_zeros(mask)
                mask &= mask - 1
                r = vlane(d, lane)
                push(kb, rb, ib, np.sqrt(r) if take_sqrt else r, r, col0 + j + lane)
            j += L
        while j < j1:
            total = qs + b_sq[j]
            r = total - (row[j] + row[j])
            r = r if r > total * floor else zero
            push(kb, rb, ib, np.sqrt(r) if take_sqrt else r, r, col0 + j)
            j += 1
        if last and parts == 1:
            sort_heap(kb, rb, ib)


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


def l2_select(G, a_sq, b_sq, col0: int, take_sqrt: bool, best: Best, last: bool = False) -> None:
    """Merge the distances of the block G = A B^T (Q, n), columns col0 .., into ``best`` (kernels/topk.py).

    CPU: one fused pass (G is left as it was). CUDA: G becomes the distances, then the selection kernel.
    ``last``: no later block comes for these queries (the CPU kernel may then sort the heaps).
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
            select_cpu(G, a_sq, b_sq, np.int64(col0), bool(take_sqrt), floor_ulps(G.dtype), G.dtype.type(0),
                       bool(last), best.keys, best.raws, best.idx)
        best.sorted = bool(last) and best.keys.shape[0] == 1
        blas_pool.parallel_kernel_ran()
