"""Devices: where arrays live and which array namespace (``xp``) computes on them.

The whole NumPy/CuPy decision is made here. A :class:`Device` supplies ``xp``
(``numpy`` or ``cupy``); everything else in gpunn is written once against it.
CuPy is imported only when a CUDA device is asked for or a CuPy array is seen,
so a machine without a GPU never pays for it.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
import threading
import warnings

import numpy as np

DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
PRECISIONS = ("float32", "float64")  # the estimators' precision parameter: their names
# Training may also be "mixed": float16 compute with float32 master weights on a GPU (gpunn/precision.py)
TRAINING_PRECISIONS = (*PRECISIONS, "mixed")

_SPEC = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


@functools.lru_cache(maxsize=1)
def _cuda_probe() -> tuple[int, str]:
    """(number of usable CUDA devices, why there are none: "" when there are). Never raises."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as e:
        return 0, f"CuPy is not installed ({e}); pip install -e '.[cuda12]' (or '.[cuda13]') in gpunn's directory"
    except Exception as e:  # a broken install
        return 0, f"importing CuPy failed: {type(e).__name__}: {e}"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # no driver, a driver too old for this CuPy's CUDA, no device
        return 0, _driver_failure(cupy, e)
    if count == 0:
        return 0, "the CUDA driver reports no device"
    try:
        importlib.import_module("numba.cuda")
    except Exception as e:  # CuPy works, but the fused kernels cannot be built
        return count, f"(CUDA works, but numba-cuda failed to import: {type(e).__name__}: {e}; kernels use CuPy references)"
    return count, ""


_INSUFFICIENT_DRIVER, _NO_DEVICE = 35, 100  # cudaErrorInsufficientDriver, cudaErrorNoDevice


