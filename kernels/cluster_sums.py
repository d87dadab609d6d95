"""Per-cluster sums of rows: k-means' update step (the centroids are these sums over the counts).

:func:`reference` is the definition: sums[c] = the sum of the rows X[i] with labels[i] == c (``xp.add.at``,
which NumPy runs one row at a time, the slow part of a k-means iteration). CPU: each thread adds its
share of the rows into its own partial sums, a vector add per row; the partials are added at the end.
CUDA: the rows are put in label order (a sort of the labels), then each thread takes one feature of a run
of 64 sorted rows, adds up each cluster's share in a register and makes one atomic add per cluster it
meets (the order of a cluster's additions varies from run to run, as floating-point atomics do).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange

from . import blas_pool
from .arrays import array_module, device_of
from .launch import clamped_grid as grid
from .launch import run_cuda

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def reference(X, labels, k: int):
    """(k, D) sums of the rows of X (N, D) by their cluster labels (N,) in [0, k), in X's dtype (xp)."""
    xp = array_module(X)
    sums = xp.zeros((k, X.shape[1]), X.dtype)
    xp.add.at(sums, labels, X)
    return sums


@numba.njit(parallel=True, cache=True)
def sums_cpu(X, labels, partials):
    """partials[t] = the sums of thread share t of the rows of X by label (partials (T, k, D), zeroed)."""
    n, d = X.shape
    shares = partials.shape[0]
    for t in prange(shares):
        part = partials[t]
        for i in range(t * n // shares, (t + 1) * n // shares):
            row, out = X[i], part[labels[i]]
            for j in range(d):
                out[j] += row[j]


SUM_ROWS = 64  # sorted rows each CUDA thread adds up in a register before its atomic adds


@cuda.jit(cache=True)
def sums_cuda(X, order, labels, sums, zero):
    """sums[labels[r], j] += X[order[r], j] over the rows r = 0 .. N - 1 in label order (``labels`` sorted, ``order``
    the rows of X in that order). x covers the features (consecutive threads, consecutive features of one row:
    coalesced); y takes runs of SUM_ROWS sorted rows, grid-stride. A thread adds its run's rows of one cluster in
    a register and makes one atomic add per cluster it meets: a few per thread, not one per row on a few addresses.
    ``zero`` in X's dtype."""
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    n, d = X.shape
    if j < d:
        r0 = (cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y) * SUM_ROWS
        while r0 < n:  # a while loop: range with a variable step divides
            r1 = min(n, r0 + SUM_ROWS)
            c = labels[r0]
            acc = zero
            for r in range(r0, r1):
                if labels[r] != c:
                    cuda.atomic.add(sums, (c, j), acc)
                    c = labels[r]
                    acc = zero
                acc += X[order[r], j]
            cuda.atomic.add(sums, (c, j), acc)
            r0 += cuda.gridDim.y * cuda.blockDim.y * SUM_ROWS


def cluster_sums(X, labels, k: int):
    """(k, D) sums of the rows of X (N, D) by label (labels (N,) int64 in [0, k)), on X's device, in X's dtype."""
    if getattr(X, "ndim", 0) != 2 or X.dtype not in FLOATS or not X.flags.c_contiguous:
        raise ValueError(f"cluster_sums: X must be a C-contiguous float32 or float64 matrix, got "
                         f"{getattr(X, 'dtype', type(X).__name__)} of shape {getattr(X, 'shape', None)}")
    if getattr(labels, "shape", None) != (X.shape[0],) or labels.dtype != np.int64 or device_of(labels) != device_of(X):
        raise ValueError(f"cluster_sums: labels must be int64 of shape ({X.shape[0]},) on {device_of(X)}, got "
                         f"{getattr(labels, 'dtype', None)} of shape {getattr(labels, 'shape', None)}")
    xp = array_module(X)
    if device_of(X).type == "cuda":
        sums = xp.zeros((k, X.shape[1]), X.dtype)
        if X.size:
            order = xp.argsort(labels)
            run_cuda(sums_cuda, grid(-(-X.shape[1] // 32), -(-X.shape[0] // (8 * SUM_ROWS))), (32, 8), X, order,
                     labels[order], sums, X.dtype.type(0))
        return sums
    partials = np.zeros((max(1, min(numba.get_num_threads(), X.shape[0])), k, X.shape[1]), X.dtype)
    sums_cpu(X, labels, partials)
    blas_pool.parallel_kernel_ran()
    return partials.sum(axis=0)
