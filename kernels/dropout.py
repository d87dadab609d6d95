"""Inverted dropout: the mask from a counter-based hash, scaling and multiply in one pass.

Unit i is kept when the top 24 bits of a SplitMix64 hash of (seed, offset + i) reach
ceil(p 2^24), so the drop probability is p to within 6e-8. The hash depends only on (seed, index):
the mask is the same for any number of threads, on the CPU and on CUDA, and the ``xp`` reference
draws exactly the same one. The seed and offset reach the kernels as launch arguments: a new mask costs
no copy to the device (a copy from ordinary host memory would wait for the GPU).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module
from .checks import compute_dtype, contiguous, cpu_half, empty, flat, same_arrays
from .launch import Kernels, run
from .op import op

# SplitMix64's constants, shared by the reference and the kernels so both draw the same masks.
GOLDEN, MIX1, MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
S30, S27, S31, S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


def dropout_threshold(p: float) -> int:
    """A unit is kept when its 24 hash bits reach this: the drop probability is threshold / 2^24 ~ p.

    Parameters
    ----------
    p : float
        The drop probability, in [0, 1).

    Returns
    -------
    int
        ``ceil(p 2^24)``, in [0, 2^24].

    Examples
    --------
    >>> gn.ops.dropout_threshold(0.5), gn.ops.dropout_threshold(0.0)
    (8388608, 0)
    """
    return math.ceil(p * (1 << 24))


def dropout_keep(xp, n: int, p: float, seed: int, offset: int = 0):
    """Which of n units survive: the top 24 bits of a SplitMix64 hash of (seed, offset + index) >= ceil(p 2^24).

    ``offset`` shifts the indices: a process holding rows r0.. of a batch draws exactly those rows'
    units of the whole batch's mask (data-parallel training).

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``: where the mask is made.
    n : int
        The number of units.
    p : float
        The drop probability, in [0, 1).
    seed : int
        The mask's seed, in [0, 2^64).
    offset : int, default=0
        The index of the first unit in the mask's numbering.

    Returns
    -------
    array of shape (n,), bool
        True for each unit kept.

    Examples
    --------
    >>> gn.ops.dropout_keep(np, 8, 0.5, seed=0)
    array([False,  True, False, False,  True, False, False, False])
    >>> gn.ops.dropout_keep(np, 4, 0.5, seed=0, offset=4)        # the same mask's last four units
    array([ True, False, False, False])
    """
    z = (xp.arange(n, dtype=xp.uint64) + np.uint64(offset)) * GOLDEN + np.uint64(seed)
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    z = z ^ (z >> S31)
    return (z >> S40) >= np.uint64(dropout_threshold(p))


@op
def dropout_forward(x, p: float, seed: int, offset: int = 0):
    """Inverted dropout: (y, mask) with mask in {0, 1/(1-p)}, each unit dropped with probability p.

    Parameters
    ----------
    x : array of any shape, float16, float32 or float64 (NumPy or CuPy)
        The input.
    p : float
        The drop probability, in [0, 1).
    seed : int
        Fixes the mask: an int in [0, 2^64).
    offset : int, default=0
        The index of x's first unit in the mask's numbering (see :func:`dropout_keep`).

    Returns
    -------
    y : array of ``x``'s shape and dtype
        ``x * mask``.
    mask : array of ``x``'s shape and dtype
        0 for a dropped unit, 1 / (1 - p) for a kept one: what :func:`dropout_backward` multiplies by.

    Examples
    --------
    >>> y, mask = gn.ops.dropout_forward(np.ones(8, np.float32), 0.5, seed=0)
    >>> mask
    array([0., 2., 0., 0., 2., 0., 0., 0.], dtype=float32)
    """
    keep = dropout_keep(array_module(x), x.size, p, seed, offset).reshape(x.shape)
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * mask, mask


@op
def dropout_backward(dout, mask):
    """dx = dout * mask: the same units are dropped and the same scale applied.

    Parameters
    ----------
    dout : array, float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to y.
    mask : array of ``dout``'s shape and dtype
        The mask :func:`dropout_forward` returned.

    Returns
    -------
    array of ``dout``'s shape and dtype
        dx.

    Examples
    --------
    >>> mask = np.array([0.0, 2.0, 0.0, 2.0], np.float32)
    >>> gn.ops.dropout_backward(np.full(4, 3.0, np.float32), mask)
    array([0., 6., 0., 6.], dtype=float32)
    """
    return dout * mask


# --------------------------------------------------------------------------- kernels

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
def dropout_cpu(x, out, mask, seed, offset, threshold, scale, zero):
    """mask[i] = scale if kept else 0; out[i] = x[i] * mask[i]; flat arrays. ``seed``, ``offset``: uint64."""
    for i in prange(x.size):
        m = scale if bits24_scalar(seed, i, offset) >= threshold else zero
        mask[i] = m
        out[i] = x[i] * m


@cuda.jit(cache=True)
def dropout_cuda(x, out, mask, seed, offset, threshold, scale, zero):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        m = scale if bits24_device(seed, i, offset) >= threshold else zero
        mask[i] = m
        out[i] = x[i] * m


DROPOUT = Kernels(dropout_cpu, dropout_cuda)


@dropout_forward.kernel("cpu", "cuda")
def _dropout_forward(x, p, seed, offset=0):
    if cpu_half(x):
        return NotImplemented
    x = contiguous(x)
    dt = same_arrays("dropout_forward", x)
    out, mask = empty(x, x.shape, dt), empty(x, x.shape, dt)
    # the scale in the arrays' dtype (the mask holds it: backward multiplies by the same value), widened for float16
    # arrays, whose x * scale is then exact in float32 and rounded once: NumPy's float16 product, bit for bit
    ct = compute_dtype(dt).type
    run(DROPOUT, x.size, flat(x), flat(out), flat(mask), np.uint64(seed), np.uint64(offset),
        np.uint64(dropout_threshold(p)), ct(dt.type(1.0 / (1.0 - p))), ct(0))
    return out, mask
