"""Fused losses: a classification loss, its gradient and the count of correct rows, in one pass over the scores.

A loss class (``gpunn/nn/losses.py``) holds its formula in ``xp`` code (``value_and_grad``: the reference);
the kernels here compute the same for one row at a time, per row: the mean loss's share, the row of the
gradient of the mean loss, and whether the row's top score (the first, on ties) is its label. On the CPU
one loop over the rows; on CUDA one launch, a thread per row (classes are few: each walks its row), whose
partial sums the last thread to finish adds up in order (:func:`~gpunn.kernels.launch.finished_last`),
so the loss does not depend on which thread ran when. The loss a kernel returns is a 1-element array of
the scores' dtype and the count a 1-element int64 array, both on the scores' device: nothing is read on
the host.

``scale`` (a 1-element array on the device, or None) multiplies the gradient: a mixed-precision Trainer's
loss scale (``gpunn/loss_scaler.py``), folded in here so that scaling costs no launch. The loss value is
never scaled. float16 scores (mixed precision, CUDA) are read into float32: the softmax, its logarithm and
the sums are float32, the loss a float32 value, and only the gradient is stored in float16.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from .arrays import array_module
from .checks import compute_dtype, contiguous, empty, small_array
from .launch import Kernels, clamped_blocks, configured, counters, finished_last
from .op import op

THREADS = 128  # threads per block of a loss launch: a thread per row, a few rows each


# --------------------------------------------------------------------------- one row at a time

@numba.njit(inline="always", cache=True)
def _softmax_row(s, grad, r, label, n_f, zero, one, sc):
    """Row r: its loss -log softmax(s_r)[label], its gradient row (p - onehot) / n times the scale ``sc``
    (``n_f``: the rows, in the compute dtype), and whether argmax == label. Each load is widened (zero + s):
    float16 scores compute in float32."""
    cols = s.shape[1]
    top, best = zero + s[r, 0], 0
    for j in range(1, cols):
        v = zero + s[r, j]
        if v > top:
            top, best = v, j
    total = zero
    for j in range(cols):
        total += math.exp((zero + s[r, j]) - top)
    log_z = math.log(total)
    for j in range(cols):
        p = math.exp((zero + s[r, j]) - top - log_z)
        grad[r, j] = (p - one if j == label else p) / n_f * sc
    return log_z - ((zero + s[r, label]) - top), best == label


_softmax_row_device = cuda.jit(device=True)(_softmax_row.py_func)


@numba.njit(inline="always", cache=True)
def _hinge_row(s, grad, r, label, delta, n_f, zero, one, sc):
    """Row r: sum over j != label of max(0, s_j - s_label + delta), its gradient row / n times ``sc``, and
    argmax == label (loads widened, as in :func:`_softmax_row`)."""
    cols = s.shape[1]
    top, best = zero + s[r, 0], 0
    for j in range(1, cols):
        v = zero + s[r, j]
        if v > top:
            top, best = v, j
    correct_score = zero + s[r, label]
    total, count = zero, zero
    for j in range(cols):
        margin = (zero + s[r, j]) - correct_score + delta
        if j != label and margin > zero:
            total += margin
            count += one
            grad[r, j] = one / n_f * sc
        else:
            grad[r, j] = zero
    grad[r, label] = -count / n_f * sc  # the correct class is pushed once for each violating class
    return total, best == label


_hinge_row_device = cuda.jit(device=True)(_hinge_row.py_func)


# --------------------------------------------------------------------------- the kernels

@numba.njit(cache=True)
def softmax_cross_entropy_cpu(s, y, grad, loss, correct, scale, n_f, zero, one):
    total, right, sc = zero, 0, scale[0]
    for r in range(s.shape[0]):
        value, hit = _softmax_row(s, grad, r, y[r], n_f, zero, one, sc)
        total += value
        right += hit
    loss[0] = total / n_f
    correct[0] = right


@numba.njit(cache=True)
def multiclass_hinge_cpu(s, y, grad, loss, correct, scale, delta, n_f, zero, one):
    total, right, sc = zero, 0, scale[0]
    for r in range(s.shape[0]):
        value, hit = _hinge_row(s, grad, r, y[r], delta, n_f, zero, one, sc)
        total += value
        right += hit
    loss[0] = total / n_f
    correct[0] = right


@cuda.jit(cache=True)
def softmax_cross_entropy_cuda(s, y, grad, loss, correct, scale, parts, hits, done, n_f, zero, one):
    """Thread t takes rows t, t + T, ...; parts[t] and hits[t] hold its sums; the last thread adds them up."""
    t, stride = cuda.grid(1), cuda.gridsize(1)
    n = s.shape[0]
    total, right, sc = zero, 0, scale[0]
    r = t
    while r < n:
        value, hit = _softmax_row_device(s, grad, r, y[r], n_f, zero, one, sc)
        total += value
        right += hit
        r += stride
    parts[t], hits[t] = total, right
    if finished_last(done, 0, stride):
        total, right = zero, 0
        for i in range(stride):
            total += parts[i]
            right += hits[i]
        loss[0] = total / n_f
        correct[0] = right


@cuda.jit(cache=True)
def multiclass_hinge_cuda(s, y, grad, loss, correct, scale, parts, hits, done, delta, n_f, zero, one):
    t, stride = cuda.grid(1), cuda.gridsize(1)
    n = s.shape[0]
    total, right, sc = zero, 0, scale[0]
    r = t
    while r < n:
        value, hit = _hinge_row_device(s, grad, r, y[r], delta, n_f, zero, one, sc)
        total += value
        right += hit
        r += stride
    parts[t], hits[t] = total, right
    if finished_last(done, 0, stride):
        total, right = zero, 0
        for i in range(stride):
            total += parts[i]
            right += hits[i]
        loss[0] = total / n_f
        correct[0] = right


SOFTMAX_CROSS_ENTROPY = Kernels(softmax_cross_entropy_cpu, softmax_cross_entropy_cuda)
MULTICLASS_HINGE = Kernels(multiclass_hinge_cpu, multiclass_hinge_cuda)


# --------------------------------------------------------------------------- the op

@op(min_size={"cpu": 0})
def fused_loss(scores, y, loss, scale=None):
    """(mean loss (0-d), its gradient w.r.t. ``scores``, the number of rows whose top score is their label (0-d)).

    float16 scores are computed in float32: a float32 loss, a float16 gradient.

    Parameters
    ----------
    scores : array of shape (N, C), float16, float32 or float64 (NumPy or CuPy)
        Each row's class scores.
    y : array of shape (N,), integer
        Each row's label, in [0, C), on the scores' device.
    loss : gpunn.nn.Loss
        The loss (``gn.nn.SoftmaxCrossEntropy()``, ``gn.nn.MulticlassHinge()``): its ``value_and_grad``
        is the reference, and its ``kernels`` (a :class:`~gpunn.kernels.launch.Kernels` pair from this
        file, or None) compute the same in one pass.
    scale : array of shape (1,) or None, default=None
        A loss scale on the scores' device whose value multiplies the gradient (where a kernel runs: a
        1-D array of the compute dtype, float32 for float16 scores); None: no scaling.

    Returns
    -------
    loss : 0-d array or scalar
        The mean loss over the rows (float32 for float16 scores).
    grad : array of shape (N, C)
        Its gradient with respect to ``scores`` (times the scale), in the scores' dtype.
    correct : 0-d array or scalar, int64
        How many rows' top score is their label.

    Examples
    --------
    >>> scores = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]], np.float32)
    >>> loss, grad, correct = gn.ops.fused_loss(scores, np.array([0, 1]), gn.nn.SoftmaxCrossEntropy())
    >>> round(float(loss), 4), int(correct)
    (1.2047, 1)
    >>> grad
    array([[-0.1065,  0.0533,  0.0533],
           [ 0.021 , -0.4429,  0.4219]], dtype=float32)
    """
    half = scores.dtype == np.float16
    value, grad, correct = loss.value_and_grad(scores.astype(np.float32) if half else scores, y)
    if scale is not None:
        grad = grad * scale[0]
    return value, grad.astype(np.float16) if half else grad, correct


def _outputs(scores, y):
    """(compute dtype, gradient, loss, count) arrays for a kernel, or None for what no kernel takes."""
    dt = scores.dtype
    takes = dt in (np.float32, np.float64) or (dt == np.float16 and type(scores) is not np.ndarray)
    if not takes or scores.ndim != 2 or y.shape != (scores.shape[0],) or y.dtype.kind not in "iu":
        return None
    ct = compute_dtype(dt)
    return ct, empty(scores, scores.shape, dt), empty(scores, (1,), ct), empty(scores, (1,), np.int64)


def _numbers(scores, ct) -> tuple:
    """(n, 0, 1) in the compute dtype ``ct``: the rows as a float divides the sums, as the reference's mean does."""
    cast = ct.type
    return cast(scores.shape[0]), cast(0), cast(1)


