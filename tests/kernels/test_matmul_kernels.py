"""Matrix products (kernels/matmul.py): the GPU's precision, float32 or TF32, set through CuPy's compute types."""

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops


@pytest.fixture
def precision():
    """Restores the process-wide matrix-product precision after the test."""
    before = gn.get_matmul_precision()
    yield
    gn.set_matmul_precision(before)


def tf32(a):
    """float32 rounded to TF32 by hand: 10 mantissa bits, to nearest, ties away from zero (cvt.rna.tf32.f32)."""
    m, e = np.frexp(a.astype(np.float64))
    return np.ldexp(np.sign(m) * np.floor(np.abs(m) * 2.0 ** 11 + 0.5) / 2.0 ** 11, e).astype(np.float32)


def test_high_rounds_float32_products_to_tf32_on_a_gpu_and_highest_does_not(one_gpu, rng, precision):
    a, b = rng.standard_normal((33, 70)).astype(np.float32), rng.standard_normal((70, 9)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    as_tf32 = tf32(a).astype(np.float64) @ tf32(b).astype(np.float64)
    assert gn.get_matmul_precision() == "highest"
    highest = gn.to_numpy(ops.matmul(one_gpu.asarray(a), one_gpu.asarray(b)))
    np.testing.assert_allclose(highest, exact, rtol=1e-5, atol=1e-5)
    gn.set_matmul_precision("high")
    high = gn.to_numpy(ops.matmul(one_gpu.asarray(a), one_gpu.asarray(b)))
    np.testing.assert_allclose(high, as_tf32, rtol=1e-5, atol=1e-5)  # TF32 inputs, float32 sums
    assert np.abs(high - exact).max() > 10 * np.abs(highest - exact).max()  # and that is visibly coarser
    np.testing.assert_array_equal(ops.matmul(a, b), a @ b)  # the CPU is unaffected
    import cupy

    linalg = cupy._core._routines_linalg
    assert cupy._core.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    assert cupy._core.get_compute_type(np.float16) == linalg.COMPUTE_TYPE_FP32  # float16 sums in float32 always
    gn.set_matmul_precision("highest")
    np.testing.assert_array_equal(gn.to_numpy(ops.matmul(one_gpu.asarray(a), one_gpu.asarray(b))), highest)
    assert cupy._core.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_FP32


def test_float16_products_accumulate_in_float32(one_gpu, rng):
    """512 products summed: within float32's summation bound of the exact sum (plus the one rounding to float16), a
    bound that a sum kept in float16 breaks (checked too, so the test tells the two apart)."""
    a, b = rng.standard_normal((16, 512)).astype(np.float16), rng.standard_normal((512, 8)).astype(np.float16)
    got = gn.to_numpy(ops.matmul(one_gpu.asarray(a), one_gpu.asarray(b)))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 512 * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    allowed = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64) + bound
    assert got.dtype == np.float16
    assert (np.abs(got - exact) <= allowed).all()
    in_float16 = np.zeros(exact.shape, np.float16)
    for k in range(512):
        in_float16 += a[:, k:k + 1] * b[k]
    assert (np.abs(in_float16 - exact) > allowed).any()


def test_a_bad_precision_is_named_and_changes_nothing(precision):
    gn.set_matmul_precision("high")
    for bad in ("tf32", "medium", None):
        with pytest.raises(ValueError, match=f"unknown precision {bad!r}; expected one of 'highest', 'high'"):
            gn.set_matmul_precision(bad)
    assert gn.get_matmul_precision() == "high"


def test_gpunn_info_reports_the_precision(precision, capsys):
    from gpunn.cli import main

    gn.set_matmul_precision("high")
    assert main(["info"]) == 0
    assert "matmul precision: high (float32 products on a GPU in TF32" in capsys.readouterr().out
