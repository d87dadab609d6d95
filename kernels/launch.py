"""Launching a kernel where its arrays live: the CPU kernel on Numba's threads, or the CUDA one on a grid.

A kernel family gives a :class:`Kernels` pair, CPU and CUDA; :func:`run` picks by the first array's
device and launches:

- on the CPU, with as many Numba threads as the work pays for (:func:`cpu_threads`);
- on CUDA, on a grid-stride grid (1-D over ``work`` elements, or a 2-D / 3-D grid over the
  array's own axes, given as ``grid``), on CuPy's current stream, in the device's context (the op's
  dispatch entered it: ``kernels/op.py``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Callable, NamedTuple

import numba
import numpy as np
from numba import cuda

from . import blas_pool

THREADS = 256  # threads per block of a 1-D grid-stride launch
TILE_2D = (32, 8)  # threads per block of 2-D and 3-D launches: x along a row (coalesced), y across rows
MAX_BLOCKS = 65535  # a grid's y and z dimensions
# Grid-stride kernels cover any size with any grid: more blocks than this only add scheduling work
# (a few waves over the largest GPUs' 132 SMs). The simulated GPU lowers it to keep simulation short.
GRID_STRIDE_BLOCKS = 65535
# CPU kernels run in the calling thread below this many elements. Right after a BLAS call NumPy's OpenBLAS
# threads keep spinning, and waking Numba's own pool beside them costs milliseconds (measured: ReLU forward
# + backward on 262K float32 after a GEMM, 1.3 ms on 2 threads against 0.37 ms on 1; on 16M, 40 ms against
# 25 ms). Training calls its kernels between GEMMs.
PARALLEL_MIN_SIZE = 1 << 25


class Kernels(NamedTuple):
    """One kernel compiled for both targets: ``numba.njit`` for the CPU and ``numba.cuda.jit`` for CUDA.

    With ``cpu_parallel`` (the same loop compiled with ``parallel=True``), ``cpu`` is the one-thread
    build, which small work calls directly: no thread-pool calls at all. Without it, ``cpu`` is a
    parallel build whose thread count :func:`cpu_threads` sets.

    Parameters
    ----------
    cpu : callable
        The CPU kernel (``numba.njit``).
    cuda : callable
        The CUDA kernel (``numba.cuda.jit``), taking the same arguments.
    cpu_parallel : callable or None, default=None
        The CPU loop compiled with ``parallel=True``, for large work; None where ``cpu`` is itself
        the parallel build.
    """

    cpu: Callable
    cuda: Callable
    cpu_parallel: Callable | None = None


def run(kernels: Kernels, work: int, *args, grid: tuple | None = None) -> None:
    """Run ``kernels`` on ``args`` where ``args[0]`` lives.

    ``work``: elements of work, which sets the CPU's thread count and a 1-D CUDA grid; ``grid``: the
    CUDA kernel's axes instead, (rows, cols) or (depth, rows, cols), each covered by grid-stride loops.

    Parameters
    ----------
    kernels : Kernels
        The kernel pair.
    work : int
        Elements of work.
    *args
        The kernel's arguments, outputs included; ``args[0]`` is an array whose type (NumPy's or
        CuPy's) picks the kernel.
    grid : tuple of int or None, default=None
        The CUDA grid's axes, (rows, cols) or (depth, rows, cols); None: 1-D over ``work``.
    """
    if isinstance(args[0], np.ndarray):
        if kernels.cpu_parallel is None:
            with cpu_threads(work):
                kernels.cpu(*args)
        elif work < PARALLEL_MIN_SIZE:
            kernels.cpu(*args)
        else:
            with cpu_threads(work):
                kernels.cpu_parallel(*args)
        return
    configured(kernels.cuda, *grid_for(work, grid))(*args)


def grid_for(work: int, grid: tuple | None = None) -> tuple:
    """(blocks, threads per block) of a grid-stride launch: 1-D over ``work`` elements, or 2-D / 3-D over ``grid``.

    Parameters
    ----------
    work : int
        Elements of work, for a 1-D grid.
    grid : tuple of int or None, default=None
        (rows, cols) or (depth, rows, cols); None: 1-D.

    Returns
    -------
    tuple
        (blocks, threads), each an int (1-D) or a tuple (2-D, 3-D), within CUDA's limits.
    """
    if grid is None:
        return _blocks(work, THREADS), THREADS
    if len(grid) == 2:
        return (_blocks(grid[1], TILE_2D[0]), _blocks(grid[0], TILE_2D[1])), TILE_2D
    return (_blocks(grid[2], TILE_2D[0]), _blocks(grid[1], TILE_2D[1]), _blocks(grid[0], 1)), (*TILE_2D, 1)


def run_cuda(kernel, blocks, threads, *args) -> None:
    """Launch a CUDA kernel with a grid of its own (a tiled kernel whose block shape is part of its design).

    Parameters
    ----------
    kernel : numba.cuda dispatcher
        The CUDA kernel.
    blocks : int or tuple of int
        The grid's blocks.
    threads : int or tuple of int
        Threads per block.
    *args
        The kernel's arguments.
    """
    configured(kernel, blocks, threads)(*args)


_CONFIGURED: dict = {}  # (kernel, blocks, threads, stream) -> the kernel configured for that launch


def configured(kernel, blocks, threads):
    """``kernel[blocks, threads, stream]`` on CuPy's current stream, made once per configuration and kept.

    A launch then costs one dictionary lookup before numba-cuda's own argument handling. The number of
    configurations a training run uses is small (one per layer shape and batch size); the table is
    emptied if it ever grows past a few thousand.

    Parameters
    ----------
    kernel : numba.cuda dispatcher
        The CUDA kernel.
    blocks : int or tuple of int
        The grid's blocks.
    threads : int or tuple of int
        Threads per block.

    Returns
    -------
    callable
        The configured kernel: call it with the kernel's arguments to launch.
    """
    stream = current_stream()
    key = (kernel, blocks, threads, stream)
    launcher = _CONFIGURED.get(key)
    if launcher is None:
        if len(_CONFIGURED) > 4096:
            _CONFIGURED.clear()
        with warnings.catch_warnings():
            # numba-cuda warns of any grid under 128 blocks. gpunn sizes each grid to its work: a small layer's
            # kernel is a few blocks because its tensor is small, and more blocks would only idle (the
            # warning is for a grid too small for its work, not for small work). Other code's kernels keep it.
            warnings.simplefilter("ignore", _performance_warning())
            launcher = _CONFIGURED[key] = kernel[blocks, threads, stream]
    return launcher


@functools.cache
def _performance_warning() -> type:
    from numba.cuda.core.errors import NumbaPerformanceWarning

    return NumbaPerformanceWarning


def clamped_grid(*blocks: int) -> tuple:
    """Block counts for :func:`run_cuda` within CUDA's limits (x < 2^31, y and z <= 65535), at least 1 each.

    For kernels whose loops cover what a clamped grid leaves out (kNN's, which size their own grids).

    Parameters
    ----------
    *blocks : int
        Blocks along x, y and z (one to three of them).

    Returns
    -------
    tuple of int
        The same counts, each clamped to [1, its limit].
    """
    limits = (2**31 - 1, MAX_BLOCKS, MAX_BLOCKS)
    return tuple(max(1, min(limit, int(b))) for b, limit in zip(blocks, limits))


def _blocks(extent: int, per_block: int) -> int:
    """Blocks covering ``extent`` at ``per_block`` each: at least 1 (CUDA refuses an empty grid), at most the cap."""
    return max(1, min(GRID_STRIDE_BLOCKS, MAX_BLOCKS, math.ceil(extent / per_block)))


def clamped_blocks(extent: int, per_block: int, cap: int = MAX_BLOCKS) -> int:
    """Blocks along one axis of a grid-stride launch: covering ``extent`` at ``per_block`` each, at most ``cap``.

    Parameters
    ----------
    extent : int
        Elements along the axis.
    per_block : int
        Elements (threads) per block along it.
    cap : int, default=MAX_BLOCKS
        The most blocks.

    Returns
    -------
    int
        At least 1, at most ``cap`` and the grid-stride cap.
    """
    return min(cap, _blocks(extent, per_block))


# --------------------------------------------------------------------------- reductions that end in their launch

@cuda.jit(device=True)
def finished_last(counter, i, total) -> bool:
    """True in the one thread, of the ``total`` threads that call this for ``counter[i]``, that calls it last.

    Each caller has written its part before calling; the fence makes those writes visible to every
    thread before the count includes it, so the last thread may read all the parts and finish the
    reduction in the same launch, in a fixed order (deterministic, unlike atomic float adds). It puts
    ``counter[i]`` back to 0 for the next launch. No block barrier: threads never wait for each other.
    A CUDA device function: called from inside a kernel only.

    Parameters
    ----------
    counter : int32 device array
        The counters (from :func:`counters`), each 0 before its first caller.
    i : int
        Which counter.
    total : int
        How many threads call this for ``counter[i]`` in the launch.

    Returns
    -------
    bool
        True in the last caller only.
    """
    cuda.threadfence()
    if cuda.atomic.add(counter, i, 1) == total - 1:
        counter[i] = 0
        return True
    return False


_COUNTERS: dict = {}  # (device, stream) -> int32 zeros for finished_last, grown as needed


def counters(like, n: int):
    """``n`` zeroed int32 counters on ``like``'s device for :func:`finished_last`, one set per stream.

    Kernels on one stream run one after another, and each leaves its counters at 0: the set is reused.

    Parameters
    ----------
    like : cupy.ndarray
        An array on the device the counters are for.
    n : int
        Counters needed.

    Returns
    -------
    cupy.ndarray
        int32 zeros, at least ``n`` of them, on ``like``'s device.
    """
    key = (like.device.id, current_stream())
    held = _COUNTERS.get(key)
    if held is None or held.size < n:
        import cupy

        held = _COUNTERS[key] = cupy.zeros(max(n, 1024), np.int32)
    return held


_STREAMS: dict = {}  # CuPy stream pointer -> Numba's handle on it: a launch then makes no new object


def current_stream():
    """Numba's handle on CuPy's current stream (Numba's default stream while CuPy's is the null stream).

    Returns
    -------
    numba.cuda.cudadrv.driver.Stream
        The handle, made once per CuPy stream and kept.
    """
    import cupy
    from numba import cuda

    ptr = cupy.cuda.get_current_stream().ptr
    if ptr not in _STREAMS:
        _STREAMS[ptr] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
    return _STREAMS[ptr]


@contextlib.contextmanager
def cpu_threads(n: int, at: int = PARALLEL_MIN_SIZE):
    """Numba's thread count for a kernel over ``n`` elements: 1 below ``at``, all from it.

    The previous count comes back after the block.

    Parameters
    ----------
    n : int
        Elements of work.
    at : int, default=PARALLEL_MIN_SIZE
        The work from which every thread runs: a kernel whose elements cost more than an elementwise
        one's (a memory-bound gather, a sort per row) passes its own, measured.

    Yields
    ------
    int
        The thread count in the block.
    """
    previous = numba.get_num_threads()
    wanted = numba.config.NUMBA_NUM_THREADS if n >= at else 1
    if wanted == previous:  # the usual case in a training loop: no thread-pool calls at all
        yield wanted
    else:
        numba.set_num_threads(wanted)
        try:
            yield wanted
        finally:
            numba.set_num_threads(previous)
    if wanted > 1:  # noted once the kernel is done (a first call compiles first): GEMMs soon after share the pool
        blas_pool.parallel_kernel_ran()
