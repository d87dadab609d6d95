"""Numba's CUDA simulator, running gpunn's kernels on the simulated GPU's arrays, and checking every launch.

Numba's simulator runs a ``@cuda.jit`` kernel as Python, one thread at a time; it knows one device
and NumPy arrays. This module teaches it the strict CuPy stand-in's arrays and two devices, and
holds each launch to what a real GPU requires (:func:`check_launch`):

- grid and block within the hardware's limits, and no empty grid (CUDA refuses it);
- every array on one device, the kernel launched in that device's Numba context (``cuda.gpus[i]``);
- launched on CuPy's current stream of that device (``cuda.external_stream(ptr)``, or the default
  stream while CuPy's is the null stream);
- no NumPy array beside device arrays (numba-cuda would copy it to the device and back, silently
  synchronising).

It also records each kernel's argument types as numba-cuda would infer them on a GPU
(:data:`LAUNCHES`), which ``tests/test_cuda_compile.py`` compiles with NVIDIA's compiler.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings

import numba
import numpy as np
from numba import cuda

from . import strict_cupy

LAUNCHES: dict[tuple[str, str], dict] = {}  # (module, qualname) -> {argument type descriptions: threads per block}
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
_local = threading.local()


COUNTS = {"numba": 0}  # Numba kernel launches so far (the simulated GPU's CuPy kernels and BLAS calls count apart)


class LaunchError(RuntimeError):
    """A launch a real GPU (or numba-cuda) would refuse or get wrong."""


class _Configured:
    """``kernel[grid, block, stream]``: a launch configuration that keeps its own grid, as numba-cuda's does."""

    __slots__ = ("kernel", "configuration")

    def __init__(self, kernel, configuration):
        if len(configuration) not in (2, 3, 4):
            raise ValueError("must specify at least the griddim and blockdim")
        self.kernel, self.configuration = kernel, tuple(configuration)
        _low_occupancy_warning(_dims(configuration[0]))

    def __call__(self, *args):
        return self.kernel._gpunn_launch(self.configuration, args)


def _low_occupancy_warning(grid) -> None:
    """numba-cuda's warning as it makes a launch configuration (0.30: under 128 blocks, unless switched off)."""
    from numba.cuda.core import config, errors

    if config.CUDA_LOW_OCCUPANCY_WARNINGS and not config.DISABLE_PERFORMANCE_WARNINGS:
        blocks = grid[0] * grid[1] * grid[2]
        if blocks < 128:
            warnings.warn(errors.NumbaPerformanceWarning(
                f"Grid size {blocks} will likely result in GPU under-utilization due to low occupancy."))


def _simulated(arg):
    """A launch argument as Numba's simulator takes it: device arrays as its arrays, inside tuples too."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    if isinstance(arg, strict_cupy.ndarray):
        return FakeCUDAArray(arg._a)
    if isinstance(arg, tuple) and any(isinstance(a, (strict_cupy.ndarray, tuple)) for a in arg):
        members = tuple(_simulated(a) for a in arg)
        return type(arg)(*members) if hasattr(type(arg), "_fields") else members
    return arg


class _Context:
    """``cuda.gpus[i]``: entering it makes device i Numba's current device, as in numba-cuda."""

    def __init__(self, index: int):
        self.id = index
        self.device = self
        self.compute_capability = (9, 0)

    def __enter__(self):
        _stack().append(self.id)
        return self

    def __exit__(self, *exc):
        _stack().pop()
        return False


def _stack() -> list:
    if not hasattr(_local, "contexts"):
        _local.contexts = []
    return _local.contexts


def numba_device() -> int:
    """The device Numba would launch on now (its current context; device 0 until one is entered)."""
    return _stack()[-1] if _stack() else 0


class _Gpus:
    def __init__(self, count: int):
        self.lst = [_Context(i) for i in range(count)]

    def __getitem__(self, i):
        return self.lst[i]

    def __len__(self):
        return len(self.lst)

    def __iter__(self):
        return iter(self.lst)

    @property
    def current(self):
        return self.lst[numba_device()]


class _Stream:
    """A stream handed to a launch: external (CuPy's, by pointer) or Numba's default."""

    def __init__(self, ptr: int | None):
        self.ptr = ptr

    def synchronize(self):
        strict_cupy._host_read("numba stream.synchronize()")


