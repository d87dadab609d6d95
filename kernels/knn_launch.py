"""Where kNN's CUDA kernels launch: on CuPy's current stream, inside the arrays' device.

Under Numba's CUDA simulator (the tests: NumPy arrays, no CuPy) a launch goes to a simulator stream.
Grids are clamped to the hardware's limits: the kernels loop over what a clamped grid leaves out.
"""

from __future__ import annotations

import numba
from numba import cuda

from gpunn.devices import device_of

MAX_GRID_X = 2**31 - 1
MAX_GRID_YZ = 65535
_STREAMS = {}


def grid(*blocks: int) -> tuple:
    """Block counts within CUDA's grid limits (x < 2^31, y and z <= 65535); at least 1 each."""
    limits = (MAX_GRID_X, MAX_GRID_YZ, MAX_GRID_YZ)
    return tuple(max(1, min(limit, int(b))) for b, limit in zip(blocks, limits))


def launch(kernel, blocks: tuple, threads: tuple, like, *args) -> None:
    """``kernel[blocks, threads]`` on ``like``'s device and CuPy's current stream there."""
    if numba.config.ENABLE_CUDASIM:
        kernel[blocks, threads, cuda.stream()](*args)
        return
    import cupy

    index = device_of(like).index
    with cupy.cuda.Device(index), cuda.gpus[index]:
        ptr = cupy.cuda.get_current_stream().ptr
        key = (index, ptr)
        if key not in _STREAMS:
            _STREAMS[key] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
        kernel[blocks, threads, _STREAMS[key]](*args)
