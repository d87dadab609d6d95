"""A strict stand-in for CuPy: NumPy memory underneath, CuPy's rules on top.

It exists so that gpunn's CUDA path runs for real on a machine without a GPU, and fails here
wherever it would fail on one. So it refuses everything CuPy refuses, and sometimes more, never less:

- only the names, methods and keyword arguments that real CuPy has (``cupy_api.json``, a snapshot
  of the installed CuPy; ``tests/test_simulated_gpu.py`` holds it to the real one);
- no implicit conversion to NumPy: ``__array__`` raises CuPy's ``TypeError``, there is no
  ``__array_interface__``; NumPy arrays are refused as operands (``TypeError: Unsupported type``),
  as ``out=``, and as values assigned into slices (``ValueError: non-scalar numpy.ndarray cannot be
  used for fill``); NumPy functions on these arrays dispatch through ``__array_function__`` and
  ``__array_ufunc__`` to the CuPy function of the same name, or fail where CuPy has none;
- arrays remember their device; an operation on an array of another device than the current one
  raises CuPy's ``ValueError`` (as real CuPy does between GPUs without peer access);
- reductions give 0-d device arrays, never host scalars;
- inside ``cupyx.allow_synchronize(False)``, every read of device values on the host and every
  synchronisation raises ``cupyx.DeviceSynchronized`` (``float()``, ``.get()``, ``.item()``,
  boolean-mask indexing, ``nonzero``, ``Event.synchronize()``...); outside it they are counted in
  :data:`READS`.

Two devices exist, visible only inside :func:`visible` (outside it the machine looks like one
without a GPU driver, as CI's does), so tests choose when gpunn may see a GPU.

Matrix products compute as cuBLAS does under CuPy's compute types (``cupy._core.set_compute_type``, the
snapshot's private names, with CuPy's refusals): float16 products accumulate in float32 and are rounded
once; float32 ones under ``COMPUTE_TYPE_TF32`` read their inputs rounded to TF32 (10 mantissa bits, to
nearest, ties away from zero, as the hardware's ``cvt.rna.tf32.f32``), so TF32 is visible in results.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import types
from pathlib import Path

import numpy as np

API = json.loads(Path(__file__).with_name("cupy_api.json").read_text())
DEVICES = 2
STRICT = [False]  # inside allow_synchronize(False)
READS = [0]  # host reads made while allowed
_VISIBLE = [0]  # devices the runtime reports: 0 outside visible()
_local = threading.local()


class DeviceSynchronized(RuntimeError):
    """cupyx's error: the host waited for the device inside ``allow_synchronize(False)``."""


class CUDARuntimeError(RuntimeError):
    """cupy.cuda.runtime's error type, with the CUDA status code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- what a GPU would launch
# Each operation is counted as real CuPy would run it: a kernel of its own ("cupy"), a cuBLAS call ("cublas"),
# or no kernel at all: a view (reshape, transpose, a slice), an allocation (empty), a memset (zeros) or a
# copy between buffers (copy, get, set, uploads), counted apart as "memset" and "memcpy". Anything not
# named here computes on the device, so it counts as a kernel: the count errs high, never low.
LAUNCHES = {"cupy": 0, "cublas": 0, "memset": 0, "memcpy": 0}
VIEWS = {"reshape", "ravel", "view", "transpose", "swapaxes", "squeeze", "expand_dims", "broadcast_to", "empty",
         "empty_like", "ndim", "shape", "atleast_1d", "atleast_2d", "moveaxis", "diagonal"}
MEMSETS = {"zeros", "zeros_like"}
COPIES = {"copy", "get", "set", "asarray", "array", "asanyarray", "asnumpy"}
BLAS = {"matmul", "dot", "tensordot", "vdot", "inner", "outer_product"}


def launched(name: str) -> None:
    """Count the operation ``name`` as the GPU would run it (:data:`LAUNCHES`)."""
    kind = ("cublas" if name in BLAS else "memset" if name in MEMSETS else "memcpy" if name in COPIES
            else None if name in VIEWS else "cupy")
    if kind is not None:
        LAUNCHES[kind] += 1


def _host_read(what: str) -> None:
    if STRICT[0]:
        raise DeviceSynchronized(f"host synchronisation on a device array: {what}")
    READS[0] += 1


def current_device() -> int:
    stack = getattr(_local, "devices", None)
    return stack[-1] if stack else 0


# --------------------------------------------------------------------------- operands and results


def _on(dev: int, x):
    """``x``'s NumPy memory, for an operation on device ``dev``: CuPy's rules for what may enter a kernel."""
    if isinstance(x, ndarray):
        if x._device != dev:
            raise ValueError(f"The device where the array resides ({x._device}) is different from the current "
                             f"device ({dev}). Peer access is unavailable between these devices.")
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(_on(dev, i) for i in x)
    return x


def _wrap(dev: int, r, outs=()):
    """Results on device ``dev``: arrays (and NumPy scalars, as 0-d arrays) wrapped; ``out=`` arrays returned as given."""
    for o in outs:
        if r is o._a:
            return o
    if isinstance(r, np.ndarray):
        return ndarray._of(r, dev)
    if isinstance(r, np.generic):
        return ndarray._of(np.asarray(r), dev)
    if isinstance(r, tuple):
        return tuple(_wrap(dev, i, outs) for i in r)
    if isinstance(r, list):
        return [_wrap(dev, i, outs) for i in r]
    return r


def _check_call(name: str, params: dict | None, args, kwargs) -> None:
    """Real CuPy's signature: no more positional arguments, and no keyword, than it takes."""
    if params is None:
        return
    if params["positional"] != -1 and len(args) > params["positional"]:
        raise TypeError(f"{name}() takes at most {params['positional']} positional arguments ({len(args)} given)")
    if not params["varkw"]:
        for k in kwargs:
            if k not in params["keywords"]:
                raise TypeError(f"{name}() got an unexpected keyword argument {k!r}")


