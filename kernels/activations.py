"""Activation ops: y = f(x), the gradient through f, and f fused into the bias add of an affine layer.

What each activation computes is defined once, by its gate in ``gpunn/nn/activations.py``: ``f`` and
``df`` in plain ``xp`` code (the references, and what the kernels are tested against), its kernel code
and the two constants its rule reads. The gates register themselves in :data:`ACTIVATIONS`, which the
layers, the classifiers and the command line read too. This file holds the same rules one element at a
time (:func:`_forward`, :func:`_backward`, a branch per kernel code), compiled for the CPU
(``numba.njit(parallel=True)``) and for CUDA (``numba.cuda.jit``), and the ops that run them.

Backward passes read what the gate saved: the output y where f' follows from it (ReLU family: its sign;
sigmoid: y (1 - y); tanh: 1 - y^2), the input x where it does not (GELU). Constants arrive in the
arrays' dtype, so a float32 kernel computes in float32. On the CPU, Numba calls scalar libm ``tanh``
per element where NumPy's is SIMD, so the sigmoid and tanh *forward* passes run NumPy's ``tanh`` in
place (16M float32: 69 ms against 228 ms for the kernel); their backward passes are fused kernels.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda, prange

from .checks import contiguous, empty, flat, same_arrays
from .launch import Kernels, cpu_threads, run
from .op import op

IDENTITY, RELU, LEAKY_RELU, ELU, SIGMOID, TANH, GELU = range(7)
ACTIVATIONS: dict = {}  # name -> gate class (gpunn.nn.activations), registered as each is defined


def register(gate):
    """Add an activation gate (a class with ``name``, ``code``, ``f``, ``df``, ``constants``, ``backward_from``)."""
    ACTIVATIONS[gate.name] = gate
    return gate


def spec(kind: str):
    """The gate class of activation ``kind``; a ValueError naming the known ones otherwise."""
    gate = ACTIVATIONS.get(kind)
    if gate is None:
        raise ValueError(f"unknown activation {kind!r}; expected one of {tuple(ACTIVATIONS)}")
    return gate


# --------------------------------------------------------------------------- the rules, one element at a time
def _forward(kind, x, a, b, zero, half):
    """f(x). a, b: the gate's constants (LeakyReLU's slope, ELU's scale, GELU's two)."""
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
    if kind == GELU:
        return half * x * (half + half + math.tanh(a * (x + b * x * x * x)))
    return x


def _backward(kind, g, s, a, b, zero, half):
    """dout * f'(x), from what the gate saved: s = f(x), or s = x for GELU."""
    if kind == RELU:
        return g * (half + half if s > zero else zero)  # as dout * (y > 0): NaN * 0 stays NaN
    if kind == LEAKY_RELU:
        return g if s > zero else g * a
    if kind == ELU:
        return g if s > zero else g * (s + a)
    if kind == SIGMOID:
        return (half + half - s) * s * g  # the reference's order of products
    if kind == TANH:
        return g * (half + half - s * s)
    if kind == GELU:
        t = math.tanh(a * (s + b * s * s * s))
        return g * (half * (half + half + t) + half * s * (half + half - t * t) * a * (half + half + (b + b + b) * s * s))
    return g


forward_scalar = numba.njit(inline="always", cache=True)(_forward)
backward_scalar = numba.njit(inline="always", cache=True)(_backward)
forward_device = cuda.jit(device=True)(_forward)
backward_device = cuda.jit(device=True)(_backward)


def constants(kind: str, alpha: float, dt) -> tuple:
    """The kernels' trailing arguments for ``kind``: its code, its two constants, 0 and 1/2, in dtype ``dt``."""
    gate = spec(kind)
    a, b = gate.constants(alpha)
    return gate.code, dt.type(a), dt.type(b), dt.type(0), dt.type(0.5)


# --------------------------------------------------------------------------- CPU kernels
# Each branches on ``kind`` outside its loop, so every loop is a simple one that vectorises. (Written once
# with ``numba.literally(kind)`` instead, the ReLU forward over 16M float32 took 30 ms on one thread
# against 8.4 ms for these unrolled loops: the specialised loop did not vectorise.)

@numba.njit(parallel=True, cache=True)
def forward_cpu(x, out, kind, a, b, zero, half):
    """out[i] = f(x[i]) for flat arrays of one dtype."""
    n = x.size
    if kind == RELU:
        for i in prange(n):
            out[i] = forward_scalar(RELU, x[i], a, b, zero, half)
    elif kind == LEAKY_RELU:
        for i in prange(n):
            out[i] = forward_scalar(LEAKY_RELU, x[i], a, b, zero, half)
    elif kind == ELU:
        for i in prange(n):
            out[i] = forward_scalar(ELU, x[i], a, b, zero, half)
    elif kind == SIGMOID:
        for i in prange(n):
            out[i] = forward_scalar(SIGMOID, x[i], a, b, zero, half)
    elif kind == TANH:
        for i in prange(n):
            out[i] = forward_scalar(TANH, x[i], a, b, zero, half)
    elif kind == GELU:
        for i in prange(n):
            out[i] = forward_scalar(GELU, x[i], a, b, zero, half)
    else:
        for i in prange(n):
            out[i] = x[i]


