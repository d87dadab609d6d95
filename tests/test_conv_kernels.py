"""The convolution and pooling CPU kernels against the xp references in gpunn.ops.

Bindings are built with no size threshold, so every case runs a kernel. Every array a binding
allocates starts poisoned (NaN, or -7 for indices), so an element the kernel never writes shows up.
The CUDA versions run under Numba's simulator in tests/cudasim/test_cuda_conv_kernels.py.
"""

import numpy as np
import pytest

from gpunn import ops
from gpunn.kernels import bindings
from gpunn.kernels.bindings import Target, make_bindings

REF = {name: getattr(ops, name).reference for name in ops.KERNEL_OPS}
CPU = make_bindings(Target("cpu"), REF, min_size=0)
DTYPES = [np.float32, np.float64]
# (N, C, H, W), kernel, stride, padding: odd sizes, non-square kernels, strides that skip pixels,
# padding wider than some taps reach, a kernel as large as the padded image
GEOMETRIES = [
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1)),
    ((3, 2, 9, 8), (3, 2), (2, 1), (1, 0)),
    ((1, 4, 5, 11), (1, 4), (1, 3), (0, 2)),
    ((2, 1, 6, 6), (5, 5), (2, 2), (2, 2)),
    ((1, 2, 4, 4), (3, 3), (3, 3), (2, 2)),
    ((2, 2, 3, 3), (1, 1), (2, 2), (3, 3)),
    ((1, 1, 2, 2), (4, 4), (1, 1), (1, 1)),
]


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    def poisoned(like, shape, dtype):
        return np.full(shape, -7 if np.dtype(dtype).kind == "i" else np.nan, dtype)

    monkeypatch.setattr(bindings, "_empty", poisoned)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s,p", GEOMETRIES)
def test_im2col_and_col2im(shape, k, s, p, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    cols = CPU["im2col"](x, k, s, p)
    np.testing.assert_array_equal(cols, REF["im2col"](x, k, s, p))  # a pure copy: bit for bit
    g = rng.standard_normal(cols.shape).astype(dtype)
    dx = CPU["col2im"](g, shape, k, s, p)
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, REF["col2im"](g, shape, k, s, p), rtol=8 * np.finfo(dtype).eps,
                               atol=8 * np.finfo(dtype).eps)


def test_col2im_is_the_adjoint_of_im2col(rng):
    """<im2col(x), g> = <x, col2im(g)> for any x and g: the backward pass is the transpose of the forward."""
    shape, k, s, p = (2, 3, 9, 7), (3, 2), (2, 1), (1, 1)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(CPU["im2col"](x, k, s, p).shape)
    assert np.vdot(CPU["im2col"](x, k, s, p), g) == pytest.approx(np.vdot(x, CPU["col2im"](g, shape, k, s, p)),
                                                                   rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_epilogue_forward_and_backward(kind, bias, dtype, rng):
    n, f, plane = 3, 5, 17
    z = rng.standard_normal((f, n * plane)).astype(dtype) * 2
    b = rng.standard_normal(f).astype(dtype) if bias else None
    out = np.full((n, f, plane), np.nan, dtype)
    y = CPU["conv_bias_activation"](z, b, out, kind, 0.2)
    assert y is out
    y_ref = REF["conv_bias_activation"](z, b, np.empty_like(out), kind, 0.2)
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    g = rng.standard_normal((n, f, plane)).astype(dtype)
    dz, db = CPU["conv_bias_activation_backward"](g, y_ref, kind, 0.2)
    dz_ref, db_ref = REF["conv_bias_activation_backward"](g, y_ref, kind, 0.2)
    np.testing.assert_allclose(dz, dz_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, db_ref, rtol=n * plane * tol, atol=n * plane * tol)


POOLS = [((2, 3, 8, 8), (2, 2), (2, 2)), ((2, 3, 7, 9), (2, 2), (2, 2)), ((2, 2, 7, 9), (3, 3), (2, 2)), ((1, 2, 6, 7), (2, 3), (1, 2)),
         ((3, 1, 5, 5), (5, 5), (5, 5)), ((1, 1, 5, 4), (1, 1), (2, 3))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s", POOLS)
def test_max_pool(shape, k, s, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties
    x.reshape(-1)[5] = np.nan
    out, arg = CPU["max_pool_forward"](x, k, s)
    out_ref, arg_ref = REF["max_pool_forward"](x, k, s)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert arg.dtype == np.int32
    g = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(CPU["max_pool_backward"](g, arg_ref, shape, k, s),
                               REF["max_pool_backward"](g, arg_ref, shape, k, s), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x: CPU["im2col"](x.reshape(1, 2, 4, 4).astype(np.int32), (3, 3), (1, 1), (1, 1)),
         "arrays must be float32 or float64"),
        (lambda x: CPU["col2im"](x.reshape(2, -1)[:, :-1].copy(), (1, 2, 4, 4), (3, 3), (1, 1), (1, 1)),
         r"col2im: cols has shape"),
        (lambda x: CPU["conv_bias_activation"](x.reshape(2, 16), None, np.empty((2, 2, 4), np.float64), "relu"),
         "out must be C-contiguous float32"),
        (lambda x: CPU["conv_bias_activation"](x.reshape(2, 16), x[:3], np.empty((4, 2, 4), np.float32), "relu"),
         r"b must be float32 of shape \(2,\)"),
        (lambda x: CPU["max_pool_backward"](x.reshape(1, 2, 4, 4), np.zeros((1, 2, 4, 4), np.int64), (1, 2, 8, 8),
                                            (2, 2), (2, 2)), "argmax must be int32"),
    ],
)
def test_bad_arguments_are_named(call, match, rng):
    x = rng.standard_normal(32).astype(np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match=match):
        call(x)
    np.testing.assert_array_equal(x, before)


def test_strided_images_are_made_contiguous(rng):
    x = rng.standard_normal((2, 3, 10, 10))[:, :, ::2, ::2]
    np.testing.assert_array_equal(CPU["im2col"](x, (3, 3), (1, 1), (1, 1)), REF["im2col"](x, (3, 3), (1, 1), (1, 1)))