def describe(arg) -> tuple:
    """An argument's type as numba-cuda infers it for a launch, by numba-cuda's own ``typeof`` (which reads a
    device array through ``__dlpack__``, as it does CuPy's): ("array", dtype, ndim, layout), ("scalar", name),
    or ("tuple", (member descriptions...), "module:Qualified.Name" of a named tuple's class or "")."""
    if isinstance(arg, tuple):
        cls = type(arg)
        name = f"{cls.__module__}:{cls.__qualname__}" if hasattr(cls, "_fields") else ""
        return ("tuple", tuple(describe(a) for a in arg), name)
    if isinstance(arg, np.ndarray):
        layout = "C" if arg.flags.c_contiguous else "F" if arg.flags.f_contiguous else "A"
        return ("array", arg.dtype.name, arg.ndim, layout)
    ty = numba_cuda_typeof(arg)
    if isinstance(ty, numba.types.Array):
        return ("array", str(ty.dtype), ty.ndim, ty.layout)
    return ("scalar", str(ty))


def flat_descriptions(signature):
    """The argument descriptions of a launch with tuples' members in place of the tuples (arrays inside them too)."""
    for d in signature:
        if d[0] == "tuple":
            yield from flat_descriptions(d[1])
        else:
            yield d


def numba_cuda_typeof(arg):
    """numba-cuda's type for a kernel argument (``numba.cuda.typing.typeof``, the launch's own inference)."""
    from numba.cuda.typing.typeof import Purpose, typeof

    return typeof(arg, Purpose.argument)


def _arrays(args):
    """The device and host arrays among ``args``, inside tuples too."""
    for a in args:
        if isinstance(a, tuple):
            yield from _arrays(a)
        elif isinstance(a, (strict_cupy.ndarray, np.ndarray)):
            yield a


def check_launch(kernel, grid, block, stream, args) -> None:
    """Raise :class:`LaunchError` for a launch a GPU would refuse, or run on the wrong device or stream."""
    name = kernel.fn.__qualname__
    for dims, limits, what in ((grid, MAX_GRID, "grid"), (block, MAX_BLOCK, "block")):
        if any(d < 1 for d in dims) or any(d > m for d, m in zip(dims, limits)):
            raise LaunchError(f"{name}: {what} {tuple(dims)} is outside the hardware's limits {limits} "
                              "(or empty: CUDA refuses a zero-size launch)")
    if block[0] * block[1] * block[2] > 1024:
        raise LaunchError(f"{name}: a block of {block} has more than 1024 threads")
    arrays = list(_arrays(args))
    devices = {a._device for a in arrays if isinstance(a, strict_cupy.ndarray)}
    if not devices:
        return  # a kernel test on NumPy arrays, as Numba's simulator takes them
    if any(isinstance(a, np.ndarray) for a in arrays):
        raise LaunchError(f"{name}: a NumPy array among device arrays (numba-cuda would copy it to the GPU and back)")
    if len(devices) > 1:
        raise LaunchError(f"{name}: arrays on devices {sorted(devices)} in one launch")
    (dev,) = devices
    if numba_device() != dev:
        raise LaunchError(f"{name}: launched in Numba's context of device {numba_device()} with arrays on device "
                          f"{dev} (enter cuda.gpus[{dev}] around the launch)")
    wanted = strict_cupy.get_current_stream(dev).ptr
    got = getattr(stream, "ptr", "no stream")
    if got != (wanted or None):
        raise LaunchError(f"{name}: launched on stream {got!r}, but CuPy's current stream on device {dev} is "
                          f"{wanted:#x} (launch on cuda.external_stream(cupy.cuda.get_current_stream().ptr))")