def _driver_failure(cupy, error: Exception) -> str:
    """Why getDeviceCount failed, in words true on the machine: no driver, a driver too old, or no GPU.

    The CUDA runtime reports a missing driver (libcuda not found) as cudaErrorInsufficientDriver,
    "CUDA driver version is insufficient", which is wrong on a machine without a GPU at all;
    cudaDriverGetVersion tells the cases apart: it answers 0 where no driver is installed.
    """
    status = getattr(error, "status", None)
    plain = f"the CUDA driver did not answer (cupy.cuda.runtime.getDeviceCount: {type(error).__name__}: {error})"
    if status not in (_INSUFFICIENT_DRIVER, _NO_DEVICE):
        return plain
    try:
        driver = int(cupy.cuda.runtime.driverGetVersion())
    except Exception:
        return plain
    if driver == 0:
        return ("no NVIDIA driver is installed on this machine (cudaDriverGetVersion reports none), so it has no GPU "
                "that CUDA can use")
    if status == _NO_DEVICE:
        return f"the NVIDIA driver (CUDA {_cuda_version(driver)}) is installed but finds no GPU (cudaErrorNoDevice)"
    try:
        runtime = int(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:
        return plain
    return (f"the NVIDIA driver supports CUDA up to {_cuda_version(driver)}, older than the CUDA "
            f"{_cuda_version(runtime)} this CuPy was built for: update the driver, or install the CuPy wheel for "
            f"CUDA {driver // 1000} (cudaErrorInsufficientDriver)")


def _cuda_version(number: int) -> str:
    """CUDA's version number (1000 major + 10 minor) as text: 12090 -> '12.9'."""
    return f"{number // 1000}.{number % 1000 // 10}"


def _cuda_device_count() -> int:
    """Number of usable CUDA devices; 0 when CuPy or a driver is missing. Never raises."""
    return _cuda_probe()[0]


def cuda_available() -> bool:
    """Whether CUDA can be used here: CuPy is installed and at least one CUDA device answers.

    The probe runs once per process (its answer is cached) and never raises.

    Returns
    -------
    bool
        True when at least one CUDA device is usable; :func:`cuda_unavailable_reason` says why not
        when False.

    Examples
    --------
    >>> isinstance(gn.cuda_available(), bool)
    True
    """
    return _cuda_device_count() > 0


def cuda_unavailable_reason() -> str:
    """Why CUDA cannot be used here (which import or driver call failed); "" when it can.

    Never raises: the reason comes from the same cached probe as :func:`cuda_available`.

    Returns
    -------
    str
        One sentence naming what failed (CuPy missing or broken, no driver, a driver older than
        CuPy's CUDA, no GPU), or ``""`` when a CUDA device is usable.

    Examples
    --------
    >>> gn.cuda_available() == (gn.cuda_unavailable_reason() == "")
    True
    """
    count, reason = _cuda_probe()
    return "" if count else reason


_FALLBACK_TOLD = [False]


class Device:
    """A place for arrays: ``Device("cpu")`` or ``Device("cuda", 0)``.

    ``xp`` is the array namespace for this device. Use :func:`device` to build one
    from a string such as ``"cuda:0"`` or ``"auto"``: it also checks that the GPU exists,
    which this constructor does not. Devices compare equal to each other and to their
    string (``Device("cpu") == "cpu"``). As a context manager (``with dev:``) a CUDA
    device is made current for CuPy and Numba; on the CPU the block only runs.

    Parameters
    ----------
    type : {"cpu", "cuda"}, default="cpu"
        The kind of device.
    index : int or None, default=None
        The GPU's number for ``"cuda"`` (None means 0); None or 0 for ``"cpu"``, which has no index.

    Raises
    ------
    ValueError
        If ``type`` is neither ``"cpu"`` nor ``"cuda"``, or ``"cpu"`` is given an index other than 0.

    Examples
    --------
    >>> dev = gn.Device("cpu")
    >>> dev, str(dev), dev.xp.__name__
    (Device('cpu'), 'cpu', 'numpy')
    >>> dev == "cpu", gn.Device("cuda", 1)
    (True, Device('cuda:1'))
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None):
        if type not in ("cpu", "cuda"):
            raise ValueError(f"device type must be 'cpu' or 'cuda', got {type!r}")
        if type == "cpu" and index not in (None, 0):
            raise ValueError(f"the cpu device has no index, got cpu:{index}")
        self.type = type
        self.index = None if type == "cpu" else int(index or 0)

    @property
    def xp(self):
        """``numpy`` for the CPU, ``cupy`` for CUDA."""
        return np if self.type == "cpu" else importlib.import_module("cupy")

    def asarray(self, a, dtype=None):
        """``a`` as an array on this device (a copy only where needed).

        Parameters
        ----------
        a : array_like
            A NumPy or CuPy array, a :class:`~gpunn.nn.Parameter`, a list or a scalar.
        dtype : dtype or None, default=None
            The dtype of the result; None keeps ``a``'s.

        Returns
        -------
        numpy.ndarray or cupy.ndarray
            ``a`` on this device: ``a`` itself where it is already there in ``dtype``, else a copy
            (a CuPy array is copied to the host for the CPU; a host array is uploaded for CUDA).

        Examples
        --------
        >>> gn.Device("cpu").asarray([1, 2], dtype=np.float32)
        array([1., 2.], dtype=float32)
        """
        if self.type == "cpu":
            return np.asarray(to_numpy(a), dtype=dtype)
        cupy = self.xp
        with cupy.cuda.Device(self.index):
            return cupy.asarray(a, dtype=dtype)

    def free_memory(self) -> int:
        """Bytes free now: available physical memory on the CPU, free device memory on a GPU.

        Returns
        -------
        int
            The free bytes; on a platform that cannot tell the CPU's, 2**40 (taken as plenty).
        """
        if self.type == "cpu":
            try:
                return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError):  # not on this platform: assume plenty
                return 1 << 40
        with self.xp.cuda.Device(self.index):
            free, _ = self.xp.cuda.runtime.memGetInfo()
        return int(free)

    def fits(self, nbytes: int, fraction: float = 0.5) -> bool:
        """Whether ``nbytes`` more fit comfortably: always on the CPU, within ``fraction`` of free GPU memory.

        Parameters
        ----------
        nbytes : int
            The size of what is to be allocated, in bytes.
        fraction : float, default=0.5
            The share of the GPU's free memory (:meth:`free_memory`) it may take.

        Returns
        -------
        bool
            True on the CPU (whatever ``nbytes``); on a GPU, whether ``nbytes <= fraction * free_memory()``.

        Examples
        --------
        >>> gn.Device("cpu").fits(10**15)
        True
        """
        return self.type == "cpu" or nbytes <= fraction * self.free_memory()

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        """A host array for staging uploads: page-locked (fast DMA to this GPU) on CUDA, plain on the CPU.

        Parameters
        ----------
        shape : int or tuple of int
            The array's shape.
        dtype : dtype
            The array's dtype.

        Returns
        -------
        numpy.ndarray
            An uninitialised host array of ``shape`` and ``dtype`` (in pinned memory on CUDA).
        """
        if self.type == "cpu":
            return np.empty(shape, dtype)
        cupyx = importlib.import_module("cupyx")
        with self.xp.cuda.Device(self.index):
            return cupyx.empty_pinned(shape, dtype=dtype)

    def read(self, a) -> np.ndarray:
        """``a`` copied to the host: the deliberate reads of a training loop (once per epoch, or every
        ``log_every`` steps).

        Allowed even inside ``cupyx.allow_synchronize(False)``, which the tests use to prove that
        nothing else in a training step waits for the GPU.

        Parameters
        ----------
        a : numpy.ndarray or cupy.ndarray
            An array on this device.

        Returns
        -------
        numpy.ndarray
            ``a`` on the host: on the CPU ``np.asarray(a)`` (no copy), on CUDA a copy that waits for
            the GPU.
        """
        if self.type == "cpu":
            return np.asarray(a)
        allow = getattr(importlib.import_module("cupyx"), "allow_synchronize", None)
        if allow is None:
            return a.get()
        with allow(True):
            return a.get()

    def write(self, dst, host: np.ndarray) -> None:
        """Copy the host array ``host`` into ``dst``, an array of the same shape and dtype on this device.

        The array keeps its memory (a captured CUDA graph reading it sees the new values); on CUDA the
        copy is queued on the current stream. CuPy refuses ``dst[...] = host`` for a NumPy ``host``.

        Parameters
        ----------
        dst : numpy.ndarray or cupy.ndarray
            The array on this device to overwrite, in place.
        host : numpy.ndarray
            The new values, shaped like ``dst`` (cast to ``dst``'s dtype).

        Examples
        --------
        >>> dev = gn.Device("cpu")
        >>> a = dev.asarray(np.zeros(2, np.float32))
        >>> dev.write(a, np.array([3.0, 4.0]))
        >>> a
        array([3., 4.], dtype=float32)
        """
        if self.type == "cpu":
            dst[...] = host
        else:
            with self:
                dst.set(np.ascontiguousarray(host, dtype=dst.dtype))

    def upload(self, host: np.ndarray):
        """(device copy of ``host``, event recorded after the copy), queued without waiting.

        From page-locked memory (:meth:`pinned_empty`) the copy runs asynchronously on the current
        stream; wait on the event before writing into ``host`` again. For CUDA devices only.

        Parameters
        ----------
        host : numpy.ndarray
            The array to upload, ideally from :meth:`pinned_empty`.

        Returns
        -------
        out : cupy.ndarray
            A new array on this GPU of ``host``'s shape and dtype, its copy queued.
        done : cupy.cuda.Event
            Recorded after the copy: ``done.synchronize()`` waits until ``host`` may be reused.
        """
        cupy = self.xp
        with cupy.cuda.Device(self.index):
            out = cupy.empty(host.shape, host.dtype)
            out.set(host, stream=cupy.cuda.get_current_stream())
            done = cupy.cuda.Event()
            done.record()
        return out, done

    def synchronize(self) -> None:
        """Wait until all work queued on this device has finished."""
        if self.type == "cuda":
            self.xp.cuda.Device(self.index).synchronize()

    def __enter__(self):
        """Make this device current for the block: CuPy's arrays and kernels, and Numba's kernel launches."""
        if self.type == "cuda":
            stack = _entered()
            if stack and stack[-1][0] == self.index:  # already current (a layer inside a model): nothing to switch
                stack.append((self.index, ()))
                return self
            contexts = (self.xp.cuda.Device(self.index), _numba_cuda().gpus[self.index])
            for c in contexts:
                c.__enter__()
            stack.append((self.index, contexts))
        return self

    def __exit__(self, *exc):
        if self.type == "cuda":
            for c in reversed(_entered().pop()[1]):
                c.__exit__(*exc)
        return False

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self):
        return f"Device('{self}')"



_ENTERED = threading.local()


def _entered() -> list:
    """This thread's stack of entered CUDA devices, (index, their CuPy and Numba contexts), innermost last."""
    if not hasattr(_ENTERED, "stack"):
        _ENTERED.stack = []
    return _ENTERED.stack


@functools.cache
def _numba_cuda():
    return importlib.import_module("numba.cuda")


def on_device(where):
    """Decorator: run a function on the device ``where(*args)`` names (CuPy's and Numba's current device).

    CuPy makes arrays, and runs kernels, on the *current* device: code working on arrays of cuda:1
    must run with cuda:1 current, or CuPy refuses the arrays. Layers, losses and optimizers run their
    passes this way, so a model on any GPU works without a ``with`` block. ``where`` takes the
    positional arguments (``self`` first, for a method). On the CPU it only calls.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            dev = where(*args)
            if dev.type == "cpu":
                return fn(*args, **kwargs)
            with dev:
                return fn(*args, **kwargs)

        return run

    return decorate


def on_own_device(method):
    """Decorator for a method of an object with a ``device`` (a layer): it runs on that device.

    :func:`on_device` for the commonest case, a single call on the CPU (a layer's pass runs it every step).
    """

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        dev = self.device
        if dev.index is None:
            return method(self, *args, **kwargs)
        with dev:
            return method(self, *args, **kwargs)

    return run


def device(spec: str | Device | None = "auto", verbose: bool | None = None) -> Device:
    """A :class:`Device` from ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    ``"auto"`` (and ``None``) pick CUDA device 0 when one is usable, else the CPU; with
    ``verbose=True`` (or the environment variable ``GPUNN_VERBOSE=1``) a fallback to the CPU
    is reported once per process, with the reason (:func:`cuda_unavailable_reason`).
    Asking for CUDA where none is usable raises a one-line ``ValueError`` saying why.

    Parameters
    ----------
    spec : str, Device or None, default="auto"
        ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"``, ``"auto"`` or None (the same as ``"auto"``);
        in the cpu and cuda forms case and surrounding spaces are ignored. A :class:`Device` is
        returned as it is.
    verbose : bool or None, default=None
        Whether ``"auto"`` warns (a ``UserWarning``, once per process) when it falls back to the CPU;
        None reads the environment variable ``GPUNN_VERBOSE``.

    Returns
    -------
    Device
        The device asked for.

    Raises
    ------
    TypeError
        If ``spec`` is neither a str, a Device nor None.
    ValueError
        If ``spec`` is not one of the forms above, or names a CUDA device that is not usable here
        (no GPU, or an index past the last one).

    Examples
    --------
    >>> gn.device("cpu"), gn.device(" CPU:0 ")
    (Device('cpu'), Device('cpu'))
    >>> gn.device("auto") == ("cuda:0" if gn.cuda_available() else "cpu")
    True
    """
    if isinstance(spec, Device):
        return spec
    if spec is None or spec == "auto":
        if cuda_available():
            return Device("cuda", 0)
        if verbose is None:
            verbose = os.environ.get("GPUNN_VERBOSE", "") not in ("", "0")
        if verbose and not _FALLBACK_TOLD[0]:
            _FALLBACK_TOLD[0] = True
            warnings.warn(f"device='auto' uses the CPU: {cuda_unavailable_reason()}", stacklevel=2)
        return Device("cpu")
    if not isinstance(spec, str):
        raise TypeError(f"device must be a str such as 'cpu', 'cuda', 'cuda:0' or 'auto', got {type(spec).__name__}")
    m = _SPEC.match(spec.strip().lower())
    if m is None:
        raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        if index not in (None, "0"):
            raise ValueError(f"unknown device {spec!r}: the cpu device has no index")
        return Device("cpu")
    count = _cuda_device_count()
    if count == 0:
        raise ValueError(f"device {spec!r} asked for, but no usable CUDA GPU was found: {cuda_unavailable_reason()}; "
                         "use device='cpu' or 'auto'")
    index = int(index or 0)
    if index >= count:
        raise ValueError(f"device {spec!r} asked for, but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1})")
    return Device("cuda", index)


def _is_cupy_array(a) -> bool:
    cupy = sys.modules.get("cupy")  # a CuPy array can only exist once CuPy is imported
    return cupy is not None and isinstance(a, cupy.ndarray)


def device_of(a) -> Device:
    """The device an array lives on (NumPy arrays, scalars and lists are on the CPU).

    Parameters
    ----------
    a : object
        An array (NumPy or CuPy) or anything else.

    Returns
    -------
    Device
        ``cuda:N`` for a CuPy array on GPU N, the CPU for everything else.

    Examples
    --------
    >>> gn.device_of(np.zeros(3)), gn.device_of([1, 2])
    (Device('cpu'), Device('cpu'))
    """
    if type(a) is np.ndarray:  # first: a training step asks this dozens of times
        return _CPU
    if _is_cupy_array(a):
        return Device("cuda", a.device.id)
    return _CPU


_CPU = Device("cpu")  # one shared instance: device_of runs dozens of times per training step


def array_module(a):
    """The namespace (``numpy`` or ``cupy``) that computes on ``a``."""
    if isinstance(a, np.ndarray):
        return np
    return device_of(a).xp


class ArrayHolder:
    """A thing whose array is its ``data`` (a :class:`~gpunn.nn.Parameter`): :func:`to_numpy` reads that."""

    __slots__ = ()


def to_numpy(a) -> np.ndarray:
    """Any gpunn or backend array (NumPy, CuPy, :class:`~gpunn.nn.Parameter`) as a NumPy array.

    Parameters
    ----------
    a : array_like
        A NumPy or CuPy array, a :class:`~gpunn.nn.Parameter` (its ``data`` is read), a list or a scalar.

    Returns
    -------
    numpy.ndarray
        ``a`` on the host: a CuPy array is copied from its GPU; a NumPy array is returned as it is
        (not copied).

    Examples
    --------
    >>> gn.to_numpy(gn.nn.Parameter(np.ones(2, np.float32)))
    array([1., 1.], dtype=float32)
    >>> gn.to_numpy([1, 2])
    array([1, 2])
    """
    a = a.data if isinstance(a, ArrayHolder) else a
    if _is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def as_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Check that ``dtype`` is float32 or float64 and return it as a ``np.dtype``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be 'float32' or 'float64', got {dt.name}")
    return dt


def adopt(a, dev: Device, name, dtype=None):
    """``a`` on ``dev`` (and cast to ``dtype``), refusing arrays that live on another device.

    NumPy input is moved to ``dev`` (host-to-device copies are how data enters a
    GPU); an array already on a *different* device is an error rather than a
    hidden transfer. ``name`` (a string, or a function giving one, so that a layer's
    repr is only built for an error message) names ``a`` in errors.
    """
    if isinstance(a, np.ndarray) and dev.type == "cpu" and a.dtype.kind == "f":  # the training loop's case
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    name = name() if callable(name) else name
    src = device_of(a)
    if src is not dev and src != dev and src.type != "cpu":
        raise ValueError(f"{name} is on {src} but the computation is on {dev}; move it with .to() or gn.to_numpy() first")
    if dev.type == "cpu" and not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name} must be an array, got {type(a).__name__} ({e})") from None
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if src is not dev and src != dev:
        return dev.asarray(a, dtype=dtype)
    return a if dtype is None or a.dtype == dtype else a.astype(dtype)
