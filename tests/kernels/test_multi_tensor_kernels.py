"""The all-finite check over many gradients in one launch (kernels/multi_tensor.py), on every device."""

import numpy as np
import pytest
from kernel_cases import DTYPES, poisoned_outputs, sizes  # noqa: F401

import gpunn as gn
from gpunn import ops
from gpunn.kernels import multi_tensor


def test_the_chunk_table_covers_every_element_once():
    sizes_ = (1, multi_tensor.CHUNK, multi_tensor.CHUNK + 1, 0, 3 * multi_tensor.CHUNK - 5)
    rows = multi_tensor.table_rows(sizes_)
    for i, n in enumerate(sizes_):
        covered = sorted((lo, hi) for j, lo, hi in rows if j == i)
        assert sum(hi - lo for lo, hi in covered) == n and all(hi - lo <= multi_tensor.CHUNK for lo, hi in covered)
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))


@pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_the_first_bad_step_is_recorded_and_sticks(dtype, device, rng, monkeypatch):
    if device.type != "cpu":
        monkeypatch.setattr(multi_tensor, "CHUNK", 32)  # several chunks per array on the simulated GPU
    counts = sizes(device)
    grads = [rng.standard_normal(counts[i % len(counts)] + i).astype(dtype) for i in range(4)]
    huge = np.sqrt(np.finfo(dtype).max) * 2  # finite, but its square overflows: divergence too
    bad_steps = {3: ("grad", 2, np.nan), 5: ("loss", None, np.inf), 6: ("grad", 3, huge)}
    state, ref = device.asarray(np.zeros(2, np.int64)), np.zeros(2, np.int64)
    for step in range(1, 8):
        gs = [g.copy() for g in grads]
        loss = np.array([0.5], dtype)
        what, which, value = bad_steps.get(step, (None, None, None))
        if what == "grad":
            gs[which][int(rng.integers(gs[which].size))] = value
        elif what == "loss":
            loss[0] = value
        ops.nonfinite_check.with_kernel(device.asarray(loss), tuple(device.asarray(g) for g in gs), state)
        ops.nonfinite_check.reference(loss, tuple(gs), ref)
        np.testing.assert_array_equal(gn.to_numpy(state), ref)
        assert ref[1] == step and ref[0] == (0 if step < 3 else 3)  # counted, and the first bad one sticks


def test_the_parallel_cpu_check_equals_the_one_thread_one(rng, monkeypatch):
    grads = tuple(rng.standard_normal(n) for n in (70_000, 5, 40_000))
    grads[2][33_333] = -np.inf
    found = []
    for threshold in (None, 1):
        if threshold:
            monkeypatch.setattr(multi_tensor, "PARALLEL_MIN_SIZE", threshold)
        state = np.zeros(2, np.int64)
        ops.nonfinite_check(np.array([1.0]), grads[:2], state)
        ops.nonfinite_check(np.array([1.0]), grads, state)
        found.append(state.tolist())
    assert found == [[2, 2], [2, 2]]
