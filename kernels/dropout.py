"""Inverted dropout in one pass: mask from a counter-based hash, scale, multiply.

Element i is kept when the top 24 bits of hash(seed, i) reach ``threshold``
(= ceil(p * 2^24)), so the drop probability is p to within 6e-8. The hash (a
SplitMix64 finaliser) depends only on (seed, i): the mask is the same for any
number of threads, on the CPU and on CUDA, and :func:`gpunn.ops.dropout_forward`'s
reference computes exactly the same one. The seed and the offset arrive in a small device
array (``draw``), not as launch arguments: a captured CUDA graph then draws a new mask
each replay from whatever seed was written into that array.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange

from gpunn.ops import HASH_GOLDEN as GOLDEN
from gpunn.ops import HASH_MIX1 as MIX1
from gpunn.ops import HASH_MIX2 as MIX2

S30, S27, S31, S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


def _bits24(seed, i, offset):
    """The top 24 bits of the SplitMix64 hash of (seed, offset + i), as an unsigned integer (all uint64)."""
    z = (np.uint64(i) + offset) * GOLDEN + seed
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    z = z ^ (z >> S31)
    return z >> S40


bits24_scalar = numba.njit(inline="always", cache=True)(_bits24)
bits24_device = cuda.jit(device=True)(_bits24)


@numba.njit(parallel=True, cache=True)
def dropout_cpu(x, out, mask, draw, threshold, scale, zero):
    """mask[i] = scale if kept else 0; out[i] = x[i] * mask[i]; flat arrays. ``draw`` = [seed, offset] (uint64)."""
    seed, offset = draw[0], draw[1]
    for i in prange(x.size):
        m = scale if bits24_scalar(seed, i, offset) >= threshold else zero
        mask[i] = m
        out[i] = x[i] * m


@cuda.jit
def dropout_cuda(x, out, mask, draw, threshold, scale, zero):
    seed, offset = draw[0], draw[1]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        m = scale if bits24_device(seed, i, offset) >= threshold else zero
        mask[i] = m
        out[i] = x[i] * m
