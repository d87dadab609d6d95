"""Optimizer updates: SGD (momentum, Nesterov), Adagrad, RMSProp, Adam/AdamW, weights and state in place.

Each rule appears three times, side by side: its reference (``xp`` code on whole arrays, the rule as
the lecture writes it), the same update for one element (``_sgd``, ``_adam``, ...; the same order of
operations, so the kernels match the references to the last bit or nearly), and the CPU and CUDA
kernels that apply it in one pass per parameter.

``weight_decay`` is the L2 strength lambda of the penalty (lambda / 2) ||w||^2: it adds lambda w to
the gradient. ``skip`` (keyword, optional): an int64 array on w's device; where skip[0] != 0 the step
changes nothing. It is read on the device (the Trainer's divergence flag), never on the host, as
PyTorch's fused optimizers read ``found_inf``. ``hyper`` (keyword, optional): the step's scalars as an
array on w's device, in w's dtype, as the rule's ``*_hyper`` function makes them (the same values). The
kernels read their scalars from it: an optimizer keeps one on the device and refills it each step, so
a captured CUDA graph replays with each step's learning rate and bias corrections.
"""

from __future__ import annotations

import functools
import inspect
import math

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module, device_of
from .checks import flat, same_arrays, small_array
from .launch import Kernels, run
from .op import op


def sgd_hyper(lr: float, momentum: float, weight_decay: float) -> tuple:
    return (lr, momentum, weight_decay)


def adagrad_hyper(lr: float, eps: float, weight_decay: float) -> tuple:
    return (lr, eps, weight_decay)


def rmsprop_hyper(lr: float, alpha: float, eps: float, weight_decay: float) -> tuple:
    return (lr, alpha, 1 - alpha, eps, weight_decay)


