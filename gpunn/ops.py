"""The dispatch point for gpunn's elementwise work.

Layers and optimizers call these functions and never ask which backend they run
on. Each op has a plain ``xp`` reference implementation, written once for NumPy
and CuPy alike; a faster kernel for one device type (a fused Numba kernel, say)
is plugged in with :func:`register` and is then chosen for arrays on that device.
The reference stays reachable as ``op.reference`` so kernels can be tested against it.

Activations are named: ``"identity"``, ``"relu"``, ``"leaky_relu"``, ``"elu"``,
``"sigmoid"``, ``"tanh"``. Backward passes take the saved *output* ``y``
(for ReLU-family functions its sign is the sign of the input), so a layer caches
one array. Optimizer steps update the weights and their state arrays in place.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from typing import Callable

import numpy as np

from .devices import array_module, device_of

ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh")
KERNEL_OPS = ("activation", "activation_backward", "bias_activation", "bias_activation_backward", "dropout_forward",
              "sgd_step", "adagrad_step", "rmsprop_step", "adam_step")  # those gpunn.kernels accelerates

_KERNELS: dict[tuple[str, str], Callable] = {}
_ENABLED = [True]


@contextlib.contextmanager
def use_kernels(enabled: bool):
    """Within the block, registered kernels are used (True) or every op runs its reference (False)."""
    previous, _ENABLED[0] = _ENABLED[0], bool(enabled)
    try:
        yield
    finally:
        _ENABLED[0] = previous


def register(op_name: str, device_type: str, fn: Callable | None) -> None:
    """Use ``fn`` for ``op_name`` on arrays of ``device_type`` ("cpu" or "cuda"); ``None`` removes it."""
    if op_name not in _OPS:
        raise ValueError(f"unknown op {op_name!r}; known: {sorted(_OPS)}")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device_type must be 'cpu' or 'cuda', got {device_type!r}")
    if fn is None:
        _KERNELS.pop((op_name, device_type), None)
    else:
        _KERNELS[(op_name, device_type)] = fn


def has_kernel(op_name: str, device_type: str) -> bool:
    """True when ``op_name`` runs a registered kernel (not its reference) on ``device_type`` ("cpu"/"cuda")."""
    return _ENABLED[0] and (op_name, device_type) in _KERNELS


def active_kernels() -> dict[str, str]:
    """Which implementation each op uses per device type, e.g. ``{"relu[cpu]": "reference"}``."""
    out = {}
    for name in _OPS:
        for dev in ("cpu", "cuda"):
            fn = _KERNELS.get((name, dev))
            out[f"{name}[{dev}]"] = "reference" if fn is None else f"{fn.__module__}.{fn.__qualname__}"
    return out


_OPS: dict[str, Callable] = {}


def _op(ref: Callable) -> Callable:
    """Turn a reference implementation into an op that dispatches on its first array's device."""
    name = ref.__name__

    @functools.wraps(ref)
    def dispatch(*args, **kwargs):
        fn = _KERNELS.get((name, device_of(args[0]).type), ref) if _ENABLED[0] else ref
        return fn(*args, **kwargs)

    dispatch.reference = ref
    _OPS[name] = dispatch
    return dispatch


# --------------------------------------------------------------------------- matrix products


@_op
def matmul(a, b, out=None):
    """``a @ b`` (NumPy's matmul rules), into ``out`` where given: the one place layers multiply matrices.

    On the CPU the binding runs NumPy's threaded BLAS on Numba's threads (kernels/blas_pool.py), so a
    training step that alternates GEMMs with Numba kernels keeps one thread pool busy, not two.
    """
    return array_module(a).matmul(a, b, out=out)


KERNEL_OPS += ("matmul",)


# --------------------------------------------------------------------------- activations


@_op
def activation(x, kind: str, alpha: float = 0.0):
    """y = f(x) elementwise, same shape and dtype as ``x``. ``alpha``: LeakyReLU slope or ELU scale.

    Written as NumPy users write them, or faster: in place on one fresh buffer, and never with
    ``xp.where`` where a cheaper form computes the same values (NumPy's ``where`` is 6x slower than a multiply).
    """
    xp = array_module(x)
    if kind == "identity":
        return x
    if kind == "relu":
        return xp.maximum(x, 0)
    if kind == "leaky_relu":
        return xp.maximum(x, x * x.dtype.type(alpha))  # for 0 <= alpha < 1: x where x > 0, alpha x elsewhere
    if kind == "elu":
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * x.dtype.type(alpha))
    if kind == "sigmoid":
        # the tanh form never overflows, unlike 1 / (1 + exp(-x)) for large negative x
        half = x.dtype.type(0.5)
        y = x * half
        xp.tanh(y, out=y)
        y *= half
        y += half
        return y
    if kind == "tanh":
        return xp.tanh(x)
    raise ValueError(f"unknown activation {kind!r}; expected one of {ACTIVATIONS}")


