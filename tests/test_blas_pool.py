"""NumPy's threaded BLAS on Numba's threads (kernels/blas_pool.py): same results, really on Numba's pool, safe.

The reference is NumPy's own matmul outside the block, on OpenBLAS's threads: the callback runs OpenBLAS's
jobs with OpenBLAS's partition of the work, so the results must agree bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.kernels import blas_pool, mkl_gemm

SHARED = blas_pool.status() == "shared"
needs_sharing = pytest.mark.skipif(not SHARED, reason=f"BLAS keeps its own threads here: {blas_pool.status()}")


@pytest.fixture(autouse=True)
def numpys_blas():
    """These tests are about NumPy's OpenBLAS: ops.matmul stays on it where the optional MKL is installed."""
    with mkl_gemm.use_mkl(False):
        yield


# Thread counts a library may have left in this process's environment: starting a Dask LocalCluster sets them to 1
# for its workers in os.environ itself, and a fresh interpreter would then run OpenBLAS on one thread.
THREAD_LIMITS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (settings read at import), killed after two minutes rather than hang."""
    inherited = {k: v for k, v in os.environ.items() if k not in THREAD_LIMITS}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**inherited, **env})


def threaded_shapes():
    """(a, b) pairs large enough for OpenBLAS to thread (m n k above 2^18), in both layouts and dtypes."""
    rng = np.random.default_rng()
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((257, 301)).astype(dtype)
        b = rng.standard_normal((301, 190)).astype(dtype)
        yield a, b
        yield np.asfortranarray(a), b.T.copy().T  # F-ordered operands: the transposed GEMM variants
        yield rng.standard_normal((16, 64, 200)).astype(dtype), rng.standard_normal((16, 200, 96)).astype(dtype)
        yield rng.standard_normal((3, 2000)).astype(dtype), rng.standard_normal((2000, 1000)).astype(dtype)


def test_numpys_wheel_on_linux_shares_the_pool():
    """NumPy's Linux wheels carry OpenBLAS >= 0.3.27 (pthreads) in numpy.libs: with Numba's OpenMP layer (and
    SciPy's own OpenBLAS loaded beside it, as scikit-learn loads it) the pool must be shared, not skipped."""
    import scipy.linalg  # noqa: F401  (a second OpenBLAS in the process)

    libs = os.path.join(os.path.dirname(np.__file__) + ".libs")
    wheel = os.path.isdir(libs) and any("openblas" in name for name in os.listdir(libs))
    if not (sys.platform.startswith("linux") and wheel and os.environ.get("GPUNN_SHARED_POOL", "1") != "0"):
        pytest.skip("not NumPy's OpenBLAS wheel on Linux")
    status = blas_pool.status()
    # the two reasons the machine itself may give: Numba's threading layer, or fewer Numba threads than
    # OpenBLAS runs (NUMBA_NUM_THREADS=1); anything else means NumPy's OpenBLAS was not found or not usable
    few_threads = numba.config.NUMBA_NUM_THREADS < max(blas_pool._openblas().get_threads(), 2)
    few_threads = few_threads and f"Numba has {numba.config.NUMBA_NUM_THREADS}" in status
    assert status == "shared" or "threading layer" in status or few_threads, status


@needs_sharing
def test_results_equal_numpy_bit_for_bit_and_run_on_numbas_threads():
    for a, b in threaded_shapes():
        expected = np.matmul(a, b)
        before = blas_pool.calls()
        with blas_pool.shared_threads() as shared:
            got = np.matmul(a, b)
        assert shared
        assert blas_pool.calls() > before, f"{a.shape} @ {b.shape} {a.dtype}: the callback never ran"
        np.testing.assert_array_equal(got, expected)


@needs_sharing
def test_the_callback_is_removed_after_the_block_and_nests():
    a = np.random.default_rng().standard_normal((400, 400)).astype(np.float32)
    with blas_pool.shared_threads():
        with blas_pool.shared_threads() as inner:
            assert inner
        before = blas_pool.calls()
        a @ a  # still inside the outer block
        assert blas_pool.calls() == before + 1
    before = blas_pool.calls()
    a @ a
    assert blas_pool.calls() == before


@needs_sharing
def test_ops_matmul_runs_on_the_shared_pool_and_equals_its_reference():
    rng = np.random.default_rng()
    a, b = rng.standard_normal((256, 512)).astype(np.float32), rng.standard_normal((512, 300)).astype(np.float32)
    out = np.full((256, 300), np.nan, np.float32)
    blas_pool.parallel_kernel_ran()  # as a multi-threaded kernel (a direct convolution) does: Numba's pool is busy
    before = blas_pool.calls()
    got = ops.matmul(a, b, out=out)
    assert got is out and blas_pool.calls() == before + 1
    np.testing.assert_array_equal(got, ops.matmul.reference(a, b))
    # the layers multiply through it: a Linear layer's forward and backward are three threaded products
    layer = gn.nn.Linear(512, 300)
    layer.backward(np.ones_like(layer.forward(a)))  # compiles its kernels (seconds on a fresh machine) first
    blas_pool.parallel_kernel_ran()
    before = blas_pool.calls()
    y = layer.forward(a)
    layer.backward(np.ones_like(y))
    assert blas_pool.calls() == before + 3


@needs_sharing
def test_concurrent_callers_get_right_results():
    """Two threads in the block and one outside it, at once: the lock serialises the calls on Numba's threads."""
    rng = np.random.default_rng()
    pairs = [(rng.standard_normal((300, 350)).astype(np.float32), rng.standard_normal((350, 280)).astype(np.float32))
             for _ in range(3)]
    expected = [a @ b for a, b in pairs]
    errors = []

    def work(i, shared):
        a, b = pairs[i]
        for _ in range(40):
            if shared:
                with blas_pool.shared_threads():
                    got = a @ b
            else:
                got = a @ b
            if not np.array_equal(got, expected[i]):
                errors.append(i)
                return

    threads = [threading.Thread(target=work, args=(i, i < 2)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a BLAS call hung"
    assert not errors


@needs_sharing
def test_fewer_numba_threads_in_the_caller_still_runs_every_job_at_once():
    """OpenBLAS's GEMM jobs wait for each other: with one Numba thread set in the caller they must still get a
    thread each (run on one, this call hangs: seen when the callback did not raise the count; the subprocess
    would time out). The caller's thread count and chunk size are as they were afterwards."""
    result = run_python(
        "import numba, numpy as np\n"
        "from gpunn.kernels import blas_pool\n"
        "a = np.random.default_rng(0).standard_normal((500, 500)).astype(np.float32)\n"
        "expected = a @ a\n"
        "numba.set_num_threads(1)\n"
        "numba.set_parallel_chunksize(8)\n"
        "with blas_pool.shared_threads() as shared:\n"
        "    got = a @ a\n"
        "assert shared and blas_pool.calls() == 1 and numba.get_num_threads() == 1\n"
        "assert numba.get_parallel_chunksize() == 8\n"
        "assert np.array_equal(got, expected)\n"
        "print('ok')\n")
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_switched_off_by_the_environment():
    result = run_python(
        "import numpy as np\n"
        "from gpunn.kernels import blas_pool\n"
        "a = np.ones((500, 500), np.float32)\n"
        "with blas_pool.shared_threads() as shared:\n"
        "    got = a @ a\n"
        "assert not shared and blas_pool.calls() == 0 and (got == 500).all()\n"
        "print(blas_pool.status())\n", GPUNN_SHARED_POOL="0")
    assert result.returncode == 0, result.stderr
    assert "GPUNN_SHARED_POOL=0" in result.stdout


def test_one_blas_thread_needs_no_sharing():
    """With OpenBLAS on one thread nothing is handed out: the block says so and NumPy computes as usual."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng().standard_normal((400, 400)).astype(np.float32)
    with threadpool_limits(1, user_api="blas"):
        with blas_pool.shared_threads() as shared:
            before = blas_pool.calls()
            got = a @ a
            assert blas_pool.calls() == before
    assert not shared
    np.testing.assert_allclose(got, a @ a, rtol=1e-5, atol=1e-4)


@needs_sharing
def test_ops_matmul_shares_only_while_numbas_threads_are_busy():
    """An MLP's kernels run on one thread: its GEMMs keep OpenBLAS's pool. A direct convolution (all threads)
    marks Numba's pool busy, and the GEMMs after it share that pool."""
    rng = np.random.default_rng()
    a = rng.standard_normal((300, 400)).astype(np.float32)
    blas_pool.LAST_PARALLEL[0] = -1.0
    before = blas_pool.calls()
    expected = ops.matmul(a, a.T)
    assert blas_pool.calls() == before and not blas_pool.numba_busy()
    conv = gn.nn.Conv2d(3, 32, 3, padding=1)
    assert conv.algorithm_for((64, 3, 32, 32)) == "direct"
    conv.forward(rng.standard_normal((64, 3, 32, 32)).astype(np.float32))
    assert blas_pool.numba_busy()
    np.testing.assert_array_equal(ops.matmul(a, a.T), expected)
    assert blas_pool.calls() == before + 1
