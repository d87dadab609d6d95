"""k-nearest neighbours' distance kernels (kernels/distances.py) against their xp references, on every device."""

import numpy as np
import pytest

from kernel_cases import poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l1_and_the_l2_epilogue(dtype, device, rng):
    A, B = rng.standard_normal((19, 37)).astype(dtype), rng.standard_normal((23, 37)).astype(dtype)
    l1 = ops.l1_distances.with_kernel(device.asarray(A), device.asarray(B))
    np.testing.assert_allclose(gn.to_numpy(l1), ops.l1_distances.reference(A, B), rtol=1e-5)
    G = A @ B.T
    a_sq, b_sq = (A * A).sum(axis=1), (B * B).sum(axis=1)
    ref = ops.l2_epilogue.reference(G.copy(), a_sq, b_sq, True)
    got = ops.l2_epilogue.with_kernel(device.asarray(G), device.asarray(a_sq), device.asarray(b_sq), True)
    np.testing.assert_allclose(gn.to_numpy(got), ref, rtol=1e-5)
