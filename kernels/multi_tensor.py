"""Many tensors in one launch: the chunk table a multi-tensor kernel walks, and the check that gradients are finite.

A model's parameters are many arrays of different sizes, and one launch per array costs more than the
arithmetic of a small layer. A multi-tensor kernel takes them all at once, as a tuple of flat arrays, with
a table of chunks: row c of ``table`` says which array (``table[c, 0]``) and which of its elements
(``table[c, 1]`` up to ``table[c, 2]``) chunk c covers. On a GPU each block takes chunks in turn; on the
CPU each thread does. The table depends only on the arrays' sizes, so it is made once per model and
kept on its device (:func:`chunk_table`).

``nonfinite_check`` (:func:`gpunn.ops.nonfinite_check`) is the divergence flag's check (``gpunn/divergence.py``): is the loss, or any
element of any gradient, NaN or infinite? One launch reads every gradient once; the thread that finishes
last records the answer (:func:`~gpunn.kernels.launch.finished_last`), so the host never waits for it.

With a loss scaler (mixed precision, ``gpunn/loss_scaler.py``) the same launch is the scaler's too: a
non-finite gradient is then an overflow of the scaled float16 gradients, not divergence, and the last
thread decides the step as PyTorch's ``GradScaler`` does (skip it, halve the scale; or count a good step
and double the scale after ``growth_interval`` of them), writing the decision into the scaler's state
(``SCALE`` ...), which the update kernels read.
"""

from __future__ import annotations

import math
from operator import attrgetter, methodcaller
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module, device_of
from .checks import small_array
from .launch import PARALLEL_MIN_SIZE, THREADS, clamped_blocks, configured, counters, finished_last
from .op import op

CHUNK = 1 << 15  # elements per chunk: a block's 256 threads take 128 each; on the CPU a vectorised run

# The loss scaler's state: one float32 array on the device, [SCALE_SLOTS] long. SCALE: the loss scale for the
# next step; TRACKER: good steps since the scale last changed; INV_SCALE: 1 / the scale this step's gradients
# carry (the update kernels unscale by it); FOUND: 1 where this step's gradients overflowed (the update kernels
# skip it); PENDING: an overflow seen by a check that does not decide (the step's other dtype); IN_A_ROW:
# overflowed steps in a row; SKIPPED: overflowed steps in all. Counts are exact in float32 up to 2^24.
SCALE, TRACKER, INV_SCALE, FOUND, PENDING, IN_A_ROW, SKIPPED, SCALE_SLOTS = range(8)


class ScalerRule(NamedTuple):
    """The loss scaler's hyperparameters as its kernels read them (float32): GradScaler's growth_factor,
    backoff_factor and growth_interval, the overflows in a row that count as divergence, and 0 and 1."""

    growth: np.float32
    backoff: np.float32
    interval: np.float32
    give_up: np.float32
    zero: np.float32
    one: np.float32


def table_rows(sizes: tuple) -> np.ndarray:
    """The chunk table for arrays of ``sizes`` (host, int64 (chunks, 3)): array index, first and end element."""
    rows = [(i, lo, min(lo + CHUNK, n)) for i, n in enumerate(sizes) for lo in range(0, n, CHUNK)]
    return np.array(rows or [(0, 0, 0)], np.int64).reshape(-1, 3)


_TABLES: dict = {}  # (array type, device, chunk, sizes) -> the chunk table on that device


def chunk_table(arrays: tuple):
    """The chunk table of ``arrays`` (flat), on their device: made the first time these sizes are seen, then kept."""
    first = arrays[0]
    key = (type(first), getattr(first, "device", None), CHUNK, tuple(map(_SIZE, arrays)))
    table = _TABLES.get(key)
    if table is None:
        rows = table_rows(key[3])
        table = _TABLES[key] = rows if isinstance(first, np.ndarray) else device_of(first).asarray(rows)
    return table


_FLAT, _SIZE = methodcaller("reshape", -1), attrgetter("size")  # C callables: mapped, they run no Python frame


def flat_arrays(arrays) -> tuple:
    """Each array as a flat view (they are C-contiguous: a view, never a copy)."""
    return tuple(map(_FLAT, arrays))


def grid(table) -> tuple:
    """(blocks, threads) of a multi-tensor launch: a block per chunk, up to the grid-stride cap."""
    return clamped_blocks(table.shape[0], 1), THREADS


# --------------------------------------------------------------------------- the all-finite check