def _outs(kwargs) -> tuple:
    out = kwargs.get("out")
    return tuple(o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, ndarray))


# Functions whose result size depends on the data: CuPy reads it on the host.
SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "extract", "compress"}
# CuPy sorts with radix sorts, which are stable: NumPy is asked for its stable sort, so that ties come out as on a GPU.
STABLE = {"sort", "argsort"}
# Keywords CuPy's methods take but refuse any value of (other than None).
UNSUPPORTED = {"astype": ("casting", "subok")}
# Creation functions that take host data (an upload) and so accept NumPy arrays.
UPLOADS = {"asarray", "array", "asanyarray"}


# --------------------------------------------------------------------------- matrix products and compute types

_LINALG = {name: spec["value"] for name, spec in API["private"]["_core._routines_linalg"].items()}
_COMPUTE_TYPES: dict = {}  # compute type index -> the compute type set (CuPy's list, TBD where absent)
_COMPUTE_TYPE_NAMES = {v: k for k, v in _LINALG.items()}


def _compute_type_index(dtype) -> int:
    """CuPy 14's index of a dtype's compute type: float16, float32 (and complex64), float64 (and complex128) only.

    Its TypeError names ``dtype.name`` of what it was given, so a scalar type (np.int8) raises AttributeError there.
    """
    for index, chars in enumerate(("e", "fF", "dD")):
        if np.dtype(dtype).char in chars:
            return index
    raise TypeError(f"dtype is not supported: {dtype.name}")


def set_compute_type(dtype, compute_type):
    """``cupy._core.set_compute_type``, with CuPy 14's checks; TF32 and BF16 need compute capability 8.0 and above
    (the simulated devices are 9.0)."""
    if compute_type not in _COMPUTE_TYPE_NAMES:
        raise ValueError(f"Unknown compute type: {compute_type}")
    _COMPUTE_TYPES[_compute_type_index(dtype)] = compute_type


def get_compute_type(dtype):
    """``cupy._core.get_compute_type``: COMPUTE_TYPE_DEFAULT until set (TF32 for float32 where CUPY_TF32 > 0)."""
    import os

    index = _compute_type_index(dtype)
    if _COMPUTE_TYPES.get(index, _LINALG["COMPUTE_TYPE_TBD"]) == _LINALG["COMPUTE_TYPE_TBD"]:
        tf32 = np.dtype(dtype).char in "fF" and int(os.getenv("CUPY_TF32", "0")) > 0
        set_compute_type(dtype, _LINALG["COMPUTE_TYPE_TF32" if tf32 else "COMPUTE_TYPE_DEFAULT"])
    return _COMPUTE_TYPES[index]


