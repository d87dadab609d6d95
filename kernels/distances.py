"""Distance-matrix kernels for k-nearest neighbours: L1 (tiled) and the L2 epilogue.

L1 has no GEMM to lean on: the CPU kernel is cache-blocked (a block of queries
against a tile of training rows that stays in cache) with 1x4 register blocking
(one query element loaded, four training rows updated), and its inner loop over
features vectorises because fast math (reassociation) is allowed: inputs are
checked finite before any kernel runs. The CUDA
kernel tiles both operands through shared memory.

L2 uses the product on BLAS / cuBLAS: ||a||^2 + ||b||^2 - 2 a.b, then one epilogue
pass (add the norms, clamp rounding negatives at 0, square root for "l2").
"""

from __future__ import annotations

import math

import numba
from numba import cuda, prange

# Measured on 2 cores, Q=500, N=5000, D=3072 float32: 0.53 s with these, 0.57-0.64 s with 8-row tiles
# or 8-query blocks; SciPy's cdist takes 5.4 s.
QUERY_BLOCK = 32  # queries sharing one pass over a training tile
TRAIN_TILE = 16  # training rows kept in cache: 16 x 3072 float32 = 192 KB


@numba.njit(parallel=True, cache=True, fastmath=True)
def l1_cpu(A, B, out):
    """out[i, j] = sum_k |A[i, k] - B[j, k]| for A (Q, D), B (N, D), out (Q, N)."""
    Q, D = A.shape
    N = B.shape[0]
    blocks = (Q + QUERY_BLOCK - 1) // QUERY_BLOCK
    for qb in prange(blocks):
        q0, q1 = qb * QUERY_BLOCK, min(Q, (qb + 1) * QUERY_BLOCK)
        for t0 in range(0, N, TRAIN_TILE):
            t1 = min(N, t0 + TRAIN_TILE)
            for i in range(q0, q1):
                a = A[i]
                j = t0
                while j + 4 <= t1:
                    b0, b1, b2, b3 = B[j], B[j + 1], B[j + 2], B[j + 3]
                    s0 = s1 = s2 = s3 = a[0] * 0
                    for k in range(D):
                        ak = a[k]
                        s0 += abs(ak - b0[k])
                        s1 += abs(ak - b1[k])
                        s2 += abs(ak - b2[k])
                        s3 += abs(ak - b3[k])
                    out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = s0, s1, s2, s3
                    j += 4
                while j < t1:
                    bj = B[j]
                    s = a[0] * 0
                    for k in range(D):
                        s += abs(a[k] - bj[k])
                    out[i, j] = s
                    j += 1


@numba.njit(parallel=True, cache=True)
def l2_epilogue_cpu(G, a_sq, b_sq, take_sqrt, floor_ulps):
    """In place on G = A B^T: a_sq[i] + b_sq[j] - 2 G[i, j], 0 below its rounding floor, square-rooted if asked.

    ``floor_ulps`` = L2_FLOOR_ULPS * eps in G's dtype (see gpunn.ops.l2_epilogue).
    """
    Q, N = G.shape
    zero = G[0, 0] * 0
    for i in prange(Q):
        for j in range(N):
            total = a_sq[i] + b_sq[j]
            d = total - (G[i, j] + G[i, j])
            d = d if d > total * floor_ulps else zero
            G[i, j] = math.sqrt(d) if take_sqrt else d


TILE = 16  # CUDA: a 16 x 16 block of outputs per thread block, features staged 16 at a time


@cuda.jit
def l1_cuda(A, B, out):
    """One thread per output; A and B stream through shared-memory tiles of 16 rows x 16 features."""
    a_tile = cuda.shared.array((TILE, TILE), numba.float32)
    # b_tile is read down a column (b_tile[tx, k], tx varying across the warp): rows of TILE + 1 floats put
    # those 16 reads in 16 different banks; rows of 16 would put them in 2 (an 8-way conflict).
    b_tile = cuda.shared.array((TILE, TILE + 1), numba.float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    i = cuda.blockIdx.y * TILE + ty  # query row
    j = cuda.blockIdx.x * TILE + tx  # training row
    Q, D = A.shape
    N = B.shape[0]
    acc = numba.float32(0)
    for k0 in range(0, D, TILE):
        a_tile[ty, tx] = A[i, k0 + tx] if i < Q and k0 + tx < D else 0
        bj = cuda.blockIdx.x * TILE + ty  # the tile's training rows, loaded row by row
        b_tile[ty, tx] = B[bj, k0 + tx] if bj < N and k0 + tx < D else 0
        cuda.syncthreads()
        for k in range(TILE):
            acc += abs(a_tile[ty, k] - b_tile[tx, k])
        cuda.syncthreads()
    if i < Q and j < N:
        out[i, j] = acc


@cuda.jit
def l2_epilogue_cuda(G, a_sq, b_sq, take_sqrt, floor_ulps, zero):
    """A 2-D grid-stride loop (x over columns, y over rows); ``zero`` in G's dtype keeps float32 in float32."""
    j0, i0 = cuda.grid(2)
    js, is_ = cuda.gridsize(2)
    Q, N = G.shape
    i = i0
    while i < Q:  # while, not range: a range with a variable step divides to count its trips
        j = j0
        while j < N:
            total = a_sq[i] + b_sq[j]
            d = total - (G[i, j] + G[i, j])
            d = d if d > total * floor_ulps else zero
            G[i, j] = math.sqrt(d) if take_sqrt else d
            j += js
        i += is_