@op(min_size={"cpu": 0})
def nonfinite_check(loss, grads: tuple, state, scaler=None, decide: bool = True) -> None:
    """Count a step in ``state`` (int64 [first bad step, steps counted]) and record it if it is the first whose
    ``loss`` (a 1-element array) or any element of ``grads`` is NaN or infinite, or whose g * g overflows.

    The first bad step sticks (steps count from 1); ``state`` is what the update kernels read to skip.

    ``scaler``: a loss scaler (``state``: its float32 array on the device, laid out as ``SCALE`` ... above;
    ``rule``: a ``ScalerRule``). Then a non-finite gradient is an overflow: recorded in the scaler
    (FOUND, the scale halved), and a bad step for ``state`` only where the loss is not finite or
    ``rule.give_up`` steps in a row overflowed. Gradients of two dtypes (float16, and float32 layers such as
    batchnorm) are checked by two calls: the first with ``decide=False`` only notes an overflow (PENDING).

    Parameters
    ----------
    loss : array of shape (1,), float (NumPy or CuPy)
        The step's loss, on the gradients' device.
    grads : tuple of arrays
        Every gradient of the step, C-contiguous, float16, float32 or float64, on one device.
    state : array of shape (2,), int64
        [first bad step (0: none yet), steps counted], on the same device; updated in place.
    scaler : loss scaler or None, default=None
        An object with ``state`` (its float32 array, ``SCALE_SLOTS`` long) and ``rule`` (a
        :class:`~gpunn.kernels.multi_tensor.ScalerRule`), updated in place; None: no loss scaling.
    decide : bool, default=True
        With a scaler: False only notes an overflow of these gradients (PENDING) for the call that
        decides; ``state`` is then left as it is.

    Examples
    --------
    >>> state = np.zeros(2, np.int64)
    >>> gn.ops.nonfinite_check(np.array([0.5], np.float32), (np.ones(3, np.float32),), state)
    >>> state
    array([0, 1])
    >>> gn.ops.nonfinite_check(np.array([0.5], np.float32), (np.array([np.inf], np.float32),), state)
    >>> state                             # step 2 is the first bad one
    array([2, 2])
    """
    xp = array_module(loss)
    if scaler is None:
        bad = ~xp.isfinite(loss.reshape(()))
        for g in grads:
            g = g.astype(np.float32) if g.dtype == np.float16 else g  # g * g must not overflow float16 itself
            bad = bad | ~xp.isfinite(g * g).all()
        state[1] += 1
        state[0] = xp.where(bad & (state[0] == 0), state[1], state[0])
        return
    st, rule = scaler.state, scaler.rule
    found = st[PENDING] != 0
    for g in grads:
        found = found | ~xp.isfinite(g).all()
    if not decide:
        st[PENDING:PENDING + 1] = found.astype(st.dtype)
        return
    scale, one, zero = st[SCALE], rule.one, rule.zero
    tracker = xp.where(found, zero, st[TRACKER] + one)
    grow = ~found & (tracker >= rule.interval)
    with np.errstate(over="ignore"):  # a growth past float32's range is not made (below), not an error
        grown = scale * rule.growth
    new_scale = xp.where(found, scale * rule.backoff, xp.where(grow & xp.isfinite(grown), grown, scale))
    in_a_row = xp.where(found, st[IN_A_ROW] + one, zero)
    st[...] = xp.stack([new_scale, xp.where(grow, zero, tracker), one / scale, found.astype(st.dtype),
                        xp.zeros((), st.dtype), in_a_row, st[SKIPPED] + found])
    state[1] += 1
    bad = ~xp.isfinite(loss.reshape(())) | (in_a_row >= rule.give_up)
    state[0] = xp.where(bad & (state[0] == 0), state[1], state[0])


def _decide(loss, state, scaler, rule) -> None:
    """The step's decision, made by the last thread of the deciding check (one thread: plain loads and stores)."""
    found = scaler[PENDING] != rule.zero
    scaler[PENDING] = rule.zero
    scale = scaler[SCALE]
    scaler[INV_SCALE] = rule.one / scale
    state[1] += 1
    if found:  # skip the step (the update kernels read FOUND), halve the scale
        scaler[FOUND] = rule.one
        scaler[SCALE] = scale * rule.backoff
        scaler[TRACKER] = rule.zero
        scaler[IN_A_ROW] += rule.one
        scaler[SKIPPED] += rule.one
    else:  # a good step: after growth_interval of them in a row the scale doubles, if it stays finite
        scaler[FOUND] = rule.zero
        scaler[IN_A_ROW] = rule.zero
        tracker = scaler[TRACKER] + rule.one
        if tracker >= rule.interval:
            grown = scale * rule.growth
            if math.isfinite(grown):
                scaler[SCALE] = grown
            tracker = rule.zero
        scaler[TRACKER] = tracker
    if state[0] == 0 and (not math.isfinite(loss[0]) or scaler[IN_A_ROW] >= rule.give_up):
        state[0] = state[1]