@numba.njit(parallel=True, cache=True)
def backward_cpu(g, s, out, kind, a, b, zero, half):
    """out[i] = g[i] f'(x[i]) from the saved s[i] (y = f(x), or x), flat arrays."""
    n = g.size
    if kind == RELU:
        for i in prange(n):
            out[i] = backward_scalar(RELU, g[i], s[i], a, b, zero, half)
    elif kind == LEAKY_RELU:
        for i in prange(n):
            out[i] = backward_scalar(LEAKY_RELU, g[i], s[i], a, b, zero, half)
    elif kind == ELU:
        for i in prange(n):
            out[i] = backward_scalar(ELU, g[i], s[i], a, b, zero, half)
    elif kind == SIGMOID:
        for i in prange(n):
            out[i] = backward_scalar(SIGMOID, g[i], s[i], a, b, zero, half)
    elif kind == TANH:
        for i in prange(n):
            out[i] = backward_scalar(TANH, g[i], s[i], a, b, zero, half)
    elif kind == GELU:
        for i in prange(n):
            out[i] = backward_scalar(GELU, g[i], s[i], a, b, zero, half)
    else:
        for i in prange(n):
            out[i] = g[i]


@numba.njit(parallel=True, cache=True)
def bias_forward_cpu(z, bias, out, keep_input, kind, a, b, zero, half):
    """out[r, c] = f(z[r, c] + bias[c]) in one pass; with ``keep_input``, z[r, c] becomes z + bias too."""
    rows, cols = z.shape
    for r in prange(rows):
        if keep_input:
            for c in range(cols):
                t = z[r, c] + bias[c]
                z[r, c] = t
                out[r, c] = forward_scalar(kind, t, a, b, zero, half)
        else:
            for c in range(cols):
                out[r, c] = forward_scalar(kind, z[r, c] + bias[c], a, b, zero, half)


@numba.njit(parallel=True, cache=True)
def bias_backward_cpu(g, s, dz, db_parts, kind, a, b, zero, half):
    """dz = g f'(x) and per-chunk column sums of dz in one pass; db = db_parts.sum(axis=0)."""
    rows, cols = g.shape
    chunks = db_parts.shape[0]
    per = (rows + chunks - 1) // chunks
    for t in prange(chunks):
        acc = db_parts[t]
        for r in range(t * per, min(rows, (t + 1) * per)):
            for c in range(cols):
                d = backward_scalar(kind, g[r, c], s[r, c], a, b, zero, half)
                dz[r, c] = d
                acc[c] += d


# --------------------------------------------------------------------------- CUDA kernels: grid-stride loops

@cuda.jit
def forward_cuda(x, out, kind, a, b, zero, half):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        out[i] = forward_device(kind, x[i], a, b, zero, half)


@cuda.jit
def backward_cuda(g, s, out, kind, a, b, zero, half):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, g.size, stride):
        out[i] = backward_device(kind, g[i], s[i], a, b, zero, half)


@cuda.jit
def bias_forward_cuda(z, bias, out, keep_input, kind, a, b, zero, half):
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
            t = z[r, c] + bias[c]
            if keep_input:
                z[r, c] = t
            out[r, c] = forward_device(kind, t, a, b, zero, half)
            c += cs
        r += rs


FORWARD = Kernels(forward_cpu, forward_cuda)
BACKWARD = Kernels(backward_cpu, backward_cuda)
BIAS_FORWARD = Kernels(bias_forward_cpu, bias_forward_cuda)


# --------------------------------------------------------------------------- the ops

@op
def activation(x, kind: str, alpha: float = 0.0):
    """y = f(x) elementwise, same shape and dtype as ``x``: the gate ``kind``'s ``f``. ``alpha``: its parameter."""
    return spec(kind).f(x, alpha)


@op
def activation_backward(dout, saved, kind: str, alpha: float = 0.0):
    """dx = dout * f'(x), from what the gate saved (y = f(x); x where ``backward_from == "input"``)."""
    return spec(kind).df(dout, saved, alpha)