def install() -> None:
    """Patch Numba's simulator (already imported with NUMBA_ENABLE_CUDASIM=1) to run and check device-array launches."""
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    if getattr(FakeCUDAKernel, "_gpunn_checked", False):
        return
    original_getitem, original_call = FakeCUDAKernel.__getitem__, FakeCUDAKernel.__call__

    def getitem(self, configuration):
        """As numba-cuda: a configured launch of its own (the simulator's configures the kernel object itself,
        so a configuration kept for later would launch with whatever grid was set last)."""
        return _Configured(self, configuration)

    def call(self, *args):
        from numba.cuda.simulator import kernel as sim

        if self._device and sim._kernel_context and not _names_cuda(self.fn):
            return self.fn(*args)  # nothing to swap: as original_call, without its per-call lock and globals scan
        if self._device or sim._kernel_context:  # a device function, or a call inside a kernel
            return original_call(self, *args)
        raise ValueError("kernel launch configuration was not specified (kernel[grid, block, stream](...))")

    def launch(self, configuration, args):
        original_getitem(self, configuration)
        grid, block = _dims(self.grid_dim), _dims(self.block_dim)
        check_launch(self, grid, block, configuration[2] if len(configuration) > 2 else None, args)
        where = locator(self)
        if where is not None:  # None: a kernel of a gate defined outside gpunn (a test's), not compiled offline
            seen = LAUNCHES.setdefault(where, {})
            signature = tuple(describe(a) for a in args)
            seen[signature] = max(seen.get(signature, 0), block[0] * block[1] * block[2])
        COUNTS["numba"] += 1
        return original_call(self, *(_simulated(a) for a in args))

    FakeCUDAKernel.__getitem__, FakeCUDAKernel.__call__, FakeCUDAKernel._gpunn_launch = getitem, call, launch
    FakeCUDAKernel._gpunn_checked = True
    _run_blocks_in_one_thread()
    cuda.gpus = _Gpus(strict_cupy.DEVICES)
    cuda.external_stream = _Stream
    cuda.default_stream = lambda: _Stream(None)


_NAMES_CUDA: dict = {}


def _names_cuda(fn) -> bool:
    """True when ``fn``'s code reads a global bound to the ``cuda`` module (or closes over it).

    Numba's simulator runs every device-function call under ``swapped_cuda_module``, which takes a lock and
    scans the function's module globals to point ``cuda`` at the running kernel's fake module: half the time of
    an elementwise kernel whose per-element rule is a device function. A function that never names ``cuda``
    computes the same without it."""
    found = _NAMES_CUDA.get(fn)
    if found is None:
        names = _names_read(fn)
        from numba.cuda.simulator.kernelapi import FakeCUDAModule

        def is_cuda(value):  # the module, or the fake one a kernel running from the same module swapped in
            return value is cuda or isinstance(value, FakeCUDAModule)

        def content(cell):
            try:
                return cell.cell_contents
            except ValueError:  # an empty cell
                return None

        found = any(is_cuda(fn.__globals__.get(n)) for n in names) or any(
            is_cuda(content(c)) for c in fn.__closure__ or ())
        _NAMES_CUDA[fn] = found
    return found


# Names a kernel uses when its threads must run together: block barriers and warp-synchronous intrinsics.
_TOGETHER = {"syncthreads", "syncthreads_count", "syncthreads_and", "syncthreads_or", "syncwarp", "shfl_sync",
             "shfl_up_sync", "shfl_down_sync", "shfl_xor_sync", "all_sync", "any_sync", "eq_sync", "ballot_sync",
             "match_any_sync", "match_all_sync", "activemask", "cg", "this_grid"}


