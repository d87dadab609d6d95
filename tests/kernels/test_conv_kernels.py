"""im2col / col2im (kernels/im2col.py), the convolution's epilogue (kernels/conv_epilogue.py) and max pooling
(kernels/pooling.py): their kernels against the xp references, on every device."""

import numpy as np
import pytest
from kernel_cases import DTYPES, assert_half, assert_refused_unchanged, poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops

host = gn.to_numpy
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


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s,p", GEOMETRIES)
def test_im2col_and_col2im(shape, k, s, p, dtype, device, rng):
    x = rng.standard_normal(shape).astype(dtype)
    cols = ops.im2col.with_kernel(device.asarray(x), k, s, p)
    np.testing.assert_array_equal(host(cols), ops.im2col.reference(x, k, s, p))  # a pure copy: bit for bit
    g = rng.standard_normal(cols.shape).astype(dtype)
    dx = host(ops.col2im.with_kernel(device.asarray(g), shape, k, s, p))
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, ops.col2im.reference(g, shape, k, s, p), rtol=8 * np.finfo(dtype).eps,
                               atol=8 * np.finfo(dtype).eps)


def test_col2im_is_the_adjoint_of_im2col(rng):
    """<im2col(x), g> = <x, col2im(g)> for any x and g: the backward pass is the transpose of the forward."""
    shape, k, s, p = (2, 3, 9, 7), (3, 2), (2, 1), (1, 1)
    x = rng.standard_normal(shape)
    cols = ops.im2col.with_kernel(x, k, s, p)
    g = rng.standard_normal(cols.shape)
    assert np.vdot(cols, g) == pytest.approx(np.vdot(x, ops.col2im.with_kernel(g, shape, k, s, p)), rel=1e-12)


OUTPUT_BASED = sorted(name for name, cls in gn.nn.ACTIVATIONS.items() if cls.backward_from == "output")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", OUTPUT_BASED)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_epilogue_forward_and_backward(kind, bias, dtype, device, rng):
    n, f, plane = 3, 5, 17
    cls = gn.nn.ACTIVATIONS[kind]
    gate = cls(alpha=0.2) if "alpha" in cls.numbers else cls()
    z = rng.standard_normal((f, n * plane)).astype(dtype) * 2
    b = rng.standard_normal(f).astype(dtype) if bias else None
    out = device.asarray(np.full((n, f, plane), np.nan, dtype))
    y = ops.conv_bias_activation.with_kernel(device.asarray(z), None if b is None else device.asarray(b), out, gate)
    assert y is out
    y_ref = ops.conv_bias_activation.reference(z, b, np.empty((n, f, plane), dtype), gate)
    tol = (4 if device.type == "cpu" else 8) * np.finfo(dtype).eps
    np.testing.assert_allclose(host(y), y_ref, rtol=tol, atol=tol)
    g = rng.standard_normal((n, f, plane)).astype(dtype)
    dz, db = ops.conv_bias_activation_backward.with_kernel(device.asarray(g), device.asarray(y_ref), gate)
    dz_ref, db_ref = ops.conv_bias_activation_backward.reference(g, y_ref, gate)
    np.testing.assert_allclose(host(dz), dz_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(host(db), db_ref, rtol=n * plane * tol, atol=n * plane * tol)


def test_the_epilogue_refuses_an_activation_whose_backward_needs_its_input(rng):
    z = rng.standard_normal((2, 6)).astype(np.float32)
    for call in (lambda: ops.conv_bias_activation(z, None, np.empty((3, 2, 2), np.float32), gn.nn.GELU()),
                 lambda: ops.conv_bias_activation_backward(z.reshape(3, 2, 2), z.reshape(3, 2, 2), gn.nn.GELU())):
        with pytest.raises(ValueError, match=r"GELU\(\) needs its input"):
            call()


POOLS = [((2, 3, 8, 8), (2, 2), (2, 2)), ((2, 3, 7, 9), (2, 2), (2, 2)), ((2, 2, 7, 9), (3, 3), (2, 2)), ((1, 2, 6, 7), (2, 3), (1, 2)),
         ((3, 1, 5, 5), (5, 5), (5, 5)), ((1, 1, 5, 4), (1, 1), (2, 3))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s", POOLS)
def test_max_pool(shape, k, s, dtype, device, rng):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties
    x.reshape(-1)[5] = np.nan
    out, arg = ops.max_pool_forward.with_kernel(device.asarray(x), k, s)
    out_ref, arg_ref = ops.max_pool_forward.reference(x, k, s)
    np.testing.assert_array_equal(host(out), out_ref)
    np.testing.assert_array_equal(host(arg), arg_ref)
    assert arg.dtype == np.int32
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = ops.max_pool_backward.with_kernel(device.asarray(g), device.asarray(arg_ref), shape, k, s)
    np.testing.assert_allclose(host(dx), ops.max_pool_backward.reference(g, arg_ref, shape, k, s), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x: ops.im2col.with_kernel(x.reshape(1, 2, 4, 4).astype(np.int32), (3, 3), (1, 1), (1, 1)),
         "arrays must be float32 or float64"),
        (lambda x: ops.col2im.with_kernel(x.reshape(2, -1)[:, :-1].copy(), (1, 2, 4, 4), (3, 3), (1, 1), (1, 1)),
         r"col2im: cols has shape"),
        (lambda x: ops.conv_bias_activation.with_kernel(x.reshape(2, 16), None, np.empty((2, 2, 4), np.float64),
                                                        gn.nn.ReLU()), "out must be C-contiguous float32"),
        (lambda x: ops.conv_bias_activation.with_kernel(x.reshape(2, 16), x[:3], np.empty((4, 2, 4), np.float32),
                                                        gn.nn.ReLU()),
         r"b must be float32 of shape \(2,\)"),
        (lambda x: ops.max_pool_backward.with_kernel(x.reshape(1, 2, 4, 4), np.zeros((1, 2, 4, 4), np.int64), (1, 2, 8, 8),
                                            (2, 2), (2, 2)), "argmax must be int32"),
    ],
)
def test_bad_arguments_are_named(call, match, rng):
    assert_refused_unchanged(call, rng.standard_normal(32).astype(np.float32), match)