def tf32(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32 (the top 10 of 23 mantissa bits kept, to nearest, ties away from zero)."""
    bits = a.view(np.uint32)
    rounded = ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)
    return np.where(np.isfinite(a), rounded, a)


def _gemm(numpy_fn):
    """A matrix product (``matmul``, ``dot``) as cuBLAS computes it under the current compute types."""

    @functools.wraps(numpy_fn)
    def product(a, b, *args, out=None, **kwargs):
        a, b = np.asarray(a), np.asarray(b)
        dt = np.result_type(a, b)
        if dt == np.float16:  # CUBLAS_COMPUTE_32F for float16 in every compute type CuPy sets
            with np.errstate(over="ignore"):  # a product beyond 65504 rounds to inf on the GPU without a word
                result = numpy_fn(a.astype(np.float32), b.astype(np.float32), *args, **kwargs).astype(np.float16)
        elif dt == np.float32 and get_compute_type(dt) == _LINALG["COMPUTE_TYPE_TF32"]:
            result = numpy_fn(tf32(a.astype(np.float32)), tf32(b.astype(np.float32)), *args, **kwargs)
        else:
            return numpy_fn(a, b, *args, out=out, **kwargs)
        if out is None:
            return result
        np.copyto(out, result)
        return out

    return product


def _function(name: str, numpy_fn, params: dict | None, qualname: str):
    @functools.wraps(numpy_fn)
    def call(*args, **kwargs):
        _check_call(qualname, params, args, kwargs)
        dev = current_device()
        if name in SYNCING:
            _host_read(f"cupy.{name}")
        if name in UPLOADS:
            return _upload(dev, *args, copy_default=name == "array", **kwargs)
        outs = _outs(kwargs)
        kwargs = {**kwargs, "kind": "stable"} if name in STABLE else kwargs
        result = _wrap(dev, numpy_fn(*_on(dev, args), **{k: _on(dev, v) for k, v in kwargs.items()}), outs)
        if name == "ascontiguousarray" and args and isinstance(args[0], ndarray) and args[0]._a.flags.c_contiguous:
            return result  # already contiguous (and of its dtype): CuPy returns it as it is
        launched(name)
        return result

    return call


def _upload(dev: int, a, dtype=None, *args, copy_default=False, **kwargs):
    """cupy.asarray/array: NumPy data is copied to the current device; an array of another device is copied."""
    if isinstance(a, ndarray):
        copy = kwargs.get("copy", args[0] if args and copy_default else None)
        copy = copy_default if copy is None else copy
        if a._device == dev and (dtype is None or np.dtype(dtype) == a.dtype) and not copy:
            return a
        launched("copy" if dtype is None or np.dtype(dtype) == a.dtype else "astype")
        return ndarray._of(np.array(a._a, dtype=dtype, copy=True), dev)
    launched("asarray")
    if isinstance(a, (list, tuple)) and any(isinstance(i, ndarray) for i in a):
        return ndarray._of(np.array([_on(dev, i) for i in a], dtype=dtype), dev)
    return ndarray._of(np.array(a, dtype=dtype, copy=True), dev)


class _Ufunc:
    """A CuPy ufunc: operands checked (arrays and scalars: no lists), ``out`` must be a device array; its methods
    (``reduce``, ``accumulate``, ``reduceat``, ``at``, ``outer``) only where CuPy has them for this ufunc."""

    def __init__(self, name: str, spec: dict):
        self.__name__ = self.name = name
        self._np, self._params = getattr(np, name), spec.get("params")
        self._methods = spec.get("methods", ())

    def __call__(self, *args, **kwargs):
        _check_call(self.name, self._params, args, kwargs)
        _no_sequences(args)
        dev = current_device()
        for o in (kwargs.get("out"),) if not isinstance(kwargs.get("out"), tuple) else kwargs["out"]:
            if o is not None and not isinstance(o, ndarray):
                raise TypeError(f"Output arguments must be cupy.ndarray, got {type(o)}")
        launched(self.name)
        return _wrap(dev, self._np(*_on(dev, args), **{k: _on(dev, v) for k, v in kwargs.items()}), _outs(kwargs))

    def __getattr__(self, method):
        if method not in UFUNC_METHODS:
            raise AttributeError(method)
        fn = getattr(self._np, method)

        def call(*args, **kwargs):
            if method not in self._methods:  # CuPy's own words (tests/simulated_gpu/snapshot.py probes which)
                raise NotImplementedError(f"`cupy_{self.name}.{method}` is not supported yet")
            _no_sequences(args[:1] if method in ("reduce", "accumulate", "reduceat") else args)
            dev = current_device()
            launched(f"{self.name}.{method}")
            return _wrap(dev, fn(*_on(dev, args), **{k: _on(dev, v) for k, v in kwargs.items()}), _outs(kwargs))

        return call

    def __repr__(self):
        return f"<ufunc '{self.name}'>"


UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "at", "outer")


def _no_sequences(operands) -> None:
    """CuPy's ufuncs take arrays and scalars only: a list or tuple operand is ``TypeError: Unsupported type``."""
    for x in operands:
        if isinstance(x, (list, tuple)):
            raise TypeError(f"Unsupported type {type(x)}")


# --------------------------------------------------------------------------- the array

_OPERATORS = {  # dunder -> ufunc
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide", "floordiv": "floor_divide",
    "mod": "remainder", "pow": "power", "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "lshift": "left_shift", "rshift": "right_shift", "matmul": "matmul",
}
_COMPARISONS = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "eq": "equal",
                "ne": "not_equal"}