def _names_read(fn) -> set:
    """The global and attribute names ``fn``'s code reads, its nested functions' included."""
    codes, names = [fn.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return names


def _needs_threads(fn, seen=None) -> bool:
    """True when ``fn`` (or a device function it calls) synchronises threads: then each needs its own."""
    seen = set() if seen is None else seen
    if id(fn) in seen:
        return False
    seen.add(id(fn))
    names = _names_read(fn)
    if names & _TOGETHER:
        return True
    called = [fn.__globals__.get(n) for n in names] + [c.cell_contents for c in fn.__closure__ or ()]
    return any(_needs_threads(c.fn, seen) for c in called if hasattr(c, "fn") and hasattr(c, "_device"))


def _run_blocks_in_one_thread() -> None:
    """Run a block's threads one after another in the calling thread, for kernels that never synchronise them.

    Numba's simulator starts one Python thread per CUDA thread, which costs more than most kernels'
    work; a kernel without barriers or warp intrinsics computes the same run sequentially.
    """
    from numba.cuda.simulator.kernel import BlockManager
    from numba.cuda.simulator.kernelapi import Dim3

    def run(self, grid_point, *args):
        if _needs_threads(self._f):
            return _run_threads_with_a_barrier(self, grid_point, *args)
        me = threading.current_thread()
        bx, by, _ = self._block_dim
        try:
            me.blockIdx = Dim3(*grid_point)
            for point in np.ndindex(*self._block_dim):
                me.threadIdx, me.thread_id = Dim3(*point), point[0] + bx * (point[1] + by * point[2])
                self._f(*args)
        finally:
            for name in ("blockIdx", "threadIdx", "thread_id"):
                me.__dict__.pop(name, None)

    BlockManager.run = run


def locator(kernel) -> tuple[str, str] | None:
    """(module, name) where the offline compiler finds ``kernel``: its own module and qualified name, or for a
    kernel a factory made, the module-level name holding it: ``NAME``, ``NAME[i]`` (the i-th value of a dict)
    or ``NAME['key']`` (a dict's string key: a gate's kernels, in ``gpunn.kernels.elementwise.BUILT``)."""
    module = kernel.fn.__module__
    if "<locals>" not in kernel.fn.__qualname__:
        return module, kernel.fn.__qualname__
    from gpunn.kernels import elementwise

    for key, value in elementwise.BUILT.items():
        if value is kernel:
            return elementwise.__name__, f"BUILT[{key!r}]"
    if any(value is kernel for value in elementwise.OTHERS.values()):
        return None
    for name, value in vars(sys.modules[module]).items():
        if value is kernel:
            return module, name
        if isinstance(value, dict):
            for i, v in enumerate(value.values()):
                if v is kernel:
                    return module, f"{name}[{i}]"
    raise LookupError(f"{module}.{kernel.fn.__qualname__}: a factory-made kernel must be held by a module-level "
                      "name (or dict) for the offline compiler to find it")


class _Barrier:
    """A block's ``syncthreads``: releases when every thread still running has arrived.

    Numba's simulator has a manager thread poll all of a block's threads in a loop for this, which keeps
    the GIL busy: a selection kernel's bitonic sort (45 barriers of 128 threads) took seconds per block.
    Waiting on a condition lets the threads run. A thread that ends (or raises) leaves the count, as on
    the hardware, so the others are never left waiting.
    """

    def __init__(self, parties: int):
        self.cond = threading.Condition()
        self.live, self.arrived, self.generation = parties, 0, 0

    def wait(self) -> None:
        with self.cond:
            generation = self.generation
            self.arrived += 1
            if self.arrived == self.live:
                self._release()
            while generation == self.generation:
                self.cond.wait()

    def leave(self) -> None:
        with self.cond:
            self.live -= 1
            if self.arrived and self.arrived == self.live:
                self._release()

    def _release(self) -> None:
        self.arrived, self.generation = 0, self.generation + 1
        self.cond.notify_all()


def _run_threads_with_a_barrier(manager, grid_point, *args) -> None:
    """One Python thread per CUDA thread of the block (kernels with barriers need them), synchronised by a
    :class:`_Barrier`; the first exception a thread raised is raised here, after all have ended."""
    from numba.cuda.simulator.kernel import BlockThread

    barrier = _Barrier(int(np.prod(manager._block_dim)))
    # Threads wait for the whole block before running: a thread already computing holds the GIL for a
    # switch interval (5 ms) while the next one's start() waits for it, which made starting a block of
    # 256 threads take a quarter of a second.
    go = threading.Event()

    class Thread(BlockThread):
        def syncthreads(self):
            barrier.wait()

        def run(self):
            try:
                go.wait()
                super().run()
            finally:
                barrier.leave()

    threads = [Thread(lambda: manager._f(*args), manager, grid_point, point, manager._debug)
               for point in np.ndindex(*manager._block_dim)]
    try:
        for t in threads:
            t.start()
    finally:
        go.set()
    for t in threads:
        t.join()
    for t in threads:
        if t.exception:
            raise t.exception[0].with_traceback(t.exception[1])


def launch_list() -> list[dict]:
    """The recorded launches as JSON-ready records: module, qualname, signature, threads per block."""
    return [{"module": module, "qualname": qualname, "signature": json.loads(json.dumps(signature)), "threads": threads}
            for (module, qualname), seen in sorted(LAUNCHES.items()) for signature, threads in sorted(seen.items())]


def _dims(d) -> tuple:
    d = tuple(d) if isinstance(d, (tuple, list)) else (d,)
    return tuple(int(x) for x in d) + (1,) * (3 - len(d))
