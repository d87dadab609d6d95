"""Optimizer updates in one pass per parameter, weights and state updated in place.

The arithmetic follows :mod:`gpunn.ops`'s references term by term (same order of
operations), so CPU results match them to the last bit or nearly; scalars arrive
cast to the arrays' dtype. Every kernel first reads ``skip[0]`` (the Trainer's
divergence flag, on the arrays' device) and changes nothing where it is set, then reads its
scalars from ``hyper`` (an array in the weights' dtype, see ``gpunn.ops.*_hyper``), so nothing
that changes from step to step is baked into a launch (a CUDA graph replays with fresh values). CPU (``numba.njit(parallel=True)``) and CUDA
(``numba.cuda.jit``) kernels share one scalar update function per rule.
"""

from __future__ import annotations

import math

import numba
from numba import cuda, prange


# --------------------------------------------------------------------------- scalar rules
# Each returns the new weight, and the new state values where the rule keeps state.

def _sgd(w, g, b, lr, mu, nesterov, wd):
    """(w, b): SGD with L2 decay wd and (Nesterov) momentum mu; mu = 0 leaves b unused."""
    g = g + wd * w
    if mu == 0:
        return w - lr * g, b
    b = mu * b + g
    return w - lr * (g + mu * b if nesterov else b), b


def _adagrad(w, g, s, lr, eps, wd):
    g = g + wd * w
    s = s + g * g
    return w - lr * g / (math.sqrt(s) + eps), s


def _rmsprop(w, g, v, lr, alpha, one_minus_alpha, eps, wd):
    g = g + wd * w
    v = alpha * v + one_minus_alpha * g * g
    return w - lr * g / (math.sqrt(v) + eps), v


def _adam(w, g, m, v, lr_bc1, bc2, b1, one_minus_b1, b2, one_minus_b2, eps, wd, shrink):
    """Adam; ``shrink`` = 1 - lr wd for decoupled decay (AdamW, then wd = 0), else 1."""
    w = w * shrink
    g = g + wd * w
    m = b1 * m + one_minus_b1 * g
    v = b2 * v + one_minus_b2 * g * g
    return w - lr_bc1 * m / (math.sqrt(v / bc2) + eps), m, v


sgd_scalar, sgd_device = numba.njit(inline="always", cache=True)(_sgd), cuda.jit(device=True)(_sgd)
adagrad_scalar, adagrad_device = numba.njit(inline="always", cache=True)(_adagrad), cuda.jit(device=True)(_adagrad)
rmsprop_scalar, rmsprop_device = numba.njit(inline="always", cache=True)(_rmsprop), cuda.jit(device=True)(_rmsprop)
adam_scalar, adam_device = numba.njit(inline="always", cache=True)(_adam), cuda.jit(device=True)(_adam)


# --------------------------------------------------------------------------- CPU
@numba.njit(parallel=True, cache=True)
def sgd_cpu(w, g, b, hyper, nesterov, skip):
    if skip[0] != 0:
        return
    lr, mu, wd = hyper[0], hyper[1], hyper[2]
    for i in prange(w.size):
        w[i], b[i] = sgd_scalar(w[i], g[i], b[i], lr, mu, nesterov, wd)


@numba.njit(parallel=True, cache=True)
def sgd_plain_cpu(w, g, hyper, skip):
    if skip[0] != 0:
        return
    lr, wd = hyper[0], hyper[2]
    for i in prange(w.size):
        w[i] = w[i] - lr * (g[i] + wd * w[i])


@numba.njit(parallel=True, cache=True)
def adagrad_cpu(w, g, s, hyper, skip):
    if skip[0] != 0:
        return
    lr, eps, wd = hyper[0], hyper[1], hyper[2]
    for i in prange(w.size):
        w[i], s[i] = adagrad_scalar(w[i], g[i], s[i], lr, eps, wd)


@numba.njit(parallel=True, cache=True)
def rmsprop_cpu(w, g, v, hyper, skip):
    if skip[0] != 0:
        return
    lr, alpha, one_minus_alpha, eps, wd = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    for i in prange(w.size):
        w[i], v[i] = rmsprop_scalar(w[i], g[i], v[i], lr, alpha, one_minus_alpha, eps, wd)


@numba.njit(parallel=True, cache=True)
def adam_cpu(w, g, m, v, hyper, skip):
    if skip[0] != 0:
        return
    lr_bc1, bc2, b1, one_minus_b1, b2 = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    one_minus_b2, eps, wd, shrink = hyper[5], hyper[6], hyper[7], hyper[8]
    for i in prange(w.size):
        w[i], m[i], v[i] = adam_scalar(w[i], g[i], m[i], v[i], lr_bc1, bc2, b1, one_minus_b1, b2, one_minus_b2,
                                       eps, wd, shrink)


# --------------------------------------------------------------------------- CUDA
@cuda.jit
def sgd_cuda(w, g, b, hyper, nesterov, skip):
    if skip[0] != 0:
        return
    lr, mu, wd = hyper[0], hyper[1], hyper[2]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, stride):
        w[i], b[i] = sgd_device(w[i], g[i], b[i], lr, mu, nesterov, wd)


@cuda.jit
def sgd_plain_cuda(w, g, hyper, skip):
    if skip[0] != 0:
        return
    lr, wd = hyper[0], hyper[2]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, stride):
        w[i] = w[i] - lr * (g[i] + wd * w[i])


@cuda.jit
def adagrad_cuda(w, g, s, hyper, skip):
    if skip[0] != 0:
        return
    lr, eps, wd = hyper[0], hyper[1], hyper[2]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, stride):
        w[i], s[i] = adagrad_device(w[i], g[i], s[i], lr, eps, wd)


@cuda.jit
def rmsprop_cuda(w, g, v, hyper, skip):
    if skip[0] != 0:
        return
    lr, alpha, one_minus_alpha, eps, wd = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, stride):
        w[i], v[i] = rmsprop_device(w[i], g[i], v[i], lr, alpha, one_minus_alpha, eps, wd)


@cuda.jit
def adam_cuda(w, g, m, v, hyper, skip):
    if skip[0] != 0:
        return
    lr_bc1, bc2, b1, one_minus_b1, b2 = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    one_minus_b2, eps, wd, shrink = hyper[5], hyper[6], hyper[7], hyper[8]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, stride):
        w[i], m[i], v[i] = adam_device(w[i], g[i], m[i], v[i], lr_bc1, bc2, b1, one_minus_b1, b2, one_minus_b2,
                                       eps, wd, shrink)
