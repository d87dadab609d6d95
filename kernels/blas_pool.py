"""One CPU thread pool: NumPy's OpenBLAS runs its threaded calls on Numba's threads.

gpunn's CPU work runs on two pools: NumPy's OpenBLAS (every ``x @ W``) and Numba's (the kernels).
Each pool's idle threads spin for a while after a call, OpenBLAS's for about 0.1 s, so a training
step that alternates GEMMs with long Numba kernels runs those kernels beside a spinning thread on a
small machine: on 2 cores the direct convolutions of cs231n's ConvNet step took 5.5-7.4 ms instead
of 2.3 ms, and the step 16-24 ms instead of 11 (README, performance).

Where no parallel Numba kernel runs nearby (an MLP, whose kernels run on one thread) OpenBLAS's own
pool is a little faster: its spinning thread takes a job in a microsecond, while Numba's idle threads
may have gone to sleep (3072-100-10 step: 1.54 against 1.48 ms). So gpunn's ``ops.matmul`` shares the
pool only while :func:`numba_busy`.

OpenBLAS 0.3.27 and later let the caller run its parallel work (``openblas_set_threads_callback_function``):
instead of waking its own threads, a threaded call hands the callback its jobs, all of which must run
at once (the GEMM jobs wait for each other). :func:`shared_threads` installs a Numba ``cfunc`` that runs
them in one ``prange`` on Numba's threads, one job per thread, for the duration of a block, and removes it after; the jobs,
their partition of the work and so the results are OpenBLAS's own (bit for bit; tests/test_blas_pool.py).

OpenBLAS's threaded server (the pthreads build of the NumPy wheels) keeps one status slot and one buffer
per thread number and its own idle threads watch slots 0 .. threads - 2. Jobs run by the callback take
the numbers after those, so the idle threads never see them and fall asleep; a spin lock lets one
call's jobs run at a time (another thread's NumPy call inside the block waits for it).

The pool is shared only where that is safe, else :func:`shared_threads` does nothing and OpenBLAS keeps
its own threads: Linux; NumPy linked to a pthreads OpenBLAS with the callback; Numba's OpenMP threading
layer (TBB and the workqueue cannot promise that all jobs run at once); enough thread numbers and Numba
threads for OpenBLAS's; and ``GPUNN_SHARED_POOL`` not set to 0. :func:`status` says which held.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import sys
import threading
import time

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

_I32 = ir.IntType(32)
_BYTE_PTR = ir.IntType(8).as_pointer()
_JOB = ir.FunctionType(ir.VoidType(), [_I32, _BYTE_PTR, _I32])  # void dojob(int thread_num, void *job, int data)


@intrinsic
def _address(typingctx, pointer):
    """A void pointer as an integer."""

    def codegen(context, builder, sig, args):
        return builder.ptrtoint(args[0], context.get_value_type(types.intp))

    return types.intp(types.voidptr), codegen


@intrinsic
def _run_job(typingctx, job, thread_num, data, job_data):
    """Call OpenBLAS's ``dojob(thread_num, data, job_data)`` through its address ``job``."""

    def codegen(context, builder, sig, args):
        fn = builder.inttoptr(args[0], _JOB.as_pointer())
        builder.call(fn, [args[1], builder.inttoptr(args[2], _BYTE_PTR), args[3]])
        return context.get_dummy_value()

    return types.void(types.intp, types.int32, types.intp, types.int32), codegen


@intrinsic
def _try_lock(typingctx, lock):
    """Atomically set the int32 at address ``lock`` from 0 to 1; True when this call did."""

    def codegen(context, builder, sig, args):
        ptr = builder.inttoptr(args[0], _I32.as_pointer())
        result = builder.cmpxchg(ptr, _I32(0), _I32(1), "acquire", "monotonic")
        return builder.extract_value(result, 1)

    return types.boolean(types.intp), codegen


@intrinsic
def _count(typingctx, counter):
    """Add one to the int32 at address ``counter`` (under the lock: a plain add would do, this is clearer)."""

    def codegen(context, builder, sig, args):
        builder.atomic_rmw("add", builder.inttoptr(args[0], _I32.as_pointer()), _I32(1), "monotonic")
        return context.get_dummy_value()

    return types.void(types.intp), codegen


@intrinsic
def _unlock(typingctx, lock):
    def codegen(context, builder, sig, args):
        builder.store_atomic(_I32(0), builder.inttoptr(args[0], _I32.as_pointer()), "release", 4)
        return context.get_dummy_value()

    return types.void(types.intp), codegen


