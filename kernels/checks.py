"""What a binding checks before it launches, and how it allocates: written once for every op.

A kernel reads raw memory, so its arguments are checked first: one float dtype, the expected shapes,
C-contiguous, one device. A violation is a ``ValueError`` naming the op and the argument. Outputs are
allocated in the arrays' own namespace, on their device.
"""

from __future__ import annotations

import numpy as np

from .arrays import array_module, device_of

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
HALF = np.dtype(np.float16)  # CUDA kernels take it too (mixed precision); Numba's CPU target has no float16


def compute_dtype(dt) -> np.dtype:
    """The dtype a kernel computes in for arrays of ``dt``: float32 for float16 arrays (loads widened, sums kept
    in float32, results rounded once when stored), the arrays' own dtype otherwise."""
    return np.dtype(np.float32) if dt == HALF else np.dtype(dt)


def cpu_half(a) -> bool:
    """True for a NumPy float16 array: the CPU kernels (Numba) have no float16, so the op runs its NumPy reference."""
    return type(a) is np.ndarray and a.dtype == HALF


def same_arrays(op: str, first, **others) -> np.dtype:
    """All arrays of ``first``'s shape and float dtype, C-contiguous, on one device; returns the dtype.

    float16 is a GPU array's dtype only (mixed precision): a CPU binding declines it first (:func:`cpu_half`).
    """
    dt, kind, shape = first.dtype, type(first), first.shape
    if dt not in FLOATS and not (dt == HALF and kind is not np.ndarray):
        raise ValueError(f"{op}: arrays must be float32 or float64, got {dt} (float16 on a GPU only)")
    for name, a in (("x", first), *others.items()):
        if type(a) is not kind:
            if not isinstance(a, array_module(a).ndarray):
                raise ValueError(f"{op}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
            raise ValueError(f"{op}: {name} is on {device_of(a)} but x is on {device_of(first)}: "
                             "all arrays of one call must share a device")
        if kind is not np.ndarray and a.device != first.device:
            raise ValueError(f"{op}: {name} is on {device_of(a)} but x is on {device_of(first)}: "
                             "all arrays of one call must share a device")
        if a.shape != shape:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
        if a.dtype != dt:
            raise ValueError(f"{op}: {name} has dtype {a.dtype}, expected {dt}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (use xp.ascontiguousarray)")
    return dt


def contiguous(a):
    """Inputs may arrive as strided views: one copy makes them contiguous (outputs are always ours)."""
    return a if a.flags.c_contiguous else array_module(a).ascontiguousarray(a)


def flat(a):
    return a.reshape(-1)


def empty(like, shape, dtype):
    """An uninitialised array in ``like``'s namespace, on its device (the kernel writes every element)."""
    return (np if type(like) is np.ndarray else array_module(like)).empty(shape, dtype)


def out_array(out, like, shape, dtype, op: str):
    """``out``, checked to be C-contiguous, ``dtype``, ``shape`` and on ``like``'s device; a new array if None."""
    if out is None:
        return empty(like, shape, dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous \
            or device_of(out) != device_of(like):
        raise ValueError(f"{op}: out must be a C-contiguous {dtype} array of shape {tuple(shape)} on "
                         f"{device_of(like)}, got {out.dtype} {tuple(out.shape)}")
    return out


def into(out, value):
    """``value``, or ``out`` holding it (checked to fit): a reference's ``out=`` argument."""
    if out is None:
        return value
    if out.shape != value.shape or out.dtype != value.dtype:
        raise ValueError(f"out must be {value.dtype} of shape {tuple(value.shape)}, got {out.dtype} {tuple(out.shape)}")
    out[...] = value
    return out


def small_array(a, x, name: str, wanted: str, fits):
    """``a``, a small array a kernel reads (a flag, the step's scalars), checked: ``fits(a)`` and on x's device."""
    if not isinstance(a, array_module(a).ndarray) or not fits(a):
        raise ValueError(f"{name} must be {wanted}, got {a!r}")
    if device_of(a) != device_of(x):
        raise ValueError(f"{name} is on {device_of(a)} but the arrays it goes with are on {device_of(x)}: "
                         "it must live beside them")
    return a
