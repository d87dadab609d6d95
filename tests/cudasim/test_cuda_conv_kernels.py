"""The convolution and pooling CUDA kernels in Numba's CUDA simulator, against the xp references.

Run by tests/test_kernels.py in a subprocess with NUMBA_ENABLE_CUDASIM=1; skipped otherwise.
Small sizes (the simulator runs each thread in Python) and a grid smaller than the data,
so the grid-stride loops are exercised. Outputs start as NaN.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="needs NUMBA_ENABLE_CUDASIM=1")

from gpunn import ops  # noqa: E402
from gpunn.kernels import activations as act  # noqa: E402
from gpunn.kernels import conv  # noqa: E402

GRID = (2, 32)  # 64 threads
GEOMETRIES = [((2, 2, 5, 4), (3, 3), (1, 1), (1, 1)), ((1, 2, 6, 5), (3, 2), (2, 1), (1, 0)),
              ((1, 1, 3, 3), (4, 4), (1, 1), (1, 1))]


def sizes(shape, k, s, p):
    return ops.pooled_size(shape[2], k[0], s[0], p[0]), ops.pooled_size(shape[3], k[1], s[1], p[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,s,p", GEOMETRIES)
def test_im2col_and_col2im(shape, k, s, p, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    ho, wo = sizes(shape, k, s, p)
    ref = ops.im2col.reference(x, k, s, p)
    cols = np.full(ref.shape, np.nan, dtype)
    conv.im2col_cuda[GRID](x, cols, *k, *s, *p, ho, wo, dtype(0))
    np.testing.assert_array_equal(cols, ref)
    g = rng.standard_normal(ref.shape).astype(dtype)
    dx = np.full(shape, np.nan, dtype)
    conv.col2im_cuda[GRID](g, dx, *k, *s, *p, ho, wo, dtype(0))
    np.testing.assert_allclose(dx, ops.col2im.reference(g, shape, k, s, p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["identity", "relu", "tanh"])
def test_conv_epilogue(kind, rng):
    n, f, plane = 2, 3, 7
    dt = np.dtype(np.float32)
    z, b = rng.standard_normal((f, n * plane)).astype(dt), rng.standard_normal(f).astype(dt)
    out = np.full((n, f, plane), np.nan, dt)
    conv.epilogue_cuda[GRID](z, b, out, True, act.CODES[kind], dt.type(0), dt.type(0), dt.type(0.5))
    y_ref = ops.conv_bias_activation.reference(z, b, np.empty_like(out), kind)
    np.testing.assert_allclose(out, y_ref, rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(dt)
    dz = np.full((f, n * plane), np.nan, dt)
    conv.epilogue_backward_cuda[GRID](g, y_ref, dz, np.empty(f, dt), act.CODES[kind], dt.type(0), dt.type(0),
                                      dt.type(0.5))
    np.testing.assert_allclose(dz, ops.conv_bias_activation_backward.reference(g, y_ref, kind)[0], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("shape,k,s", [((1, 2, 4, 4), (2, 2), (2, 2)), ((1, 1, 5, 6), (3, 2), (2, 1))])
def test_max_pool(shape, k, s, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::5] = x.reshape(-1)[1]  # ties
    out_ref, arg_ref = ops.max_pool_forward.reference(x, k, s)
    n, c, ho, wo = out_ref.shape
    out, arg = np.full((n * c, ho, wo), np.nan, np.float32), np.full((n * c, ho, wo), -7, np.int32)
    conv.max_pool_cuda[GRID](x.reshape(n * c, *shape[2:]), out, arg, *k, *s)
    np.testing.assert_array_equal(out.reshape(out_ref.shape), out_ref)
    np.testing.assert_array_equal(arg.reshape(arg_ref.shape), arg_ref)
    g = rng.standard_normal(out_ref.shape).astype(np.float32)
    dx = np.full((n * c, *shape[2:]), np.nan, np.float32)
    conv.max_pool_backward_cuda[GRID](g.reshape(n * c, ho, wo), arg, dx, *k, *s, np.float32(0))
    np.testing.assert_allclose(dx.reshape(shape), ops.max_pool_backward.reference(g, arg_ref, shape, k, s), rtol=1e-6)


# --------------------------------------------------------------------------- Winograd F(2x2, 3x3) transforms
from gpunn.kernels import winograd  # noqa: E402

WINOGRAD_CASES = [((2, 2, 5, 4), (1, 1)), ((1, 2, 4, 5), (1, 0)), ((1, 1, 4, 4), (0, 0)), ((1, 1, 3, 3), (2, 2))]


def tile_rows(a):
    """A (16, K, T) array as the kernels' (16, K T) rows."""
    return a.reshape(16, -1)


def args(kind):
    """The activation kernels' trailing arguments, float64."""
    return act.CODES[kind], 0.0, 0.0, 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,padding", WINOGRAD_CASES)
def test_winograd_input_and_its_adjoint(shape, padding, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    ref = ops.winograd_input.reference(x, padding)
    th, tw = ops.winograd_tiles(shape[2] + 2 * padding[0] - 2, shape[3] + 2 * padding[1] - 2)
    v = np.full(ref.shape, np.nan, dtype)
    winograd.input_cuda[GRID](x, tile_rows(v), *padding, th, tw, dtype(0))
    np.testing.assert_array_equal(v, ref)
    dv = rng.standard_normal(ref.shape).astype(dtype)
    dx = np.full(shape, np.nan, dtype)
    winograd.input_backward_cuda[GRID](tile_rows(dv), dx, *padding, th, tw, dtype(0))
    np.testing.assert_allclose(dx, ops.winograd_input_backward.reference(dv, shape, padding), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["identity", "relu", "tanh"])
@pytest.mark.parametrize("ho,wo", [(4, 4), (3, 5)])
def test_winograd_output_and_its_adjoint(kind, ho, wo, rng):
    n, f = 2, 3
    th, tw = ops.winograd_tiles(ho, wo)
    m = rng.standard_normal((16, f, n * th * tw))
    b = rng.standard_normal(f)
    out, ref = np.full((n, f, ho, wo), np.nan), np.empty((n, f, ho, wo))
    winograd.output_cuda[GRID](tile_rows(m), b, out, True, *args(kind))
    ops.winograd_output.reference(m, b, ref, kind)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    dm = np.full(m.shape, np.nan)
    winograd.output_backward_cuda[GRID](g, ref, tile_rows(dm), b, *args(kind))
    np.testing.assert_allclose(dm, ops.winograd_output_backward.reference(g, ref, kind)[0], rtol=1e-12, atol=1e-12)