@intrinsic
def _yield_cpu(typingctx):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32, []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@numba.njit(parallel=True)  # not cached: Numba does not cache functions that set the thread count
def run_jobs(job, n, size, data, job_data, first):
    """Run OpenBLAS's ``n`` jobs (``size`` bytes apart from ``data``), one per Numba thread, at once.

    Parameters
    ----------
    job : int
        The address of OpenBLAS's job function.
    n : int
        Jobs to run.
    size : int
        Bytes between one job's data and the next.
    data : int
        The address of the first job's data.
    job_data : int
        OpenBLAS's argument passed to every job.
    first : int
        The thread number the first job runs as (the later ones follow it).
    """
    previous, chunk = numba.get_num_threads(), numba.get_parallel_chunksize()
    if previous < n:  # each job needs its own thread: they wait for each other
        numba.set_num_threads(n)
    numba.set_parallel_chunksize(0)  # even shares, one job per thread (a caller's larger chunks would pair them)
    for i in prange(n):
        _run_job(job, np.int32(first + i), data + i * size, job_data)
    numba.set_parallel_chunksize(chunk)
    numba.set_num_threads(previous)


def _make_callback(lock: int, first: int):
    """The ``openblas_threads_callback`` for a lock at address ``lock`` (the next int32 counts the calls),
    numbering jobs from ``first``."""

    @numba.cfunc(types.void(types.int32, types.voidptr, types.int32, types.uintp, types.voidptr, types.int32))
    def callback(sync, job, n, size, data, job_data):
        while not _try_lock(lock):
            _yield_cpu()
        _count(lock + 4)
        run_jobs(_address(job), n, np.intp(size), _address(data), job_data, first)
        _unlock(lock)

    return callback


class _OpenBLAS:
    """NumPy's OpenBLAS, its callback setter and the callback gpunn installs (None where not usable)."""

    def __init__(self):
        self.reason, self.lib = None, None
        self._callbacks = {}  # by first job number; kept for good, as a call in flight may still run an older one
        self._lock = np.zeros(2, np.int32)  # the spin lock's word and the calls made; live as long as this object
        self._install = threading.Lock()
        self._depth = 0
        try:
            self._find()
        except (OSError, AttributeError, ValueError) as error:  # a library we cannot read: keep OpenBLAS's pool
            self.reason, self.lib = f"{type(error).__name__}: {error}", None

    def _find(self):
        if os.environ.get("GPUNN_SHARED_POOL", "1") == "0":
            self.reason = "GPUNN_SHARED_POOL=0"
            return
        if not sys.platform.startswith("linux"):
            self.reason = f"only on Linux (OpenBLAS's pthreads server), this is {sys.platform}"
            return
        from threadpoolctl import threadpool_info

        np.ones((2, 2)) @ np.ones((2, 2))  # NumPy loads its BLAS lazily on some builds
        # NumPy's wheels keep their BLAS in numpy.libs (SciPy's, also an OpenBLAS, sits in scipy.libs);
        # elsewhere (conda, Linux distributions) the one BLAS loaded is NumPy's, or we cannot tell
        home = os.path.realpath(os.path.dirname(np.__file__))
        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        mine = [i for i in libs if os.path.realpath(i["filepath"]).startswith((home + os.sep, home + ".libs" + os.sep))]
        found = mine[0] if mine else (libs[0] if len(libs) == 1 else None)
        if found is None:
            self.reason = f"cannot tell which of {[i['filepath'] for i in libs]} is NumPy's BLAS"
            return
        if found.get("internal_api") != "openblas":
            self.reason = f"NumPy's BLAS is {found.get('internal_api')}, not OpenBLAS"
            return
        if found.get("threading_layer") != "pthreads":
            self.reason = f"OpenBLAS's threading layer is {found.get('threading_layer')}, not pthreads"
            return
        lib = ctypes.CDLL(found["filepath"])
        # the names NumPy's own build (scipy-openblas, 64-bit indices), scipy-openblas and plain OpenBLAS give
        for base, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "")):
            if hasattr(lib, f"{base}set_threads_callback_function{suffix}"):
                break
        else:
            self.reason = f"OpenBLAS {found.get('version')} has no threads callback (0.3.27 and later have)"
            return

        def function(name, restype, argtypes=()):
            fn = getattr(lib, f"{base}{name}{suffix}")
            fn.restype, fn.argtypes = restype, list(argtypes)
            return fn

        self.set_callback = function("set_threads_callback_function", None, [ctypes.c_void_p])
        self.get_threads = function("get_num_threads", ctypes.c_int)
        match = re.search(r"MAX_THREADS=(\d+)", function("get_config", ctypes.c_char_p)().decode())
        self.max_threads = int(match.group(1)) if match else 0
        self.workers = ctypes.c_int.in_dll(lib, "blas_num_threads")  # OpenBLAS's threads; its own use slots 0 .. n - 2
        self.lib, self.version = lib, found.get("version")

    def usable(self, threads: int) -> str | None:
        """Why OpenBLAS's ``threads`` jobs cannot run on Numba's threads now, or None."""
        if self.lib is None:
            return self.reason
        if threads > numba.config.NUMBA_NUM_THREADS:
            return f"OpenBLAS runs {threads} threads, Numba has {numba.config.NUMBA_NUM_THREADS}"
        if self._first() + threads > self.max_threads:
            return f"OpenBLAS has {self.max_threads} thread slots, {self._first() + threads} needed"
        layer = _threading_layer()
        if layer != "omp":
            return f"Numba's threading layer is {layer}; sharing needs OpenMP"
        return None

    def _first(self) -> int:
        """The first thread number free of OpenBLAS's own threads (which watch slots 0 .. n - 2)."""
        return max(self.workers.value - 1, 0)

    @contextlib.contextmanager
    def shared(self):
        with self._install:
            on = self._depth > 0 or self._start()
            self._depth += on
        try:
            yield on
        finally:
            if on:
                with self._install:
                    self._depth -= 1
                    if self._depth == 0:
                        self.set_callback(None)

    def _start(self) -> bool:
        """Install the callback if OpenBLAS's jobs can run on Numba's threads now; True when it did."""
        if self.lib is None:
            return False
        threads = self.get_threads()
        if threads < 2 or self.usable(threads) is not None:  # one thread never calls back: nothing to share
            return False
        first = self._first()
        if first not in self._callbacks:
            self._callbacks[first] = _make_callback(self._lock.ctypes.data, first)
        self.set_callback(self._callbacks[first].address)
        return True


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: run one so Numba picks its layer
        _touch(np.zeros(2))
        return numba.threading_layer()