def test_strided_images_are_made_contiguous(rng):
    x = rng.standard_normal((2, 3, 10, 10))[:, :, ::2, ::2]
    np.testing.assert_array_equal(ops.im2col.with_kernel(x, (3, 3), (1, 1), (1, 1)), ops.im2col.reference(x, (3, 3), (1, 1), (1, 1)))


# --------------------------------------------------------------------------- float16 (mixed precision, CUDA only)

@pytest.mark.parametrize("shape,k,s,p", GEOMETRIES[:3])
def test_float16_im2col_copies_and_col2im_sums_in_float32(shape, k, s, p, one_gpu, rng):
    x = rng.standard_normal(shape).astype(np.float16)
    cols = ops.im2col.with_kernel(one_gpu.asarray(x), k, s, p)
    np.testing.assert_array_equal(host(cols), ops.im2col.reference(x, k, s, p))
    g = rng.standard_normal(cols.shape).astype(np.float16)
    dx = ops.col2im.with_kernel(one_gpu.asarray(g), shape, k, s, p)
    assert_half(dx, ops.col2im.reference(g.astype(np.float64), shape, k, s, p), "col2im")


@pytest.mark.parametrize("kind", OUTPUT_BASED)
def test_float16_conv_epilogue(kind, one_gpu, rng):
    n, f, plane = 3, 5, 17
    cls = gn.nn.ACTIVATIONS[kind]
    gate = cls(alpha=0.2) if "alpha" in cls.numbers else cls()
    z, b = rng.standard_normal((f, n * plane)).astype(np.float16) * 2, rng.standard_normal(f).astype(np.float16)
    out = one_gpu.asarray(np.full((n, f, plane), np.nan, np.float16))
    ops.conv_bias_activation.with_kernel(one_gpu.asarray(z), one_gpu.asarray(b), out, gate)
    exact = ops.conv_bias_activation.reference(z.astype(np.float64), b.astype(np.float64),
                                                np.empty((n, f, plane)), gate)
    assert_half(out, exact, f"{kind} epilogue")
    g, y = rng.standard_normal((n, f, plane)).astype(np.float16), host(out)
    dz, db = ops.conv_bias_activation_backward.with_kernel(one_gpu.asarray(g), one_gpu.asarray(y), gate)
    dz_exact, db_exact = ops.conv_bias_activation_backward.reference(g.astype(np.float64), y.astype(np.float64), gate)
    assert_half(dz, dz_exact, f"{kind} epilogue dz")
    # on CUDA db is CuPy's row sum of the float16 dz (accumulated in float32): the sum of dz as stored
    assert_half(db, host(dz).astype(np.float64).sum(axis=1), f"{kind} epilogue db")


def test_float16_max_pool(one_gpu, rng):
    shape, k, s = POOLS[2]
    x = rng.standard_normal(shape).astype(np.float16)
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # ties
    out, arg = ops.max_pool_forward.with_kernel(one_gpu.asarray(x), k, s)
    out_ref, arg_ref = ops.max_pool_forward.reference(x, k, s)
    np.testing.assert_array_equal(host(out), out_ref)
    np.testing.assert_array_equal(host(arg), arg_ref)
    g = rng.standard_normal(out.shape).astype(np.float16)
    dx = ops.max_pool_backward.with_kernel(one_gpu.asarray(g), one_gpu.asarray(arg_ref), shape, k, s)
    assert_half(dx, ops.max_pool_backward.reference(g.astype(np.float64), arg_ref, shape, k, s), "max pool backward")