@_op
def activation_backward(dout, y, kind: str, alpha: float = 0.0):
    """dx = dout * f'(x), computed from the saved output ``y = f(x)``."""
    xp = array_module(dout)
    if kind == "identity":
        return dout
    if kind == "relu":
        return dout * (y > 0)
    if kind == "leaky_relu":
        return xp.where(y > 0, dout, dout * dout.dtype.type(alpha))
    if kind == "elu":
        # for x <= 0, y = alpha (e^x - 1), so f'(x) = alpha e^x = y + alpha
        return xp.where(y > 0, dout, dout * (y + y.dtype.type(alpha)))
    if kind == "sigmoid":
        dx = 1 - y  # ((1 - y) y) dout, in place on one buffer
        dx *= y
        dx *= dout
        return dx
    if kind == "tanh":
        dx = y * y  # (1 - y^2) dout, in place on one buffer
        xp.subtract(1, dx, out=dx)
        dx *= dout
        return dx
    raise ValueError(f"unknown activation {kind!r}; expected one of {ACTIVATIONS}")


@_op
def bias_activation(z, b, kind: str, alpha: float = 0.0):
    """y = f(z + b) for z of shape (N, M) and b of shape (M,). May reuse ``z``'s memory."""
    z += b
    return activation(z, kind, alpha)


@_op
def bias_activation_backward(dout, y, kind: str, alpha: float = 0.0):
    """(dz, db) for y = f(z + b): dz = dout * f'(z + b), db = dz summed over the batch."""
    dz = activation_backward(dout, y, kind, alpha)
    return dz, dz.sum(axis=0)


# --------------------------------------------------------------------------- dropout


# SplitMix64's constants: shared with the fused kernel (gpunn.kernels.dropout) so both draw the same masks.
HASH_GOLDEN, HASH_MIX1, HASH_MIX2 = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
                                     np.uint64(0x94D049BB133111EB))


def dropout_threshold(p: float) -> int:
    """A unit is kept when its 24 hash bits reach this: the drop probability is threshold / 2^24 ~ p."""
    return math.ceil(p * (1 << 24))


def dropout_keep(xp, n: int, p: float, seed: int, offset: int = 0):
    """Which of n units survive: the top 24 bits of a SplitMix64 hash of (seed, offset + index) >= ceil(p 2^24).

    A counter-based draw: the same (seed, index) gives the same answer on any device
    and for any number of threads, so CPU, CUDA and the fused kernels agree bit for bit.
    ``offset`` shifts the indices: a process holding rows r0.. of a batch draws exactly
    those rows' units of the whole batch's mask (data-parallel training).
    """
    z = (xp.arange(n, dtype=xp.uint64) + np.uint64(offset)) * HASH_GOLDEN + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * HASH_MIX1
    z = (z ^ (z >> np.uint64(27))) * HASH_MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)) >= np.uint64(dropout_threshold(p))


@_op
def dropout_forward(x, p: float, seed: int, offset: int = 0, draw=None):
    """Inverted dropout: (y, mask) with mask in {0, 1/(1-p)}, each unit dropped with probability p.

    ``seed`` (an int in [0, 2^64)) fixes the mask, ``offset`` the index of x's first unit
    in the mask's numbering; see :func:`dropout_keep`. ``draw``: the same two numbers as a
    uint64 array on x's device, which the fused kernels read instead (a layer keeps one and
    rewrites it each step, so a captured CUDA graph replays with each step's seed).
    """
    keep = dropout_keep(array_module(x), x.size, p, seed, offset).reshape(x.shape)
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * mask, mask


@_op
def dropout_backward(dout, mask):
    """dx = dout * mask: the same units are dropped and the same scale applied."""
    return dout * mask