@numba.njit(parallel=True, cache=True)
def _touch(a):
    for i in prange(a.size):
        a[i] += 1.0


@functools.cache
def _openblas() -> _OpenBLAS:
    """The one :class:`_OpenBLAS` of this process, found at first use."""
    return _OpenBLAS()


# OpenBLAS's idle threads spin for about 0.1 s (2^28 cycles) after a call: sharing pays where a parallel
# Numba kernel falls in that window, and in a training loop the last step says whether one will.
BUSY_S = 0.2
LAST_PARALLEL = [-1.0]


def parallel_kernel_ran() -> None:
    """Note that a Numba kernel just ran on all of Numba's threads (called by ``launch.cpu_threads``)."""
    LAST_PARALLEL[0] = time.monotonic()


def numba_busy() -> bool:
    """True when a Numba kernel ran on all threads within the last ``BUSY_S`` seconds.

    Returns
    -------
    bool
        Whether sharing the pool pays now (``ops.matmul`` asks before each CPU product).
    """
    return time.monotonic() - LAST_PARALLEL[0] < BUSY_S


def shared_threads():
    """A context in which NumPy's threaded BLAS calls run on Numba's threads, where that is safe.

    Yields True when they do, False when OpenBLAS keeps its own (see :func:`status` for why).

    Returns
    -------
    contextlib.AbstractContextManager
        A context manager yielding True where the pool is shared, else False.
    """
    return _openblas().shared()


def status() -> str:
    """'shared' or why NumPy's BLAS keeps its own threads (for ``gpunn info`` and the tests).

    Returns
    -------
    str
        "shared", or the reason the pool cannot be shared here.
    """
    blas = _openblas()
    why = blas.usable(max(blas.get_threads(), 2)) if blas.lib is not None else blas.reason
    return "shared" if why is None else why


def calls() -> int:
    """How many threaded BLAS calls have run on Numba's threads in this process.

    Returns
    -------
    int
        The count since the process started.
    """
    return int(_openblas()._lock[1])