@op
def bias_activation(z, b, kind: str, alpha: float = 0.0):
    """y = f(z + b) for z (N, M) and b (M,), the affine layer's epilogue.

    Where the gate's backward reads its input (``backward_from == "input"``), z holds z + b afterwards
    (what backward needs); elsewhere y may be z itself (the GEMM's fresh output, reused).
    """
    z += b
    if spec(kind).backward_from == "input":
        return spec(kind).f(z, alpha)
    return activation(z, kind, alpha)


@op
def bias_activation_backward(dout, saved, kind: str, alpha: float = 0.0):
    """(dz, db) for y = f(z + b): dz = dout * f'(z + b), db = dz summed over the batch."""
    dz = activation_backward(dout, saved, kind, alpha)
    return dz, dz.sum(axis=0)


HOST_TANH = (SIGMOID, TANH)  # CPU forward passes run NumPy's SIMD tanh instead (see the module docstring)


def numpy_tanh_forward(z, kind: str, out=None):
    """sigmoid or tanh of ``z`` with NumPy's SIMD tanh, in place on ``out`` (a new array by default)."""
    half = z.dtype.type(0.5)
    if kind == "tanh":
        return np.tanh(z, out=out)
    y = np.multiply(z, half, out=out)  # sigmoid(z) = tanh(z / 2) / 2 + 1/2, each step in place
    np.tanh(y, out=y)
    y *= half
    y += half
    return y


@activation.kernel("cpu")
def _activation_cpu(x, kind, alpha=0.0):
    if spec(kind).code in HOST_TANH:
        return numpy_tanh_forward(x, kind)
    return _activation(x, kind, alpha)


@activation.kernel("cuda")
def _activation(x, kind, alpha=0.0):
    if spec(kind).code == IDENTITY:
        return NotImplemented
    x = contiguous(x)
    out = empty(x, x.shape, same_arrays("activation", x))
    run(FORWARD, x.size, flat(x), flat(out), *constants(kind, alpha, x.dtype))
    return out


@activation_backward.kernel("cpu", "cuda")
def _activation_backward(dout, saved, kind, alpha=0.0):
    if spec(kind).code == IDENTITY:
        return NotImplemented
    dout, saved = contiguous(dout), contiguous(saved)
    out = empty(dout, dout.shape, same_arrays("activation_backward", dout, saved=saved))
    run(BACKWARD, dout.size, flat(dout), flat(saved), flat(out), *constants(kind, alpha, dout.dtype))
    return out


@bias_activation.kernel("cpu")
def _bias_activation_cpu(z, b, kind, alpha=0.0):
    if spec(kind).code in HOST_TANH and z.ndim == 2:
        z += _bias(z, b)
        return numpy_tanh_forward(z, kind, out=z)
    return _bias_activation(z, b, kind, alpha)


def _bias(z, b):
    """b, checked to be z's dtype and as long as z's rows."""
    dt = same_arrays("bias_activation", z)
    b = contiguous(b)
    if b.shape != (z.shape[1],) or b.dtype != dt:
        raise ValueError(f"bias_activation: b must be {dt} of shape ({z.shape[1]},), got {b.dtype} {tuple(b.shape)}")
    return b


@bias_activation.kernel("cuda")
def _bias_activation(z, b, kind, alpha=0.0):
    gate = spec(kind)
    if z.ndim != 2 or not z.flags.c_contiguous:
        return NotImplemented
    b, dt = _bias(z, b), z.dtype
    keep = gate.backward_from == "input"
    out = empty(z, z.shape, dt) if keep else z  # in place: z is the GEMM's fresh output
    run(BIAS_FORWARD, z.size, z, b, out, keep, *constants(kind, alpha, dt), grid=z.shape)
    return out


@bias_activation_backward.kernel("cpu")
def _bias_activation_backward_cpu(dout, saved, kind, alpha=0.0):
    if dout.ndim != 2:
        return NotImplemented
    dout, saved = contiguous(dout), contiguous(saved)
    dt = same_arrays("bias_activation_backward", dout, saved=saved)
    dz = np.empty_like(dout)
    with cpu_threads(dout.size) as threads:
        parts = np.zeros((min(threads, dout.shape[0]), dout.shape[1]), dt)  # one partial sum per thread
        bias_backward_cpu(dout, saved, dz, parts, *constants(kind, alpha, dt))
    return dz, parts.sum(axis=0)


@bias_activation_backward.kernel("cuda")
def _bias_activation_backward_cuda(dout, saved, kind, alpha=0.0):
    dz = _activation_backward(dout, saved, kind, alpha)
    if dz is NotImplemented:
        return NotImplemented
    # CuPy's row reduction spreads over the whole GPU; one thread per column walking the rows, as on the
    # CPU, would fill 1 to 16 blocks of a 132-SM GPU for the usual layer widths.
    return dz, dz.sum(axis=0)