def adam_hyper(lr: float, beta1: float, beta2: float, eps: float, t: int, weight_decay: float,
               decoupled: bool) -> tuple:
    """(lr / (1 - b1^t), 1 - b2^t, b1, 1 - b1, b2, 1 - b2, eps, L2 decay, decoupled shrink 1 - lr wd)."""
    shrink, wd = (1 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    return (lr / (1 - beta1**t), 1 - beta2**t, beta1, 1 - beta1, beta2, 1 - beta2, eps, wd, shrink)


def _skippable(*mutable: str):
    """Give a reference update a ``skip`` keyword: it then updates copies, committed only where skip[0] == 0."""

    def wrap(ref):
        signature = inspect.signature(ref)

        @functools.wraps(ref)
        def update(*args, skip=None, **kwargs):
            if skip is None:
                return ref(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            targets = {name: bound.arguments[name] for name in mutable if bound.arguments.get(name) is not None}
            for name, a in targets.items():
                bound.arguments[name] = a.copy()
            ref(*bound.args, **bound.kwargs)
            keep = skip[0] == 0  # a 0-d boolean on the device
            for name, a in targets.items():
                array_module(a).copyto(a, bound.arguments[name], where=keep)

        return update

    return wrap


# --------------------------------------------------------------------------- the rules (references)

@op
@_skippable("w", "buf")
def sgd_step(w, g, buf, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
             hyper=None):
    """SGD, optionally with (Nesterov) momentum: buf <- mu buf + g; w <- w - lr (g + mu buf | buf)."""
    if weight_decay:
        g = g + weight_decay * w
    if momentum == 0:
        w -= lr * g
        return
    buf *= momentum
    buf += g
    w -= lr * (g + momentum * buf if nesterov else buf)


@op
@_skippable("w", "sum_sq")
def adagrad_step(w, g, sum_sq, lr: float, eps: float = 1e-10, weight_decay: float = 0.0, hyper=None):
    """Adagrad: sum_sq <- sum_sq + g^2; w <- w - lr g / (sqrt(sum_sq) + eps)."""
    xp = array_module(w)
    if weight_decay:
        g = g + weight_decay * w
    sum_sq += g * g
    w -= lr * g / (xp.sqrt(sum_sq) + eps)


@op
@_skippable("w", "sq_avg")
def rmsprop_step(w, g, sq_avg, lr: float, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 hyper=None):
    """RMSProp: sq_avg <- alpha sq_avg + (1 - alpha) g^2; w <- w - lr g / (sqrt(sq_avg) + eps)."""
    xp = array_module(w)
    if weight_decay:
        g = g + weight_decay * w
    sq_avg *= alpha
    sq_avg += (1 - alpha) * g * g
    w -= lr * g / (xp.sqrt(sq_avg) + eps)


@op
@_skippable("w", "m", "v")
def adam_step(w, g, m, v, lr: float, beta1: float, beta2: float, eps: float, t: int,
              weight_decay: float = 0.0, decoupled: bool = False, hyper=None):
    """Adam (or AdamW when ``decoupled``) step number ``t`` >= 1, with bias-corrected moments.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    Decoupled weight decay shrinks w by lr * lambda first instead of adding lambda w to g.
    """
    xp = array_module(w)
    if weight_decay and decoupled:
        w *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * w
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    bc1 = 1 - beta1**t
    bc2 = 1 - beta2**t
    w -= (lr / bc1) * m / (xp.sqrt(v / bc2) + eps)


# --------------------------------------------------------------------------- the rules, one element at a time
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


# --------------------------------------------------------------------------- kernels: skip first, then one pass

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


@cuda.jit
def sgd_cuda(w, g, b, hyper, nesterov, skip):
    if skip[0] != 0:
        return
    lr, mu, wd = hyper[0], hyper[1], hyper[2]
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        w[i], b[i] = sgd_device(w[i], g[i], b[i], lr, mu, nesterov, wd)


@cuda.jit
def sgd_plain_cuda(w, g, hyper, skip):
    if skip[0] != 0:
        return
    lr, wd = hyper[0], hyper[2]
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        w[i] = w[i] - lr * (g[i] + wd * w[i])


@cuda.jit
def adagrad_cuda(w, g, s, hyper, skip):
    if skip[0] != 0:
        return
    lr, eps, wd = hyper[0], hyper[1], hyper[2]
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        w[i], s[i] = adagrad_device(w[i], g[i], s[i], lr, eps, wd)


@cuda.jit
def rmsprop_cuda(w, g, v, hyper, skip):
    if skip[0] != 0:
        return
    lr, alpha, one_minus_alpha, eps, wd = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        w[i], v[i] = rmsprop_device(w[i], g[i], v[i], lr, alpha, one_minus_alpha, eps, wd)


@cuda.jit
def adam_cuda(w, g, m, v, hyper, skip):
    if skip[0] != 0:
        return
    lr_bc1, bc2, b1, one_minus_b1, b2 = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    one_minus_b2, eps, wd, shrink = hyper[5], hyper[6], hyper[7], hyper[8]
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        w[i], m[i], v[i] = adam_device(w[i], g[i], m[i], v[i], lr_bc1, bc2, b1, one_minus_b1, b2, one_minus_b2,
                                       eps, wd, shrink)


SGD, SGD_PLAIN = Kernels(sgd_cpu, sgd_cuda), Kernels(sgd_plain_cpu, sgd_plain_cuda)
ADAGRAD, RMSPROP, ADAM = Kernels(adagrad_cpu, adagrad_cuda), Kernels(rmsprop_cpu, rmsprop_cuda), Kernels(adam_cpu,
                                                                                                          adam_cuda)


# --------------------------------------------------------------------------- bindings

def _hyper(hyper, w, values: tuple, op_name: str):
    """The step's scalars the kernel reads: the caller's device array (checked), or one made from ``values``."""
    if hyper is None:
        return array_module(w).asarray(np.array(values, dtype=w.dtype))
    return small_array(hyper, w, f"{op_name}: hyper", f"a {w.dtype} array of shape ({len(values)},)",
                       lambda a: a.dtype == w.dtype and a.shape == (len(values),))


_NO_SKIP = {}  # device -> a 1-element int64 zero array on it, for updates called without a skip flag


def _skip_flag(skip, w):
    """The skip flag a kernel reads: the caller's int64 array (checked), or a shared zero on w's device."""
    home = device_of(w)
    if skip is None:
        if home not in _NO_SKIP:
            _NO_SKIP[home] = array_module(w).zeros(1, np.int64)
        return _NO_SKIP[home]
    return small_array(skip, w, "skip", "a 1-D int64 array (skip[0] != 0 skips the update)",
                       lambda a: a.dtype == np.int64 and a.ndim == 1 and a.size >= 1)


@sgd_step.kernel("cpu", "cuda")
def _sgd_step(w, g, buf, lr, momentum=0.0, nesterov=False, weight_decay=0.0, skip=None, hyper=None):
    h = _hyper(hyper, w, sgd_hyper(lr, momentum, weight_decay), "sgd_step")
    if momentum == 0:
        same_arrays("sgd_step", w, g=g)
        run(SGD_PLAIN, w.size, flat(w), flat(g), h, _skip_flag(skip, w))
        return
    same_arrays("sgd_step", w, g=g, buf=buf)
    run(SGD, w.size, flat(w), flat(g), flat(buf), h, bool(nesterov), _skip_flag(skip, w))


@adagrad_step.kernel("cpu", "cuda")
def _adagrad_step(w, g, sum_sq, lr, eps=1e-10, weight_decay=0.0, skip=None, hyper=None):
    same_arrays("adagrad_step", w, g=g, sum_sq=sum_sq)
    h = _hyper(hyper, w, adagrad_hyper(lr, eps, weight_decay), "adagrad_step")
    run(ADAGRAD, w.size, flat(w), flat(g), flat(sum_sq), h, _skip_flag(skip, w))


@rmsprop_step.kernel("cpu", "cuda")
def _rmsprop_step(w, g, sq_avg, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, skip=None, hyper=None):
    same_arrays("rmsprop_step", w, g=g, sq_avg=sq_avg)
    h = _hyper(hyper, w, rmsprop_hyper(lr, alpha, eps, weight_decay), "rmsprop_step")
    run(RMSPROP, w.size, flat(w), flat(g), flat(sq_avg), h, _skip_flag(skip, w))


@adam_step.kernel("cpu", "cuda")
def _adam_step(w, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0, decoupled=False, skip=None, hyper=None):
    same_arrays("adam_step", w, g=g, m=m, v=v)
    h = _hyper(hyper, w, adam_hyper(lr, beta1, beta2, eps, t, weight_decay, decoupled), "adam_step")
    run(ADAM, w.size, flat(w), flat(g), flat(m), flat(v), h, _skip_flag(skip, w))