_decide_device = cuda.jit(device=True)(_decide)


@cuda.jit(cache=True)
def _scaled_check_cuda(grads, table, loss, state, scaler, scratch, decide, rule):
    """The check of a loss-scaled step: a thread that sees a non-finite gradient (its load widened: float16 to
    float32) notes it in scaler[PENDING]; the last thread to finish decides the step where ``decide``."""
    bad = False
    c = cuda.blockIdx.x
    while c < table.shape[0]:
        g = grads[table[c, 0]]
        i = table[c, 1] + cuda.threadIdx.x
        while i < table[c, 2]:
            if not math.isfinite(rule.zero + g[i]):
                bad = True
            i += cuda.blockDim.x
        c += cuda.gridDim.x
    if bad:
        scaler[PENDING] = rule.one
    if finished_last(scratch, 1, cuda.gridDim.x * cuda.blockDim.x):
        if decide:
            _decide_device(loss, state, scaler, rule)


@numba.njit(cache=True)
def _check_cpu(grads, table, loss, state):
    bad = not math.isfinite(loss[0])
    for c in range(table.shape[0]):
        g = grads[table[c, 0]][table[c, 1]:table[c, 2]]  # views from 0: a loop LLVM vectorises
        for i in range(g.size):
            v = g[i]
            bad |= not math.isfinite(v * v)
    state[1] += 1
    if bad and state[0] == 0:
        state[0] = state[1]


@numba.njit(parallel=True, cache=True)
def _check_cpu_parallel(grads, table, loss, state):
    bad = 0
    for c in prange(table.shape[0]):
        g = grads[table[c, 0]][table[c, 1]:table[c, 2]]
        found = 0
        for i in range(g.size):
            v = g[i]
            found |= not math.isfinite(v * v)
        bad += found
    state[1] += 1
    if (bad or not math.isfinite(loss[0])) and state[0] == 0:
        state[0] = state[1]


@cuda.jit(cache=True)
def _check_cuda(grads, table, loss, state, scratch):
    """Each block takes chunks; a thread that sees a bad element sets scratch[0]; the last thread to finish
    counts the step, records it if it was bad (or the loss is), and clears scratch[0] for the next launch."""
    bad = False
    c = cuda.blockIdx.x
    while c < table.shape[0]:
        g = grads[table[c, 0]]
        i = table[c, 1] + cuda.threadIdx.x
        while i < table[c, 2]:
            v = g[i]
            if not math.isfinite(v * v):
                bad = True
            i += cuda.blockDim.x
        c += cuda.gridDim.x
    if bad:
        scratch[0] = 1
    if finished_last(scratch, 1, cuda.gridDim.x * cuda.blockDim.x):
        state[1] += 1
        if state[0] == 0 and (scratch[0] != 0 or not math.isfinite(loss[0])):
            state[0] = state[1]
        scratch[0] = 0


@nonfinite_check.kernel("cpu")
def _nonfinite_check_cpu(loss, grads, state, scaler=None, decide=True):
    if scaler is not None or grads[0].dtype == np.float16:
        return NotImplemented  # mixed precision runs on a GPU: on the CPU the reference is its definition
    grads, loss = flat_arrays(grads), loss.reshape(-1)
    table = chunk_table(grads)
    if sum(map(_SIZE, grads)) < PARALLEL_MIN_SIZE:
        _check_cpu(grads, table, loss, state)
    else:
        _check_cpu_parallel(grads, table, loss, state)


@nonfinite_check.kernel("cuda")
def _nonfinite_check_cuda(loss, grads, state, scaler=None, decide=True):
    dtypes = {g.dtype for g in grads}
    if len(dtypes) != 1:
        raise ValueError(f"nonfinite_check: the gradients of one call must share a dtype (one launch indexes them "
                         f"as one tuple), got {sorted(map(str, dtypes))}")
    grads, loss = flat_arrays(grads), loss.reshape(-1)
    table = chunk_table(grads)
    if scaler is None:
        if np.float16 in dtypes:
            return NotImplemented  # float16 without a scaler: g * g is squared in float32 by the reference
        configured(_check_cuda, *grid(table))(grads, table, loss, state, counters(loss, 2))
        return
    small_array(scaler.state, loss, "nonfinite_check: scaler.state", f"a float32 array of {SCALE_SLOTS} values",
                lambda a: a.dtype == np.float32 and a.shape == (SCALE_SLOTS,))
    configured(_scaled_check_cuda, *grid(table))(grads, table, loss, state, scaler.state, counters(loss, 2),
                                                 bool(decide), scaler.rule)