# --------------------------------------------------------------------------- optimizer steps
# Each step updates ``w`` and its state in place. ``weight_decay`` is the L2 strength
# lambda of the penalty (lambda / 2) * ||w||^2, so it adds lambda * w to the gradient.
# ``skip`` (keyword, optional): an int64 array on w's device; where skip[0] != 0 the step
# changes nothing. It is read on the device (the Trainer's divergence flag), never on the host,
# as PyTorch's fused optimizers read ``found_inf``.
# ``hyper`` (keyword, optional): the step's scalars as an array on w's device, in w's dtype, as the
# ``*_hyper`` function of the rule makes them from the numbers (the same values). The fused kernels
# read their scalars from it; an optimizer keeps one on the device and refills it each step, so a
# captured CUDA graph replays with each step's learning rate and bias corrections. References use
# the numbers.


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


@_op
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


@_op
@_skippable("w", "sum_sq")
def adagrad_step(w, g, sum_sq, lr: float, eps: float = 1e-10, weight_decay: float = 0.0, hyper=None):
    """Adagrad: sum_sq <- sum_sq + g^2; w <- w - lr g / (sqrt(sum_sq) + eps)."""
    xp = array_module(w)
    if weight_decay:
        g = g + weight_decay * w
    sum_sq += g * g
    w -= lr * g / (xp.sqrt(sum_sq) + eps)


@_op
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


@_op
@_skippable("w", "m", "v")
def adam_step(
    w, g, m, v, lr: float, beta1: float, beta2: float, eps: float, t: int,
    weight_decay: float = 0.0, decoupled: bool = False, hyper=None,
):
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


# --------------------------------------------------------------------------- convolution and pooling (NCHW)
# Geometry arguments are pairs: kernel (kh, kw), stride (sh, sw), padding (ph, pw).
# Output size along one axis: (size + 2 pad - kernel) // stride + 1.


def pooled_size(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """Output length of a window of ``kernel`` sliding by ``stride`` over ``size`` + 2 ``pad`` values."""
    return (size + 2 * pad - kernel) // stride + 1


def _window(offset: int, count: int, stride: int) -> slice:
    """The ``count`` positions ``offset``, ``offset + stride``, ...: one kernel tap over every output."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


@_op
def im2col(x, kernel, stride, padding, out=None):
    """Patches of x (N, C, H, W) as columns: (C kh kw, N Ho Wo), rows ordered (c, i, j), columns (n, ho, wo).

    Row (c, i, j), column (n, ho, wo) holds x[n, c, ho sh - ph + i, wo sw - pw + j], 0 outside x,
    so ``W.reshape(F, -1) @ cols`` is the convolution as one GEMM. ``out``: a C-contiguous array of that
    shape to write into (returned). The reference copies one strided slice per kernel tap (kh kw copies).
    """
    xp = array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = pooled_size(h, kh, sh, ph), pooled_size(w, kw, sw, pw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, _window(i, ho, sh), _window(j, wo, sw)].transpose(1, 0, 2, 3)
    return _into(out, cols.reshape(c * kh * kw, n * ho * wo))


@_op
def col2im(cols, x_shape, kernel, stride, padding, out=None):
    """The adjoint of :func:`im2col`: sums each column entry back onto the pixel it was copied from.

    ``cols`` (C kh kw, N Ho Wo) -> dx of shape ``x_shape`` (N, C, H, W), in ``cols``'s dtype
    (written into ``out``, C-contiguous, where given).
    """
    xp = array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = pooled_size(h, kh, sh, ph), pooled_size(w, kw, sw, pw)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    dpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dpad[:, :, _window(i, ho, sh), _window(j, wo, sw)] += c6[:, i, j].transpose(1, 0, 2, 3)
    return _into(out, xp.ascontiguousarray(dpad[:, :, ph:ph + h, pw:pw + w]))


@_op
def conv_bias_activation(z, b, out, kind: str, alpha: float = 0.0):
    """The convolution's epilogue: out (N, F, P) = f(z + b) for the GEMM's output z (F, N P); returns ``out``.

    ``b`` is (F,) or None. The GEMM gives channels first; the layer's output is NCHW,
    so this pass also moves the image index to the front.
    """
    f, n = z.shape[0], out.shape[0]
    z3 = z.reshape(f, n, -1)
    if b is not None:
        z3 = z3 + b[:, None, None]
    out[...] = activation(z3, kind, alpha).transpose(1, 0, 2)
    return out


@_op
def conv_bias_activation_backward(dout, y, kind: str, alpha: float = 0.0, out=None):
    """(dz (F, N P), db (F,)) for y = f(z + b) laid out (N, F, P): dz = dout f'(z + b), channels first.

    ``y`` is the saved output (ignored for ``"identity"``); ``out``: a C-contiguous array for dz.
    """
    xp = array_module(dout)
    n, f, _ = dout.shape
    d = dout if kind == "identity" else activation_backward(dout, y, kind, alpha)
    return _into(out, xp.ascontiguousarray(d.transpose(1, 0, 2)).reshape(f, -1)), d.sum(axis=(0, 2))


@_op
def max_pool_forward(x, kernel, stride):
    """(out, argmax) for max pooling x (N, C, H, W) with no padding; both (N, C, Ho, Wo).

    ``argmax`` (int32) is the winning tap i kw + j inside each window: the first maximum
    in row-major order, or the last NaN (a NaN in a window makes its maximum NaN).
    """
    xp = array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = pooled_size(x.shape[2], kh, sh), pooled_size(x.shape[3], kw, sw)
    out, arg = None, None
    for i in range(kh):
        for j in range(kw):
            v = x[:, :, _window(i, ho, sh), _window(j, wo, sw)]
            if out is None:
                out, arg = v.copy(), xp.zeros(v.shape, dtype=xp.int32)
                continue
            take = (v > out) | xp.isnan(v)
            out = xp.where(take, v, out)
            arg = xp.where(take, xp.int32(i * kw + j), arg)
    return xp.ascontiguousarray(out), xp.ascontiguousarray(arg)


@_op
def max_pool_backward(dout, argmax, x_shape, kernel, stride):
    """dx of shape ``x_shape``: each window's upstream gradient routed to its maximum (summed where windows overlap)."""
    xp = array_module(dout)
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = dout.shape[2], dout.shape[3]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, _window(i, ho, sh), _window(j, wo, sw)] += xp.where(argmax == i * kw + j, dout, 0)
    return dx