class ndarray:  # noqa: N801 (CuPy's name)
    """A device array: a NumPy array as its memory, the device it lives on, CuPy's rules."""

    __slots__ = ("_a", "_device", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the simulated GPU makes arrays from a shape only")
        self._a, self._device = np.empty(shape, dtype, order=order), current_device()

    @classmethod
    def _of(cls, a: np.ndarray, dev: int) -> "ndarray":
        assert isinstance(a, np.ndarray), type(a)
        obj = cls.__new__(cls)
        obj._a, obj._device = a, dev
        return obj

    # ---- conversions CuPy refuses or makes explicit
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        spec = API["cupy"][""].get(ufunc.__name__)
        if spec is None or spec["kind"] != "ufunc":
            return NotImplemented
        u = _Ufunc(ufunc.__name__, spec)
        return u(*inputs, **kwargs) if method == "__call__" else getattr(u, method)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        module = func.__module__.split(".")[1:] if func.__module__ else []
        try:
            fn = functools.reduce(lambda ns, part: getattr(ns, part), module, _MODULE)
            fn = getattr(fn, func.__name__)
        except AttributeError:
            return NotImplemented
        return fn(*args, **kwargs)

    # ---- the exports numba-cuda reads to type and pass a kernel argument (CuPy 14's signatures, in the snapshot)
    @property
    def __cuda_array_interface__(self):
        contiguous = self._a.flags.c_contiguous
        stream = get_current_stream(self._device).ptr or 1  # CuPy names its null stream CUDA's legacy stream, 1
        return {"shape": self._a.shape, "typestr": self._a.dtype.str, "descr": [("", self._a.dtype.str)],
                "data": (self._a.ctypes.data, False), "strides": None if contiguous else self._a.strides,
                "version": 3, "stream": stream}

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule of the memory (host memory here, which a consumer typing the argument reads alike)."""
        return self._a.__dlpack__(max_version=max_version) if max_version else self._a.__dlpack__()

    def __dlpack_device__(self):
        return 2, self._device  # (kDLCUDA, device id), as CuPy answers

    def get(self, stream=None, order="C", out=None, blocking=True):
        _host_read(".get()")
        launched("get")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        launched("set")
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if not (self._a.flags.c_contiguous or self._a.flags.f_contiguous):
            raise RuntimeError("Cannot set to non-contiguous array")
        self._a[...] = arr

    def item(self):
        _host_read(".item()")
        return self._a.item()

    def tolist(self):
        _host_read(".tolist()")
        return self._a.tolist()

    def _scalar(self, convert, what):
        if self._a.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars ({what})")
        _host_read(what)
        return convert(self._a.reshape(()))

    def __float__(self):
        return self._scalar(float, "float()")

    def __int__(self):
        return self._scalar(int, "int()")

    def __complex__(self):
        return self._scalar(complex, "complex()")

    def __bool__(self):
        return self._scalar(bool, "bool()")

    def __repr__(self):
        _host_read("repr()")
        return repr(self._a)

    __str__ = __repr__

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    # ---- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: ndarray._of(self._a.T, self._device))
    mT = property(lambda self: ndarray._of(np.swapaxes(self._a, -1, -2), self._device))
    real = property(lambda self: ndarray._of(self._a.real, self._device))
    imag = property(lambda self: ndarray._of(self._a.imag, self._device))
    device = property(lambda self: Device(self._device))
    flags = property(lambda self: types.SimpleNamespace(c_contiguous=self._a.flags.c_contiguous,
                                                        f_contiguous=self._a.flags.f_contiguous,
                                                        owndata=self._a.flags.owndata))
    data = property(lambda self: types.SimpleNamespace(ptr=self._a.ctypes.data, device_id=self._device))
    base = property(lambda self: None if self._a.base is None else ndarray._of(self._a.base, self._device))

    def __getattr__(self, name):  # the other methods CuPy's ndarray has, run by NumPy's
        spec = API["ndarray"].get(name)
        if spec is None or spec["kind"] != "method" or not hasattr(self._a, name):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        fn, dev = getattr(self._a, name), self._device

        def method(*args, **kwargs):
            _check_call(f"ndarray.{name}", spec["params"], args, kwargs)
            for keyword in UNSUPPORTED.get(name, ()):
                if kwargs.get(keyword) is not None:
                    raise TypeError(f"{keyword} is not supported yet")
            _same_device(self)
            if name in SYNCING:
                _host_read(f"ndarray.{name}()")
            kwargs = {**kwargs, "kind": "stable"} if name in STABLE else kwargs
            result = _wrap(dev, fn(*_on(dev, args), **{k: _on(dev, v) for k, v in kwargs.items()}), _outs(kwargs))
            if not (name == "astype" and result is self):  # astype to its own dtype with copy=False: no kernel
                launched(name)
            return result

        return method

    def fill(self, value):
        if isinstance(value, np.ndarray) and value.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        launched("fill")
        self._a.fill(_on(self._device, value) if isinstance(value, ndarray) else value)

    # ---- indexing
    def _key(self, key):
        """An index on NumPy memory. NumPy index arrays are uploaded (as CuPy does); a boolean mask is a host read."""
        keys = key if isinstance(key, tuple) else (key,)
        out = []
        for k in keys:
            if isinstance(k, ndarray):
                _same_device(k)
                k = k._a
            if isinstance(k, (np.ndarray, list)) and np.asarray(k).dtype == bool:
                _host_read("boolean-mask indexing (the result's size)")
            out.append(k)
        return tuple(out) if isinstance(key, tuple) else out[0]

    def __getitem__(self, key):
        _same_device(self)
        if any(isinstance(k, (ndarray, np.ndarray, list)) for k in (key if isinstance(key, tuple) else (key,))):
            launched("take")  # an index array gathers in a kernel; integers and slices make a view
        key = self._key(key)
        got = self._a[key]
        if not isinstance(got, np.ndarray):  # an element: CuPy gives a 0-d view of it, as NumPy's a[i, ...] does
            got = self._a[(*(key if isinstance(key, tuple) else (key,)), Ellipsis)]
        return ndarray._of(got, self._device)

    def __setitem__(self, key, value):
        _same_device(self)
        if isinstance(value, (np.ndarray, list)) and np.asarray(value).shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        launched("setitem")
        self._a[self._key(key)] = _on(current_device(), value)

    # ---- arithmetic: through the ufuncs, with their operand rules
    def _binary(self, other, ufunc, reflected=False):
        u = getattr(_MODULE, ufunc)
        return u(other, self) if reflected else u(self, other)

    def _inplace(self, other, ufunc):
        getattr(_MODULE, ufunc)(self, other, out=self)
        return self

    def __neg__(self):
        return _MODULE.negative(self)

    def __pos__(self):
        return _MODULE.positive(self)

    def __abs__(self):
        return _MODULE.absolute(self)

    def __invert__(self):
        return _MODULE.invert(self)

    def __copy__(self):
        return self.copy()


for _dunder, _ufunc in _OPERATORS.items():
    setattr(ndarray, f"__{_dunder}__", lambda self, o, _u=_ufunc: self._binary(o, _u))
    setattr(ndarray, f"__r{_dunder}__", lambda self, o, _u=_ufunc: self._binary(o, _u, reflected=True))
    if _dunder != "matmul":  # CuPy has no in-place matmul
        setattr(ndarray, f"__i{_dunder}__", lambda self, o, _u=_ufunc: self._inplace(o, _u))
for _dunder, _ufunc in _COMPARISONS.items():
    setattr(ndarray, f"__{_dunder}__", lambda self, o, _u=_ufunc: self._binary(o, _u))


def _same_device(a: ndarray) -> None:
    if a._device != current_device():
        _on(current_device(), a)  # raises CuPy's error


# --------------------------------------------------------------------------- cupy.cuda


class Device:
    """cupy.cuda.Device: ``with Device(1):`` makes device 1 current for arrays made and kernels run inside."""

    def __init__(self, device=None):
        self.id = current_device() if device is None else int(device)
        if not 0 <= self.id < max(_VISIBLE[0], 1):
            raise CUDARuntimeError(101, "cudaErrorInvalidDevice: invalid device ordinal")

    def __enter__(self):
        if not hasattr(_local, "devices"):
            _local.devices = []
        _local.devices.append(self.id)
        return self

    def __exit__(self, *exc):
        _local.devices.pop()
        return False

    def use(self):
        if not hasattr(_local, "devices"):
            _local.devices = []
        _local.devices[:] = [self.id]

    def synchronize(self):
        _host_read("Device.synchronize()")

    compute_capability = "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Stream:
    """A CUDA stream: ``null`` (ptr 0, the default current stream) or a new one with its own handle."""

    _next = [0x7000]

    def __init__(self, null=False, non_blocking=False, ptds=False):
        if null:
            self.ptr = 0
        else:
            Stream._next[0] += 16
            self.ptr = Stream._next[0]
        self.device_id = current_device()

    def __enter__(self):
        self._previous = _current_streams().get(current_device())
        _current_streams()[current_device()] = self
        return self

    def __exit__(self, *exc):
        _current_streams()[current_device()] = self._previous
        return False

    def synchronize(self):
        _host_read("Stream.synchronize()")

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event


def _current_streams() -> dict:
    if not hasattr(_local, "streams"):
        _local.streams = {}
    return _local.streams


def get_current_stream(device_id=None):
    return _current_streams().get(current_device() if device_id is None else device_id) or Stream.null


Stream.null = Stream(null=True)


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.done = True

    def record(self, stream=None):
        self.done = True

    def synchronize(self):
        _host_read("Event.synchronize()")

    def query(self):
        return True


def _device_count() -> int:
    if _VISIBLE[0] == 0:  # what CuPy says on a machine with no driver (CI's)
        raise CUDARuntimeError(35, "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA "
                               "runtime version")
    return _VISIBLE[0]


runtime = types.SimpleNamespace(
    CUDARuntimeError=CUDARuntimeError,
    getDeviceCount=_device_count,
    getDevice=current_device,
    memGetInfo=lambda: (8 << 30, 16 << 30),
    getDeviceProperties=lambda i: {"name": f"simulated GPU {i}".encode(), "totalGlobalMem": 16 << 30,
                                   "major": 9, "minor": 0, "multiProcessorCount": 132},
    runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000 if _VISIBLE[0] else 0,  # 0: no driver installed, as on a machine without a GPU
)
nccl = types.ModuleType("cupy.cuda.nccl")  # as on a machine without libnccl: importable, not available
nccl.available = False
cuda = types.ModuleType("cupy.cuda")
cuda.__dict__.update(Device=Device, Stream=Stream, Event=Event, runtime=runtime, nccl=nccl,
                     get_current_stream=get_current_stream, is_available=lambda: _VISIBLE[0] > 0,
                     get_device_id=current_device)


# --------------------------------------------------------------------------- cupyx


@contextlib.contextmanager
def allow_synchronize(allow: bool):
    previous, STRICT[0] = STRICT[0], not allow
    try:
        yield
    finally:
        STRICT[0] = previous


def empty_pinned(shape, dtype=float, order="C"):
    return np.empty(shape, dtype, order=order)


def zeros_pinned(shape, dtype=float, order="C"):
    return np.zeros(shape, dtype, order=order)


def _scatter(ufunc):
    def scatter(a, slices, value):
        dev = current_device()
        launched(f"scatter_{ufunc.__name__}")
        _same_device(a)
        ufunc.at(a._a, a._key(slices), _on(dev, value))  # indices as in a[slices]: NumPy index arrays uploaded

    return scatter


cupyx = types.ModuleType("cupyx")
cupyx.__dict__.update(allow_synchronize=allow_synchronize, DeviceSynchronized=DeviceSynchronized,
                      empty_pinned=empty_pinned, zeros_pinned=zeros_pinned, scatter_add=_scatter(np.add),
                      scatter_max=_scatter(np.maximum), scatter_min=_scatter(np.minimum))


# --------------------------------------------------------------------------- the module and its namespaces


class _Generator:
    """cupy.random.Generator: NumPy's generator underneath, only CuPy's methods, results on the device."""

    def __init__(self, seed=None):
        self._rng, self._device = np.random.default_rng(seed), current_device()

    def __getattr__(self, name):
        spec = API["random.Generator"].get(name)
        if spec is None or spec["kind"] != "method":
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r}")
        fn = getattr(self._rng, name)

        def method(*args, **kwargs):
            _check_call(f"Generator.{name}", spec["params"], args, kwargs)
            return _wrap(self._device, fn(*args, **kwargs))

        return method


def _namespace(path: str, numpy_ns, extra: dict) -> types.ModuleType:
    """A module exposing real CuPy's names at ``path``: NumPy's functions behind CuPy's signatures."""
    mod = types.ModuleType("cupy" + ("." + path if path else ""))
    for name, spec in API["cupy"][path].items():
        if name in extra:
            setattr(mod, name, extra[name])
        elif spec["kind"] == "ufunc":
            setattr(mod, name, _Ufunc(name, spec))
        elif spec["kind"] == "function" and callable(getattr(numpy_ns, name, None)):
            qual = f"{mod.__name__}.{name}"
            fn = getattr(numpy_ns, name)
            setattr(mod, name, _function(name, _gemm(fn) if not path and name in ("matmul", "dot") else fn,
                                         spec["params"], qual))
        elif spec["kind"] in ("type", "value") and hasattr(numpy_ns, name):
            setattr(mod, name, getattr(numpy_ns, name))
    return mod


def _asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return a.get(stream=stream, order=order, out=out) if isinstance(a, ndarray) else np.asarray(a, order=order)


def _get_array_module(*args):
    return _MODULE if any(isinstance(a, ndarray) for a in args) else np


_MODULE = _namespace("", np, {"ndarray": ndarray, "asnumpy": _asnumpy, "get_array_module": _get_array_module})
_MODULE.cuda = cuda
_MODULE.random = _namespace("random", np.random, {"default_rng": _Generator, "Generator": _Generator})
_MODULE.linalg = _namespace("linalg", np.linalg, {})
_MODULE.lib = types.ModuleType("cupy.lib")
_MODULE.lib.stride_tricks = _namespace("lib.stride_tricks", np.lib.stride_tricks, {})
_MODULE._core = types.ModuleType("cupy._core")
_MODULE._core._routines_linalg = types.ModuleType("cupy._core._routines_linalg")
_MODULE._core._routines_linalg.__dict__.update(_LINALG)
_MODULE._core.set_compute_type, _MODULE._core.get_compute_type = set_compute_type, get_compute_type
_MODULE.__version__ = API["cupy_version"] + "+simulated"
_MODULE.__file__ = __file__
_MODULE.SIMULATED = True


@contextlib.contextmanager
def visible(count: int = DEVICES):
    """Within the block the CUDA runtime reports ``count`` devices (gpunn's device probe is re-run on entry and exit)."""
    previous, _VISIBLE[0] = _VISIBLE[0], count
    _reprobe()
    try:
        yield
    finally:
        _VISIBLE[0] = previous
        _reprobe()


def _reprobe() -> None:
    import sys

    devices = sys.modules.get("gpunn.devices")
    if devices is not None:
        devices._cuda_probe.cache_clear()


def modules() -> dict:
    """{module name: module} to put in ``sys.modules`` so that ``import cupy`` (and ``cupyx``) give these."""
    return {"cupy": _MODULE, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime, "cupy.cuda.nccl": nccl,
            "cupy._core": _MODULE._core, "cupy._core._routines_linalg": _MODULE._core._routines_linalg,
            "cupy.random": _MODULE.random, "cupy.linalg": _MODULE.linalg, "cupy.lib": _MODULE.lib,
            "cupy.lib.stride_tricks": _MODULE.lib.stride_tricks, "cupyx": cupyx}
