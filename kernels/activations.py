"""Fused activation kernels: y = f(x), dx = dout * f'(y), and the bias + activation epilogue.

Each activation's arithmetic is written once as a scalar function and compiled
twice: ``numba.njit`` (inlined into parallel CPU loops) and ``numba.cuda.jit``
(a device function called by the CUDA kernels below). The CPU and CUDA kernels
sit side by side. Constants (alpha, 0, 1/2) arrive already cast to the arrays'
dtype, so float32 work stays float32.

Semantics match :mod:`gpunn.ops`'s references exactly, NaN included: backward passes
read the saved output ``y`` (ReLU family: its sign; sigmoid: y (1 - y); tanh: 1 - y^2).
"""

from __future__ import annotations

import math

import numba
from numba import cuda, prange

IDENTITY, RELU, LEAKY_RELU, ELU, SIGMOID, TANH = range(6)
CODES = {"identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU, "elu": ELU, "sigmoid": SIGMOID, "tanh": TANH}


# --------------------------------------------------------------------------- scalar definitions
def _forward(kind, x, a, zero, half):
    """f(x). a: LeakyReLU slope or ELU scale."""
    if kind == RELU:
        return zero if x <= zero else x  # NaN stays NaN, -inf becomes 0, as np.maximum(x, 0)
    if kind == LEAKY_RELU:
        return x if x > zero else x * a
    if kind == ELU:
        return x if x > zero else math.expm1(x) * a
    if kind == SIGMOID:
        return half * math.tanh(x * half) + half  # overflow-free form
    if kind == TANH:
        return math.tanh(x)
    return x


def _backward(kind, g, y, a, zero, half):
    """dout * f'(x), from the output y = f(x)."""
    if kind == RELU:
        return g * (half + half if y > zero else zero)  # as dout * (y > 0): NaN * 0 stays NaN
    if kind == LEAKY_RELU:
        return g if y > zero else g * a
    if kind == ELU:
        return g if y > zero else g * (y + a)
    if kind == SIGMOID:
        return (half + half - y) * y * g  # the reference's order of products
    if kind == TANH:
        return g * (half + half - y * y)
    return g


forward_scalar = numba.njit(inline="always", cache=True)(_forward)
backward_scalar = numba.njit(inline="always", cache=True)(_backward)
forward_device = cuda.jit(device=True)(_forward)
backward_device = cuda.jit(device=True)(_backward)


# --------------------------------------------------------------------------- CPU: numba.njit(parallel=True)
# Each kernel branches on ``kind`` outside its loop, so every loop is a simple one that vectorises.
# (Written once with ``numba.literally(kind)`` instead, the ReLU forward over 16M float32 took 30 ms
# on one thread against 8.4 ms for these unrolled loops: the specialised loop did not vectorise.)

@numba.njit(parallel=True, cache=True)
def forward_cpu(x, out, kind, a, zero, half):
    """out[i] = f(x[i]) for flat arrays of one dtype."""
    n = x.size
    if kind == RELU:
        for i in prange(n):
            out[i] = forward_scalar(RELU, x[i], a, zero, half)
    elif kind == LEAKY_RELU:
        for i in prange(n):
            out[i] = forward_scalar(LEAKY_RELU, x[i], a, zero, half)
    elif kind == ELU:
        for i in prange(n):
            out[i] = forward_scalar(ELU, x[i], a, zero, half)
    elif kind == SIGMOID:
        for i in prange(n):
            out[i] = forward_scalar(SIGMOID, x[i], a, zero, half)
    elif kind == TANH:
        for i in prange(n):
            out[i] = forward_scalar(TANH, x[i], a, zero, half)
    else:
        for i in prange(n):
            out[i] = x[i]


@numba.njit(parallel=True, cache=True)
def backward_cpu(g, y, out, kind, a, zero, half):
    """out[i] = g[i] f'(x[i]) from y[i] = f(x[i]), flat arrays."""
    n = g.size
    if kind == RELU:
        for i in prange(n):
            out[i] = backward_scalar(RELU, g[i], y[i], a, zero, half)
    elif kind == LEAKY_RELU:
        for i in prange(n):
            out[i] = backward_scalar(LEAKY_RELU, g[i], y[i], a, zero, half)
    elif kind == ELU:
        for i in prange(n):
            out[i] = backward_scalar(ELU, g[i], y[i], a, zero, half)
    elif kind == SIGMOID:
        for i in prange(n):
            out[i] = backward_scalar(SIGMOID, g[i], y[i], a, zero, half)
    elif kind == TANH:
        for i in prange(n):
            out[i] = backward_scalar(TANH, g[i], y[i], a, zero, half)
    else:
        for i in prange(n):
            out[i] = g[i]


@numba.njit(parallel=True, cache=True)
def bias_forward_cpu(z, b, out, kind, a, zero, half):
    """out[r, c] = f(z[r, c] + b[c]): the Linear layer's epilogue, one pass."""
    rows, cols = z.shape
    for r in prange(rows):
        for c in range(cols):
            out[r, c] = forward_scalar(kind, z[r, c] + b[c], a, zero, half)


@numba.njit(parallel=True, cache=True)
def bias_backward_cpu(g, y, dz, db_parts, kind, a, zero, half):
    """dz = g f'(y) and per-chunk column sums of dz in one pass; db = db_parts.sum(axis=0)."""
    rows, cols = g.shape
    chunks = db_parts.shape[0]
    per = (rows + chunks - 1) // chunks
    for t in prange(chunks):
        acc = db_parts[t]
        for r in range(t * per, min(rows, (t + 1) * per)):
            for c in range(cols):
                d = backward_scalar(kind, g[r, c], y[r, c], a, zero, half)
                dz[r, c] = d
                acc[c] += d


# --------------------------------------------------------------------------- CUDA: numba.cuda.jit
# Grid-stride loops: any launch size covers any array size.

@cuda.jit
def forward_cuda(x, out, kind, a, zero, half):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        out[i] = forward_device(kind, x[i], a, zero, half)


@cuda.jit
def backward_cuda(g, y, out, kind, a, zero, half):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, g.size, stride):
        out[i] = backward_device(kind, g[i], y[i], a, zero, half)


@cuda.jit
def bias_forward_cuda(z, b, out, kind, a, zero, half):
    """A 2-D grid-stride loop, x over columns (coalesced), y over rows: no integer division per element.

    ``while`` loops, not ``range``: a range with a variable step divides to count its trips, once per row.
    """
    c0, r0 = cuda.grid(2)
    cs, rs = cuda.gridsize(2)
    rows, cols = z.shape
    r = r0
    while r < rows:
        c = c0
        while c < cols:
            out[r, c] = forward_device(kind, z[r, c] + b[c], a, zero, half)
            c += cs
        r += rs


# The bias gradient on CUDA is dz.sum(axis=0) in CuPy after backward_cuda (see bindings): a reduction
# over the rows that CuPy parallelises across the whole GPU. (One thread per column walking the rows,
# as on the CPU, would fill 1 to 16 blocks of a 132-SM GPU for the usual layer widths.)
