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
"""

from __future__ import annotations

import math
from operator import attrgetter, methodcaller

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module, device_of
from .launch import PARALLEL_MIN_SIZE, THREADS, clamped_blocks, configured, counters, finished_last
from .op import op

CHUNK = 1 << 15  # elements per chunk: a block's 256 threads take 128 each; on the CPU a vectorised run


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
def nonfinite_check(loss, grads: tuple, state) -> None:
    """Count a step in ``state`` (int64 [first bad step, steps counted]) and record it if it is the first whose
    ``loss`` (a 1-element array) or any element of ``grads`` is NaN or infinite, or whose g * g overflows.

    The first bad step sticks (steps count from 1); ``state`` is what the update kernels read to skip.
    """
    xp = array_module(loss)
    bad = ~xp.isfinite(loss.reshape(()))
    for g in grads:
        bad = bad | ~xp.isfinite(g * g).all()
    state[1] += 1
    state[0] = xp.where(bad & (state[0] == 0), state[1], state[0])


@numba.njit(cache=True)
def _check_cpu(grads, table, loss, state):
    bad = not math.isfinite(loss[0])
    for c in range(table.shape[0]):
        g = grads[table[c, 0]]
        for i in range(table[c, 1], table[c, 2]):
            v = g[i]
            bad |= not math.isfinite(v * v)
    state[1] += 1
    if bad and state[0] == 0:
        state[0] = state[1]


@numba.njit(parallel=True, cache=True)
def _check_cpu_parallel(grads, table, loss, state):
    bad = 0
    for c in prange(table.shape[0]):
        g = grads[table[c, 0]]
        found = 0
        for i in range(table[c, 1], table[c, 2]):
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
def _nonfinite_check_cpu(loss, grads, state):
    grads, loss = flat_arrays(grads), loss.reshape(-1)
    table = chunk_table(grads)
    if sum(map(_SIZE, grads)) < PARALLEL_MIN_SIZE:
        _check_cpu(grads, table, loss, state)
    else:
        _check_cpu_parallel(grads, table, loss, state)


@nonfinite_check.kernel("cuda")
def _nonfinite_check_cuda(loss, grads, state):
    grads, loss = flat_arrays(grads), loss.reshape(-1)
    table = chunk_table(grads)
    configured(_check_cuda, *grid(table))(grads, table, loss, state, counters(loss, 2))