_ONES: dict = {}  # (array type, device, dtype) -> a 1-element one there: the scale of an unscaled gradient


def _scale(scores, ct, scale):
    """``scale`` checked (a 1-element array of the compute dtype beside the scores), or a kept 1 where it is None."""
    if scale is None:
        key = (type(scores), getattr(scores, "device", None), ct)
        if key not in _ONES:
            _ONES[key] = array_module(scores).ones(1, ct)
        return _ONES[key]
    return small_array(scale, scores, "fused_loss: scale", f"a 1-D {ct} array (its first element scales the gradient)",
                       lambda a: a.dtype == ct and a.ndim == 1 and a.size >= 1)


@fused_loss.kernel("cpu")
def _fused_loss_cpu(scores, y, loss, scale=None):
    scores, y = contiguous(scores), contiguous(y)
    made = _outputs(scores, y)
    if loss.kernels is None or made is None:
        return NotImplemented
    ct, grad, value, correct = made
    loss.kernels.cpu(scores, y, grad, value, correct, _scale(scores, ct, scale), *loss.kernel_numbers(ct),
                     *_numbers(scores, ct))
    return value.reshape(()), grad, correct.reshape(())


@fused_loss.kernel("cuda")
def _fused_loss_cuda(scores, y, loss, scale=None):
    scores, y = contiguous(scores), contiguous(y)
    made = _outputs(scores, y)
    if loss.kernels is None or made is None:
        return NotImplemented
    ct, grad, value, correct = made
    sc = _scale(scores, ct, scale)
    blocks = clamped_blocks(scores.shape[0], 4 * THREADS, cap=64)  # about four rows per thread
    xp = array_module(scores)
    parts, hits = xp.empty(blocks * THREADS, ct), xp.empty(blocks * THREADS, np.int64)
    configured(loss.kernels.cuda, blocks, THREADS)(scores, y, grad, value, correct, sc, parts, hits,
                                                   counters(scores, 1), *loss.kernel_numbers(ct), *_numbers(scores, ct))
    return value.reshape(()), grad, correct.reshape(())
