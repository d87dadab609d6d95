"""Per-cluster sums of rows: k-means' update step (the centroids are these sums over the counts).

:func:`reference` is the definition: sums[c] = the sum of the rows X[i] with labels[i] == c (``xp.add.at``,
which NumPy runs one row at a time, the slow part of a k-means iteration). CPU: each thread adds its
share of the rows into its own partial sums, a vector add per row; the partials are added at the end.
CUDA: one thread per (row, feature) adds into the sums with an atomic add (the order of a cluster's
additions varies from run to run, as floating-point atomics do).
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


@cuda.jit
def sums_cuda(X, labels, sums):
    """sums[labels[i], j] += X[i, j]: x over features (one each), y strides over the rows."""
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    i = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    n, d = X.shape
    if j < d:
        while i < n:  # a while loop: range with a variable step divides
            cuda.atomic.add(sums, (labels[i], j), X[i, j])
            i += cuda.gridDim.y * cuda.blockDim.y


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
            run_cuda(sums_cuda, grid(-(-X.shape[1] // 32), -(-X.shape[0] // 8)), (32, 8), X, labels, sums)
        return sums
    partials = np.zeros((max(1, min(numba.get_num_threads(), X.shape[0])), k, X.shape[1]), X.dtype)
    sums_cpu(X, labels, partials)
    blas_pool.parallel_kernel_ran()
    return partials.sum(axis=0)
