"""Idioms that CuPy refuses, or may refuse, applied to an ``xp`` and an array maker: the conformance probe.

Each idiom is run on real CuPy (arrays over a dummy device pointer, in a process with no GPU: CuPy
refuses a bad idiom before it touches the device, and an idiom it accepts fails only when it reaches
the driver) and on the simulated GPU. Run as a program, it probes the installed real CuPy and prints
the outcomes as JSON.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def _take_into_host(xp, make):
    return np.take(make((4,)), np.arange(2), out=np.empty(2, np.float32))


IDIOMS = {
    "np.asarray(device array)": lambda xp, make: np.asarray(make((4,))),
    "np.array(device array)": lambda xp, make: np.array(make((4,))),
    "device array.__array_interface__": lambda xp, make: make((4,)).__array_interface__,
    "a[...] = NumPy array": lambda xp, make: make((4,)).__setitem__(Ellipsis, np.ones(4, np.float32)),
    "a[0:2] = NumPy array": lambda xp, make: make((4,)).__setitem__(slice(0, 2), np.ones(2, np.float32)),
    "a.fill(NumPy array)": lambda xp, make: make((4,)).fill(np.ones(4, np.float32)),
    "np.take(a, idx, out=host buffer)": _take_into_host,
    "a.set(list)": lambda xp, make: make((4,)).set([1.0, 2.0, 3.0, 4.0]),
    "a.set(other dtype)": lambda xp, make: make((4,)).set(np.ones(4, np.float64)),
    "a.set(other shape)": lambda xp, make: make((4,)).set(np.ones(3, np.float32)),
    "len(0-d array)": lambda xp, make: len(make(())),
    "iter(0-d array)": lambda xp, make: iter(make(())),
    "range(0-d array)": lambda xp, make: range(make((), np.int64)),
    "a.sum(where=...)": lambda xp, make: make((4,)).sum(where=True),
    "xp.sum(a, where=...)": lambda xp, make: xp.sum(make((4,)), where=True),
    "xp.zeros(like=...)": lambda xp, make: xp.zeros((2,), like=make((4,))),
    "a.argsort(kind='stable')": lambda xp, make: make((4,)).argsort(kind="stable"),
    "a.reshape(newshape=...)": lambda xp, make: make((4,)).reshape(newshape=(2, 2)),
    "a.astype(float64, casting='unsafe')": lambda xp, make: make((4,)).astype(np.float64, casting="unsafe"),
    "xp.maximum(a, 0, where=...)": lambda xp, make: xp.maximum(make((4,)), 0, where=True),
    "xp.not_a_cupy_name": lambda xp, make: xp.float_power_of_nothing,
    "a.tofile": lambda xp, make: make((4,)).tofile,
    "a.ptp": lambda xp, make: make((4,)).ptp,
    "a.__index__": lambda xp, make: make((), np.int64).__index__,
    "a.__imatmul__": lambda xp, make: make((2, 2)).__imatmul__,
    "xp.maximum.reduce(a)": lambda xp, make: xp.maximum.reduce(make((4,))),
    "xp.minimum.accumulate(a)": lambda xp, make: xp.minimum.accumulate(make((4,))),
    "xp.multiply.at(a, idx, 2)": lambda xp, make: xp.multiply.at(make((4,)), make((2,), np.int64), 2.0),
    "xp.add.reduce(a)": lambda xp, make: xp.add.reduce(make((4,))),
    "a + list": lambda xp, make: make((2,)) + [1.0, 2.0],
    "a.__dlpack__(stream=None, max_version=(1, 0))": lambda xp, make: make((4,)).__dlpack__(stream=None,
                                                                                            max_version=(1, 0)),
    # the compute types of matrix products (gpunn's TF32 switch): CuPy's refusals, which need no device
    "_core.set_compute_type(int8 dtype, FP32)": lambda xp, make: xp._core.set_compute_type(
        np.dtype(np.int8), xp._core._routines_linalg.COMPUTE_TYPE_FP32),
    "_core.set_compute_type(np.int64, DEFAULT)": lambda xp, make: xp._core.set_compute_type(
        np.int64, xp._core._routines_linalg.COMPUTE_TYPE_DEFAULT),
    "_core.set_compute_type(float32, 99)": lambda xp, make: xp._core.set_compute_type(np.float32, 99),
    "_core.get_compute_type(int64 dtype)": lambda xp, make: xp._core.get_compute_type(np.dtype(np.int64)),
}


def outcome(fn, xp, make) -> str:
    """"ok", "reached the driver" (accepted, then no GPU), or the name of the exception it was refused with."""
    try:
        fn(xp, make)
    except Exception as e:  # noqa: BLE001 (classifying every outcome is the point)
        if "cuda" in type(e).__name__.lower() or "cudaError" in str(e) or "driver" in str(e).lower():
            return "reached the driver"
        return type(e).__name__
    return "ok"


def real_cupy_outcomes() -> dict:
    """Each idiom's outcome on the installed real CuPy, arrays built over a dummy pointer (needs no GPU)."""
    import cupy

    def make(shape, dtype=np.float32):
        size = max(1, int(np.prod(shape))) * np.dtype(dtype).itemsize
        mem = cupy.cuda.UnownedMemory(0x10000, size, owner=None, device_id=0)
        return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(mem, 0))

    return {name: outcome(fn, cupy, make) for name, fn in IDIOMS.items()}


if __name__ == "__main__":
    json.dump(real_cupy_outcomes(), sys.stdout)
