"""MKL's GEMM (kernels/mkl_gemm.py), used where the optional mkl package is installed: NumPy's results within
float GEMM rounding, every layout the layers pass, and NumPy's path for everything cblas_?gemm cannot take."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from gpunn import ops
from gpunn.kernels import mkl_gemm

needs_mkl = pytest.mark.skipif(not mkl_gemm.available(), reason=f"MKL not in use: {mkl_gemm.status()}")
# a GEMM's rounding, relative to (|A| |B|) elementwise: a few 1e-7 in float32 at K = 3072 (K 2^-24 at worst)
TOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


class Tagged(np.ndarray):
    """An ndarray subclass, as a user's or a library's."""


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def operands(rng, m, k, n, dtype, a_t, b_t):
    """A (m x k) and B (k x n) of ``dtype``, each C-ordered or a transposed view of a C-ordered array."""
    a = rng.standard_normal((k, m) if a_t else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if b_t else (k, n)).astype(dtype)
    return (a.T if a_t else a), (b.T if b_t else b)


def relative_error(got, a, b, expected=None) -> float:
    """max |C - E| / (|A| |B|): a GEMM's componentwise error against ``expected`` (default: the float64 product)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = a64 @ b64 if expected is None else expected
    return float(np.max(np.abs(got - expected) / (np.abs(a64) @ np.abs(b64))))


def assert_gemm_close(got, a, b):
    """``got`` equals NumPy's ``a @ b`` and the float64 product within the dtype's GEMM rounding."""
    assert got.dtype == a.dtype and got.shape == (a.shape[0], b.shape[1])
    assert relative_error(got, a, b, np.matmul(a, b)) < TOL[a.dtype]
    assert relative_error(got, a, b) < TOL[a.dtype]


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_t, b_t", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m, k, n", [(200, 3072, 100), (200, 100, 10), (100, 200, 10), (1, 7, 1), (33, 1, 5)])
def test_equals_numpy_for_every_layout(rng, dtype, a_t, b_t, m, k, n):
    a, b = operands(rng, m, k, n, dtype, a_t, b_t)
    got = mkl_gemm.matmul(a, b)
    assert got.flags.c_contiguous
    assert_gemm_close(got, a, b)


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_writes_into_out_including_a_row_major_view(rng, dtype):
    a, b = operands(rng, 64, 48, 32, dtype, True, False)
    out = np.full((64, 32), np.nan, dtype)
    assert mkl_gemm.matmul(a, b, out=out) is out
    assert_gemm_close(out, a, b)
    wide = np.full((64, 40), np.nan, dtype)  # out rows 40 apart: a leading dimension larger than n
    view = wide[:, 4:36]
    assert mkl_gemm.matmul(a, b, out=view) is view
    assert_gemm_close(view, a, b)
    assert np.isnan(wide[:, :4]).all() and np.isnan(wide[:, 36:]).all()  # nothing written beside the view


@needs_mkl
def test_views_with_a_leading_dimension_larger_than_their_width_run_on_mkl(rng):
    a = rng.standard_normal((60, 80)).astype(np.float32)[5:45, 10:60]  # (40, 50), rows 80 apart
    b = rng.standard_normal((100, 18)).astype(np.float32)[::2]  # (50, 18), every other row
    at = rng.standard_normal((50, 64)).astype(np.float32)[:, :40].T  # (40, 50), column-major, columns 64 apart
    for x, y in ((a, b), (at, b), (b.T, at.T)):
        got = mkl_gemm.matmul(x, y)
        assert got is not NotImplemented, (x.strides, y.strides)
        assert_gemm_close(got, x, y)