@_op
def avg_pool_forward(x, kernel, stride, padding):
    """Average pooling of x (N, C, H, W) -> (N, C, Ho, Wo); padded zeros count in the average (PyTorch's default)."""
    xp = array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = pooled_size(x.shape[2], kh, sh, ph), pooled_size(x.shape[3], kw, sw, pw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    out = xp.zeros((*x.shape[:2], ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += xpad[:, :, _window(i, ho, sh), _window(j, wo, sw)]
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


@_op
def avg_pool_backward(dout, x_shape, kernel, stride, padding):
    """dx of shape ``x_shape``: each window's upstream gradient spread evenly over its kh kw taps."""
    xp = array_module(dout)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = dout.shape[2], dout.shape[3]
    share = dout * dout.dtype.type(1.0 / (kh * kw))
    dpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            dpad[:, :, _window(i, ho, sh), _window(j, wo, sw)] += share
    return xp.ascontiguousarray(dpad[:, :, ph:ph + h, pw:pw + w])


KERNEL_OPS += ("im2col", "col2im", "conv_bias_activation", "conv_bias_activation_backward", "max_pool_forward",
               "max_pool_backward")


# --------------------------------------------------------------------------- Winograd F(2x2, 3x3) convolution
# For 3x3, stride-1 convolutions: 4x4 input tiles d (stride 2) and 2x2 output tiles, y = A^T [U (.) B^T d B] A
# with U = G g G^T (kernels/winograd.py has the derivation's matrices). V and M are (16, channels, tiles),
# the 16 ordered (a, b) over the 4x4 positions, tiles (n, tile row, tile column); the 16 GEMMs M = U V
# between the transforms are the layer's.

WINOGRAD_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


# Tile arrays are views of (16, K T + WINOGRAD_ROW_PAD) buffers: with rows exactly K T apart (a power of two for
# the usual sizes) the 16 streams a transform reads or writes fall in the same cache sets, which halved the speed.
WINOGRAD_ROW_PAD = 64


def winograd_buffer(like, k: int, tiles: int, dtype=None):
    """An uninitialised (16, k, tiles) tile array in ``like``'s namespace, each matrix padded (see above)."""
    xp = array_module(like)
    buf = xp.empty((16, k * tiles + WINOGRAD_ROW_PAD), dtype=like.dtype if dtype is None else dtype)
    return buf[:, :k * tiles].reshape(16, k, tiles)


def winograd_matmul(a, b, out=None):
    """a (16, P, Q) @ b (16, Q, T), the 16 GEMMs between the transforms, into ``out`` or a :func:`winograd_buffer`."""
    if out is None:
        out = winograd_buffer(a, a.shape[1], b.shape[2], dtype=np.result_type(a.dtype, b.dtype))
    return matmul(a, b, out=out)


def winograd_tiles(ho: int, wo: int) -> tuple[int, int]:
    """(tile rows, tile columns) covering an Ho x Wo output with 2x2 tiles."""
    return (ho + 1) // 2, (wo + 1) // 2


def _bt(d0, d1, d2, d3):
    """B^T (d0, d1, d2, d3) along one axis of a 4x4 tile."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def _bt_adjoint(v0, v1, v2, v3):
    """B (v0, v1, v2, v3): the transpose of :func:`_bt`."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


def _at(m0, m1, m2, m3):
    """A^T (m0, m1, m2, m3): four tile values down to two outputs."""
    return m0 + m1 + m2, m1 - m2 - m3


def _at_adjoint(p0, p1):
    """A (p0, p1): the transpose of :func:`_at`."""
    return p0, p0 + p1, p0 - p1, -p1


def winograd_weights(w):
    """U (16, F, C) = G g G^T for each 3x3 filter g of w (F, C, 3, 3), in w's dtype."""
    xp = array_module(w)
    g = xp.asarray(WINOGRAD_G, dtype=w.dtype)
    f, c = w.shape[:2]
    u = g @ w @ g.T  # (F, C, 4, 4)
    return xp.ascontiguousarray(u.transpose(2, 3, 0, 1)).reshape(16, f, c)


def winograd_weights_backward(du):
    """dW (F, C, 3, 3) = G^T dU G for the gradient dU (16, F, C) of :func:`winograd_weights`."""
    xp = array_module(du)
    g = xp.asarray(WINOGRAD_G, dtype=du.dtype)
    f, c = du.shape[1:]
    return xp.ascontiguousarray(g.T @ du.reshape(4, 4, f, c).transpose(2, 3, 0, 1) @ g)


@_op
def winograd_input(x, padding, out=None):
    """V (16, C, N th tw): B^T d B for every 4x4 tile d of x (N, C, H, W) zero-padded by ``padding`` (ph, pw).

    Tile (n, r, q) starts at row 2r - ph, column 2q - pw; th, tw = :func:`winograd_tiles` of the 3x3 output size.
    ``out``: a :func:`winograd_buffer` of that shape to write into (returned).
    """
    xp = array_module(x)
    (ph, pw), (n, c, h, w) = padding, x.shape
    th, tw = winograd_tiles(h + 2 * ph - 2, w + 2 * pw - 2)
    pad = xp.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    pad[:, :, ph:ph + h, pw:pw + w] = x
    d = [[pad[:, :, u:u + 2 * th:2, v:v + 2 * tw:2] for v in range(4)] for u in range(4)]
    rows = [_bt(*col) for col in zip(*d)]  # rows[v][a]: B^T down column v
    v = xp.stack([xp.stack(_bt(*(rows[k][a] for k in range(4)))) for a in range(4)])  # (4, 4, N, C, th, tw)
    v = xp.ascontiguousarray(v.transpose(0, 1, 3, 2, 4, 5)).reshape(16, c, n * th * tw)
    return _into(out, v)


@_op
def winograd_input_backward(dv, x_shape, padding, out=None):
    """dx of shape ``x_shape`` for the gradient dV (16, C, N th tw) of :func:`winograd_input`: its adjoint.

    ``out``: a C-contiguous array of ``x_shape`` to write dx into (returned).
    """
    xp = array_module(dv)
    (ph, pw), (n, c, h, w) = padding, x_shape
    th, tw = winograd_tiles(h + 2 * ph - 2, w + 2 * pw - 2)
    v = dv.reshape(4, 4, c, n, th, tw)
    cols = [_bt_adjoint(*(v[k][b] for k in range(4))) for b in range(4)]  # cols[b][u]
    pad = xp.zeros((c, n, 2 * th + 2, 2 * tw + 2), dtype=dv.dtype)
    for u in range(4):
        for vv, part in enumerate(_bt_adjoint(*(cols[b][u] for b in range(4)))):
            pad[:, :, u:u + 2 * th:2, vv:vv + 2 * tw:2] += part
    return _into(out, xp.ascontiguousarray(pad[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)))


@_op
def winograd_output(m, b, out, kind: str, alpha: float = 0.0):
    """out (N, F, Ho, Wo) = f(A^T m A + b) for the tiles m of M (16, F, N th tw), cropped to Ho x Wo; returns out."""
    xp = array_module(m)
    n, f, ho, wo = out.shape
    th, tw = winograd_tiles(ho, wo)
    t = m.reshape(4, 4, f, n, th, tw)
    s = [_at(*(t[a][k] for k in range(4))) for a in range(4)]  # s[a][j]: A across each tile row
    full = xp.empty((f, n, 2 * th, 2 * tw), dtype=m.dtype)
    for j in range(2):
        for i, part in enumerate(_at(*(s[a][j] for a in range(4)))):
            full[:, :, i::2, j::2] = part
    z = full[:, :, :ho, :wo].transpose(1, 0, 2, 3)
    if b is not None:
        z = z + b[:, None, None]
    out[...] = activation(z, kind, alpha)
    return out


@_op
def winograd_output_backward(dout, y, kind: str, alpha: float = 0.0, out=None):
    """(dM (16, F, N th tw), db (F,)) for out = f(A^T m A + b) of :func:`winograd_output`, given dout and out ``y``.

    ``out``: a :func:`winograd_buffer` for dM to write into.
    """
    xp = array_module(dout)
    n, f, ho, wo = dout.shape
    th, tw = winograd_tiles(ho, wo)
    dz = dout if kind == "identity" else activation_backward(dout, y, kind, alpha)
    full = xp.zeros((f, n, 2 * th, 2 * tw), dtype=dout.dtype)
    full[:, :, :ho, :wo] = dz.transpose(1, 0, 2, 3)
    p = [[full[:, :, i::2, j::2] for j in range(2)] for i in range(2)]
    s = [_at_adjoint(p[0][j], p[1][j]) for j in range(2)]  # s[j][a]
    dm = xp.stack([xp.stack(_at_adjoint(s[0][a], s[1][a])) for a in range(4)])  # (4, 4, F, N, th, tw)
    return _into(out, xp.ascontiguousarray(dm).reshape(16, f, n * th * tw)), dz.sum(axis=(0, 2, 3))


def _into(out, value):
    """``value``, or ``out`` holding it (checked to fit)."""
    if out is None:
        return value
    if out.shape != value.shape or out.dtype != value.dtype:
        raise ValueError(f"out must be {value.dtype} of shape {tuple(value.shape)}, got {out.dtype} {tuple(out.shape)}")
    out[...] = value
    return out


KERNEL_OPS += ("winograd_input", "winograd_input_backward", "winograd_output", "winograd_output_backward")


# --------------------------------------------------------------------------- direct convolution (stride 1)
# The input arrives zero-padded; the CPU kernels (kernels/conv_direct.py) build no columns matrix. The references
# are im2col + GEMM, so these ops run on every device and dtype.


@_op
def conv_direct(xpad, w, b, relu: bool = False):
    """y (N, F, Ho, Wo) = the stride-1 correlation of xpad (N, C, H, W) with w (F, C, kh, kw), + b, ReLU if asked.

    Ho = H - kh + 1, Wo = W - kw + 1 (``xpad`` is already padded); ``b`` is (F,) or None.
    """
    xp = array_module(xpad)
    f, _, kh, kw = w.shape
    n, ho, wo = xpad.shape[0], xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1
    z = matmul(w.reshape(f, -1), im2col(xpad, (kh, kw), (1, 1), (0, 0))).reshape(f, n, ho, wo)
    if b is not None:
        z = z + b[:, None, None, None]
    if relu:
        z = activation(z, "relu")
    return xp.ascontiguousarray(z.transpose(1, 0, 2, 3))


@_op
def conv_direct_param_grads(xpad, dy, kernel):
    """(dW (F, C, kh, kw), db (F,)) of :func:`conv_direct` for the upstream gradient dy (N, F, Ho, Wo) of its output."""
    (kh, kw), f = kernel, dy.shape[1]
    cols = im2col(xpad, (kh, kw), (1, 1), (0, 0))
    d = array_module(dy).ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(f, -1)
    return matmul(d, cols.T).reshape(f, xpad.shape[1], kh, kw), d.sum(axis=1)


@_op
def pad_images(x, padding):
    """x (N, C, H, W) with padding = (ph, pw) rows and columns of zeros on each side: (N, C, H + 2 ph, W + 2 pw)."""
    (ph, pw) = padding
    return array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


KERNEL_OPS += ("conv_direct", "conv_direct_param_grads", "pad_images")
