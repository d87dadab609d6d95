"""The convolution and pooling CUDA kernels on the simulated GPU (Numba's CUDA simulator), against the xp references.

Small sizes (the simulator runs each thread in Python) and a 3-D grid smaller than the data in every
dimension, so each grid-stride loop takes more than one step. Outputs start as NaN. (On a real GPU the
same kernels run through the layers' device-parametrised tests.)
"""

import numpy as np
import pytest
from conftest import SIMULATED

pytestmark = [pytest.mark.gpu_sim, pytest.mark.skipif(not SIMULATED, reason="kernel-level tests of the simulator")]

from gpunn import ops  # noqa: E402
from gpunn.kernels import activations as act  # noqa: E402
from gpunn.kernels import conv  # noqa: E402

GRID = ((2, 1, 2), (4, 2, 1))  # blocks, threads per block: 2 x 2 x 2 x ... covering x, y and z in strides
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
