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


# --------------------------------------------------------------------------- the loss scaler's check (mixed precision)

def scaled_steps(device, rng, pattern, scaler_args):
    """Run the scaler's check over steps of float16 gradients and a float32 one (batchnorm's, checked first without
    deciding). ``pattern``: {step: what goes bad} ("half", "float32", "loss"). Returns per step (scaler state, flag)."""
    halves = [rng.standard_normal(n).astype(np.float16) for n in (70, 5, 300)]
    floats = [rng.standard_normal(40).astype(np.float32)]
    scaler = gn.LossScaler(**scaler_args).bind(device)
    flag = device.asarray(np.zeros(2, np.int64))
    seen = []
    for step in range(1, len(pattern) + 1):
        hs, fs, loss = [h.copy() for h in halves], [f.copy() for f in floats], np.array([0.5], np.float32)
        what = pattern[step - 1]
        if what == "half":
            hs[int(rng.integers(3))][0] = np.float16(np.inf)
        elif what == "float32":
            fs[0][3] = np.nan
        elif what == "loss":
            loss[0] = np.nan
        loss = device.asarray(loss)
        ops.nonfinite_check(loss, tuple(device.asarray(f) for f in fs), flag, scaler, False)
        ops.nonfinite_check(loss, tuple(device.asarray(h) for h in hs), flag, scaler, True)
        seen.append((gn.to_numpy(scaler.state).copy(), gn.to_numpy(flag).copy()))
    return seen


PATTERN = ["ok", "half", "ok", "ok", "float32", "ok", "ok", "ok", "half", "half", "half", "ok"]


def test_the_scalers_check_decides_each_step_as_gradscaler_does(one_gpu, rng, monkeypatch):
    """On the simulated GPU (one launch per dtype, the last thread deciding) as on the CPU (the reference), and as
    worked out by hand from PyTorch GradScaler's rule: an overflow (in either dtype) skips the step, halves the scale
    and resets the tracker; growth_interval good steps in a row double it; 3 overflows in a row are divergence."""
    monkeypatch.setattr(multi_tensor, "CHUNK", 32)  # several chunks per array, so several blocks decide together
    args = dict(init_scale=2.0 ** 10, growth_interval=3, max_consecutive_overflows=3)
    seed = int(rng.integers(2**32))
    gpu = scaled_steps(one_gpu, np.random.default_rng(seed), PATTERN, args)
    cpu = scaled_steps(gn.device("cpu"), np.random.default_rng(seed), PATTERN, args)
    for (g_state, g_flag), (c_state, c_flag) in zip(gpu, cpu):
        np.testing.assert_array_equal(g_state, c_state)
        np.testing.assert_array_equal(g_flag, c_flag)
    scales = [s[multi_tensor.SCALE] for s, _ in cpu]
    # 1 good; 2 overflow: /2; 3, 4 good; 5 overflow (float32): /2; 6, 7, 8 good: x2; 9, 10, 11 overflow: /2 three times
    assert scales == [1024, 512, 512, 512, 256, 256, 256, 512, 256, 128, 64, 64]
    found = [int(s[multi_tensor.FOUND]) for s, _ in cpu]
    assert found == [int(w != "ok") for w in PATTERN]
    inverse = [s[multi_tensor.INV_SCALE] for s, _ in cpu]
    assert inverse == [1 / s for s in [1024, 1024, 512, 512, 512, 256, 256, 256, 512, 256, 128, 64]]
    assert [int(f[0]) for _, f in cpu] == [0] * 10 + [11, 11]  # the third overflow in a row, and it sticks
    assert [int(f[1]) for _, f in cpu] == list(range(1, 13)) and int(cpu[-1][0][multi_tensor.SKIPPED]) == 5


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the simulator's float32 scale * 2, refused after it
def test_a_loss_that_is_not_finite_is_divergence_and_no_growth_overflows_float32(one_gpu, rng):
    for device in (gn.device("cpu"), one_gpu):
        seen = scaled_steps(device, np.random.default_rng(1), ["ok", "ok", "loss", "ok"],
                            dict(init_scale=2.0 ** 127, growth_interval=1))
        assert [int(f[0]) for _, f in seen] == [0, 0, 3, 3]
        # growth after every good step, but 2^128 is not a float32: the scale stays, the tracker restarts
        assert [s[multi_tensor.SCALE] for s, _ in seen] == [2.0 ** 127] * 4
        assert [s[multi_tensor.TRACKER] for s, _ in seen] == [0] * 4


def test_gradients_of_two_dtypes_in_one_call_are_refused_on_a_gpu(one_gpu):
    grads = (one_gpu.asarray(np.ones(3, np.float16)), one_gpu.asarray(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="must share a dtype"):
        ops.nonfinite_check(one_gpu.asarray(np.ones(1, np.float32)), grads, one_gpu.asarray(np.zeros(2, np.int64)),
                            gn.LossScaler().bind(one_gpu))