@needs_mkl
def test_what_blas_cannot_take_in_place_still_runs_on_mkl(rng, tmp_path):
    """Strided, misaligned or memory-mapped operands and an out they overlap or a column-major out: MKL's product
    all the same (copies made first, as NumPy makes them), so a result does not depend on the storage."""
    a = rng.standard_normal((8, 6)).astype(np.float32)
    b = rng.standard_normal((6, 4)).astype(np.float32)
    expected = mkl_gemm.matmul(a, b)
    wide = np.empty((16, 12), np.float32)
    wide[::2, ::2] = a
    raw = np.empty(a.nbytes + 1, np.uint8)[1:].view(np.float32).reshape(a.shape)  # misaligned
    raw[...] = a
    mapped = np.memmap(tmp_path / "a.bin", np.float32, "w+", shape=a.shape)
    mapped[...] = a
    for x in (wide[::2, ::2], raw, mapped):
        got = mkl_gemm.matmul(x, b)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, expected)
    column_major = np.asfortranarray(np.full((8, 4), np.nan, np.float32))
    assert mkl_gemm.matmul(a, b, out=column_major) is column_major
    np.testing.assert_array_equal(column_major, expected)
    shared = np.zeros((8, 10), np.float32)
    shared[:, :6] = a
    got = mkl_gemm.matmul(shared[:, :6], b, out=shared[:, 6:])  # out overlaps a's rows
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(shared[:, :6], a)


@needs_mkl
def test_declines_what_is_not_a_2d_float_product(rng):
    """NotImplemented, with nothing written: ops.matmul then runs NumPy (and NumPy's errors for bad input)."""
    a = rng.standard_normal((8, 6)).astype(np.float32)
    b = rng.standard_normal((6, 4)).astype(np.float32)
    out = np.full((8, 4), np.nan, np.float32)
    readonly = out.copy()
    readonly.flags.writeable = False
    declined = [
        (a.astype(np.int64), b.astype(np.int64), None),  # integers
        (a, b.astype(np.float64), None),  # mixed dtypes
        (a.astype(np.float16), b.astype(np.float16), None),
        (a.astype(np.complex64), b.astype(np.complex64), None),
        (a[None], b[None], None),  # batched
        (a.view(Tagged), b, None),  # a subclass: NumPy's product keeps its type (np.matrix its semantics)
        (a, b, out.astype(np.float64)),  # out of another dtype
        (a, b, readonly),
        (a, b, out[:, :3]),  # out of the wrong shape
        (a, rng.standard_normal((5, 4)).astype(np.float32), None),  # shapes that do not match
        (a[:, :0], b[:0], None),  # empty
    ]
    for x, y, o in declined:
        assert mkl_gemm.matmul(x, y, out=o) is NotImplemented, (x.dtype, x.shape, y.shape)
    assert np.isnan(out).all()
    with pytest.raises(ValueError):
        ops.matmul(a, rng.standard_normal((5, 4)).astype(np.float32))  # NumPy's error, as before


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_matmul_runs_mkl_and_the_switch_turns_it_off(rng, dtype):
    a, b = operands(rng, 96, 300, 70, dtype, False, True)
    out = np.full((96, 70), np.nan, dtype)
    got = ops.matmul(a, b, out=out)
    assert got is out
    assert_gemm_close(got, a, b)
    np.testing.assert_array_equal(got, mkl_gemm.matmul(a, b))  # MKL's product, not NumPy's
    with mkl_gemm.use_mkl(False):
        assert not mkl_gemm.available()
        np.testing.assert_array_equal(ops.matmul(a, b), np.matmul(a, b))
    assert mkl_gemm.available()


def test_the_environment_switch_keeps_numpys_blas():
    code = ("import numpy as np; from gpunn import ops; from gpunn.kernels import mkl_gemm\n"
            "a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)\n"
            "assert not mkl_gemm.available() and mkl_gemm.status() == 'GPUNN_MKL=0', mkl_gemm.status()\n"
            "assert mkl_gemm.matmul(a, a.T) is NotImplemented\n"
            "assert (ops.matmul(a, a.T) == np.matmul(a, a.T)).all()\n"
            "assert mkl_gemm._mkl.cache_info().currsize == 0  # the library never looked for\n")
    result = run_python(code, GPUNN_MKL="0")
    assert result.returncode == 0, result.stderr


def test_status_names_the_library_or_why_not():
    status = mkl_gemm.status()
    if mkl_gemm.available():
        assert "Math Kernel Library" in status
    else:
        assert status in ("GPUNN_MKL=0", "the mkl package is not installed (pip install gpunn[mkl])"), status
