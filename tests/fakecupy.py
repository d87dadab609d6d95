"""A stand-in for CuPy on machines without a GPU, made for one question: does the host read the device?

Arrays wrap NumPy arrays and every operation runs in NumPy, returning wrapped results, so
gpunn's CUDA code paths (``xp`` is this module, arrays are "on cuda:0") run for real. Inside
``cupyx.allow_synchronize(False)``, the switch real CuPy offers, every way of reading an
array's values on the host raises :class:`HostRead`: ``float()``, ``int()``, ``bool()``,
``.item()``, ``.tolist()``, ``.get()``, ``np.asarray(a)``, iteration, boolean-mask indexing
(CuPy must read a mask to size its result) and device synchronisation. Reads that code
makes on purpose go through ``allow_synchronize(True)`` and are counted in ``READS``.

Install with :func:`install` (the ``fake_cuda`` fixture in test_sync_free.py does it).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types

import numpy as np

STRICT = [False]
READS = [0]


class HostRead(RuntimeError):
    """Something read a device array's values on the host while synchronisation was refused."""


def _host_read(what: str) -> None:
    if STRICT[0]:
        raise HostRead(f"host read of a device array: {what}")
    READS[0] += 1


def unwrap(x):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, tuple):
        return tuple(unwrap(i) for i in x)
    if isinstance(x, list):
        return [unwrap(i) for i in x]
    if isinstance(x, dict):
        return {k: unwrap(v) for k, v in x.items()}
    return x


def wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):  # CuPy's reductions give 0-d device arrays, never host scalars
        return ndarray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(wrap(i) for i in x)
    if isinstance(x, list):
        return [wrap(i) for i in x]
    return x


class ndarray(np.lib.mixins.NDArrayOperatorsMixin):  # noqa: N801 (CuPy's name)
    """A "device" array: NumPy underneath, host reads refused while strict."""

    __slots__ = ("_a",)
    device = types.SimpleNamespace(id=0)

    def __init__(self, a: np.ndarray):
        self._a = a

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*unwrap(inputs), **unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return wrap(result)

    def __array__(self, dtype=None, copy=None):
        _host_read("implicit conversion to NumPy")
        return self._a if dtype is None else self._a.astype(dtype)

    def __float__(self):
        _host_read("float()")
        return float(self._a)

    def __int__(self):
        _host_read("int()")
        return int(self._a)

    def __index__(self):
        _host_read("use as an index")
        return int(self._a)

    def __bool__(self):
        _host_read("bool()")
        return bool(self._a)

    def __iter__(self):
        _host_read("iteration")
        return iter(wrap(list(self._a)))

    def item(self, *args):
        _host_read(".item()")
        return self._a.item(*args)

    def tolist(self):
        _host_read(".tolist()")
        return self._a.tolist()

    def get(self, stream=None):
        _host_read(".get()")
        return self._a.copy()

    def set(self, host, stream=None):
        self._a[...] = host

    def __len__(self):
        return len(self._a)

    def __getitem__(self, key):
        key = unwrap(key)
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, np.ndarray) and k.dtype == bool for k in keys):
            _host_read("boolean-mask indexing")
        return wrap(self._a[key])

    def __setitem__(self, key, value):
        self._a[unwrap(key)] = unwrap(value)

    def __getattr__(self, name):  # shape, dtype, T, reshape, sum, astype, copy, flags...
        attr = getattr(self._a, name)
        if callable(attr):
            return functools.wraps(attr)(lambda *a, **k: wrap(attr(*unwrap(a), **unwrap(k))))
        return wrap(attr)

    def __repr__(self):
        return f"fakecupy.ndarray(shape={self._a.shape}, dtype={self._a.dtype})"


def asarray(a, dtype=None):
    """Upload (host to device): allowed at any time, as a copy."""
    return ndarray(np.array(unwrap(a), dtype=dtype, copy=True))


def __getattr__(name):  # every other NumPy function, on wrapped arrays
    obj = getattr(np, name)
    if callable(obj) and not isinstance(obj, type):
        return functools.wraps(obj)(lambda *a, **k: wrap(obj(*unwrap(a), **unwrap(k))))
    return obj


class _Device:
    def __init__(self, index=0):
        self.id = index

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        _host_read("Device.synchronize()")


class _Event:
    def record(self, stream=None):
        pass

    def synchronize(self):
        _host_read("Event.synchronize()")


cuda = types.SimpleNamespace(
    Device=_Device, Event=_Event,
    get_current_stream=lambda: types.SimpleNamespace(ptr=0),
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, memGetInfo=lambda: (8 << 30, 16 << 30),
                                  getDeviceProperties=lambda i: {"name": b"fakecupy", "totalGlobalMem": 16 << 30}),
)


@contextlib.contextmanager
def allow_synchronize(allow: bool):
    previous, STRICT[0] = STRICT[0], not allow
    try:
        yield
    finally:
        STRICT[0] = previous


cupyx = types.ModuleType("cupyx")
cupyx.allow_synchronize = allow_synchronize
cupyx.empty_pinned = lambda shape, dtype=float: np.empty(shape, dtype)


def install(monkeypatch) -> None:
    """Make ``import cupy`` / ``import cupyx`` give these for the rest of a test."""
    monkeypatch.setitem(sys.modules, "cupy", sys.modules[__name__])
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
