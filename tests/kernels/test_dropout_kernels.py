"""Dropout kernels (kernels/dropout.py): masks bit-identical to the xp reference on every device."""

import numpy as np
import pytest
from kernel_cases import DTYPES, sizes, poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # uint64 hash arithmetic wraps by design


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_dropout_masks_are_bit_identical_to_the_reference(dtype, device, rng):
    for n in sizes(device):
        x = rng.standard_normal(n).astype(dtype)
        seed, p = int(rng.integers(0, 2**63)), float(rng.uniform(0.1, 0.9))
        out, mask = ops.dropout_forward.with_kernel(device.asarray(x), p, seed, 1000)
        out_ref, mask_ref = ops.dropout_forward.reference(x, p, seed, 1000)
        np.testing.assert_array_equal(gn.to_numpy(mask), mask_ref)
        np.testing.assert_array_equal(gn.to_numpy(out), out_ref)
        if n > 10**5:
            assert abs((mask_ref == 0).mean() - p) < 0.003


def test_float16_dropout_is_numpys_float16_product_bit_for_bit(one_gpu, rng):
    """float16 arrays (mixed precision): the mask holds the scale rounded to float16, and x * mask, computed in float32
    from two float16 values, is exact there, so rounding it once gives NumPy's float16 product."""
    x = rng.standard_normal(300).astype(np.float16)
    seed, p = int(rng.integers(0, 2**63)), float(rng.uniform(0.1, 0.9))
    out, mask = ops.dropout_forward.with_kernel(one_gpu.asarray(x), p, seed, 1000)
    out_ref, mask_ref = ops.dropout_forward.reference(x, p, seed, 1000)
    assert gn.to_numpy(out).dtype == gn.to_numpy(mask).dtype == np.float16
    np.testing.assert_array_equal(gn.to_numpy(mask), mask_ref)
    np.testing.assert_array_equal(gn.to_numpy(out), out_ref)


def test_dropout_offset_draws_the_rows_of_a_bigger_batch(rng):
    """A process holding rows 5..12 of a batch draws exactly those rows of the whole batch's mask."""
    x = rng.standard_normal((13, 1000)).astype(np.float32)
    seed = int(rng.integers(0, 2**63))
    whole = ops.dropout_forward.with_kernel(x, 0.4, seed)[1]
    for fn in (ops.dropout_forward.with_kernel, ops.dropout_forward.reference):
        part = fn(x[5:].copy(), 0.4, seed, 5 * 1000)[1]
        np.testing.assert_array_equal(part, whole[5:])


def test_a_layers_masks_are_new_each_step_and_replayed_by_the_reference(rng):
    """Each forward draws a new seed on the host, a launch argument: no copy to the device per mask."""
    layer = gn.nn.Dropout(0.5).seed(3)
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    first = layer.forward(x)
    second = layer.forward(x)
    assert not np.array_equal(first, second)
    with gn.ops.use_kernels(False):  # the reference draws the same masks from the numbers
        again = gn.nn.Dropout(0.5).seed(3)
        np.testing.assert_array_equal(again.forward(x), first)
        np.testing.assert_array_equal(again.forward(x), second)


def test_dropout_seed_changes_the_mask(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    a, b = ops.dropout_forward.with_kernel(x, 0.5, 1)[1], ops.dropout_forward.with_kernel(x, 0.5, 2)[1]
    assert 0.3 < (a != b).mean() < 0.7
