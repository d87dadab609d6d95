"""Multi-tensor update kernels (kernels/optimizers.py) against each optimizer's xp update, on every device."""

import numpy as np
import pytest
from kernel_cases import (DTYPES, OPTIMIZER_CASES, assert_close, assert_refused_unchanged,  # noqa: F401
                          poisoned_outputs, sizes)

import gpunn as gn
from gpunn import ops
from gpunn.kernels import multi_tensor


def problem(case, dtype, device, rng, n_arrays=3, steps_so_far=6):
    """An optimizer of ``case`` and the arguments of one ``update_step`` over a few arrays of different sizes."""
    cls, kwargs = OPTIMIZER_CASES[case]
    counts = sizes(device)
    ws = [rng.standard_normal(counts[i % len(counts)] + i).astype(dtype) for i in range(n_arrays)]
    opt = cls([gn.nn.Parameter(w) for w in ws], **kwargs)
    gs = [rng.standard_normal(w.size).astype(dtype) for w in ws]
    states = [[np.abs(rng.standard_normal(w.size)).astype(dtype) for w in ws] for _ in opt.state_names]
    decay = np.array([kwargs.get("weight_decay", 0.0) * (i % 2 == 0) for i in range(n_arrays)], dtype)
    return opt, ws, gs, states, decay, np.full(1, steps_so_far, dtype)


def on(device, arrays):
    return tuple(device.asarray(a.copy()) for a in arrays)


@pytest.mark.parametrize("skip", [None, 0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_updates_of_many_arrays_in_one_launch_match_the_reference(case, dtype, skip, device, rng, monkeypatch):
    if device.type != "cpu":  # arrays of several chunks on the simulated GPU too (its arrays are small)
        monkeypatch.setattr(multi_tensor, "CHUNK", 64)
    opt, ws, gs, states, decay, steps = problem(case, dtype, device, rng)
    h = opt.kernels_numbers(dtype)
    flag = None if skip is None else np.array([skip], np.int64)
    w_k, s_k, steps_k = on(device, ws), [on(device, s) for s in states], device.asarray(steps.copy())
    ops.update_step.with_kernel(steps_k, opt, w_k, on(device, gs), tuple(s_k), h, device.asarray(decay),
                                None if flag is None else device.asarray(flag))
    w_r, s_r, steps_r = [w.copy() for w in ws], [[a.copy() for a in s] for s in states], steps.copy()
    ops.update_step.reference(steps_r, opt, tuple(w_r), tuple(gs), tuple(tuple(s) for s in s_r), h, decay, flag)
    if skip:  # the divergence flag is set: nothing moves, in the kernel or the reference, and the count stays
        for got, start in [*zip(w_k, ws), *zip(w_r, ws), *zip(sum(map(list, s_k), []), sum(states, [])),
                           (steps_k, steps), (steps_r, steps)]:
            np.testing.assert_array_equal(gn.to_numpy(got), start)
        return
    rtol = 2 * np.finfo(dtype).eps if device.type == "cpu" else 8 * np.finfo(dtype).eps
    for got, expected in zip(w_k, w_r):
        assert_close(got, expected, rtol, f"{case} weights")
    for got, expected in zip(sum(map(list, s_k), []), sum(s_r, [])):
        assert_close(got, expected, rtol, f"{case} state")
    assert gn.to_numpy(steps_k)[0] == steps_r[0] == steps[0] + 1


@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_the_parallel_cpu_kernel_equals_the_one_thread_one(case, rng, monkeypatch):
    cpu = gn.device("cpu")
    opt, ws, gs, states, decay, steps = problem(case, np.float64, cpu, rng)
    h = opt.kernels_numbers(np.float64)
    results = []
    for threshold in (None, 1):
        if threshold:
            monkeypatch.setattr(gn.kernels.optimizers, "PARALLEL_MIN_SIZE", threshold)
        w, s, count = on(cpu, ws), tuple(on(cpu, a) for a in states), steps.copy()
        ops.update_step.with_kernel(count, opt, w, tuple(gs), s, h, decay)
        results.append([*w, *sum(map(list, s), []), count])
    for one, many in zip(*results):
        np.testing.assert_array_equal(many, one)


def x_args(rng):
    opt = gn.optim.Adam([gn.nn.Parameter(np.zeros(10, np.float32))])
    return opt, opt.kernels_numbers(np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x, o, h, d, t: ops.update_step.with_kernel(t, o, (x,), (x,), ((x,), (x[::2].copy(),)), h, d),
         r"update_step: states\[1\] must be 1 arrays shaped like ws \[\(10,\)\], got \[\(5,\)\]"),
        (lambda x, o, h, d, t: ops.update_step.with_kernel(t, o, (x,), (x,), ((x,),), h, d),
         r"update_step: Adam keeps \('m', 'v'\) state arrays, got 1"),
        (lambda x, o, h, d, t: ops.update_step.with_kernel(t, o, (x,), (x.astype(np.float64),), ((x,), (x,)), h, d),
         "every array must be a C-contiguous float32 array"),
        (lambda x, o, h, d, t: ops.update_step.with_kernel(t, o, (x,), (x,), ((x,), (x,)), h, d,
                                                            np.array([1.0])), "skip must be a 1-D int64 array"),
    ],
)
def test_bad_arguments_are_named_and_write_nothing(call, match, rng):
    opt, h, decay, steps = x_args(rng)
    assert_refused_unchanged(lambda x: call(x, opt, h, decay, steps), rng.standard_normal(10).astype(np.float32),
                             match)
    assert steps[0] == 0


# --------------------------------------------------------------------------- loss-scaled updates (mixed precision)

def scaler_state(scale, found):
    """A loss scaler's state after its check decided a step: this step's gradients carry ``scale``."""
    from gpunn.loss_scaler import initial_state

    state = initial_state(scale)
    state[multi_tensor.FOUND] = found
    return state


@pytest.mark.parametrize("found", [0, 1])
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_scaled_updates_unscale_update_the_masters_and_write_their_float16_copies(case, found, one_gpu, rng,
                                                                                  monkeypatch):
    """float32 masters and state, float16 gradients scaled by 2^12: the kernel (one launch) against the reference;
    the copies are the masters rounded to float16; where the check found an overflow nothing moves, the count stays."""
    monkeypatch.setattr(multi_tensor, "CHUNK", 64)
    opt, ws, gs, states, decay, steps = problem(case, np.float32, one_gpu, rng)
    halves = tuple((g * 2.0 ** 12).astype(np.float16) for g in gs)
    copies = [w.astype(np.float16) for w in ws]
    scaler = scaler_state(2.0 ** 12, found)
    h = opt.kernels_numbers(np.float32)
    w_k, s_k, c_k, steps_k = on(one_gpu, ws), [on(one_gpu, s) for s in states], on(one_gpu, copies), \
        one_gpu.asarray(steps.copy())
    ops.update_step.with_kernel(steps_k, opt, w_k, on(one_gpu, halves), tuple(s_k), h, one_gpu.asarray(decay), None,
                                c_k, one_gpu.asarray(scaler))
    w_r, s_r, c_r, steps_r = [w.copy() for w in ws], [[a.copy() for a in s] for s in states], \
        [c.copy() for c in copies], steps.copy()
    ops.update_step.reference(steps_r, opt, tuple(w_r), halves, tuple(tuple(s) for s in s_r), h, decay, None,
                              tuple(c_r), scaler)
    if found:
        for got, start in [*zip(w_k, ws), *zip(w_r, ws), *zip(c_k, copies), (steps_k, steps), (steps_r, steps)]:
            np.testing.assert_array_equal(gn.to_numpy(got), start)
        return
    rtol = 8 * np.finfo(np.float32).eps
    for got, expected in zip(w_k, w_r):
        assert_close(got, expected, rtol, f"{case} masters")
    for got, expected in zip(sum(map(list, s_k), []), sum(s_r, [])):
        assert_close(got, expected, rtol, f"{case} state")
    for copy, master in [*zip(c_k, w_k), *zip(c_r, w_r)]:
        np.testing.assert_array_equal(gn.to_numpy(copy), gn.to_numpy(master).astype(np.float16))
    # the unscaled float16 gradient is what the float32 rule saw: the same update from float32 gradients g16 / 2^12
    w_32 = [w.copy() for w in ws]
    ops.update_step.reference(steps.copy(), opt, tuple(w_32), tuple(g.astype(np.float32) / 2.0 ** 12 for g in halves),
                              tuple(tuple(a.copy() for a in s) for s in states), h, decay)
    for got, expected in zip(w_r, w_32):
        np.testing.assert_allclose(got, expected, rtol=2 * np.finfo(np.float32).eps)
    assert gn.to_numpy(steps_k)[0] == steps_r[0] == steps[0] + 1


def test_a_scaled_update_of_float32_parameters_writes_them_once(one_gpu, rng):
    """Batchnorm's float32 parameters in a mixed-precision step: unscaled, updated, and no copies (the kernel writes
    the masters themselves as their "copies")."""
    opt, ws, gs, states, decay, steps = problem("adam", np.float32, one_gpu, rng)
    w_k = on(one_gpu, ws)
    scaled = tuple(g * np.float32(8) for g in gs)
    ops.update_step.with_kernel(one_gpu.asarray(steps.copy()), opt, w_k, on(one_gpu, scaled),
                                tuple(on(one_gpu, s) for s in states), opt.kernels_numbers(np.float32),
                                one_gpu.asarray(decay), None, None, one_gpu.asarray(scaler_state(8.0, 0)))
    w_r = [w.copy() for w in ws]
    ops.update_step.reference(steps.copy(), opt, tuple(w_r), gs, tuple(tuple(a.copy() for a in s) for s in states),
                              opt.kernels_numbers(np.float32), decay)
    for got, expected in zip(w_k, w_r):
        assert_close(got, expected, 8 * np.finfo(np.float32).eps, "adam, unscaled float32 gradients")


def test_float16_copies_need_float32_masters_and_a_scaler(one_gpu):
    x = one_gpu.asarray(np.zeros(10, np.float32))
    opt = gn.optim.SGD([gn.nn.Parameter(x)])
    h, d, t = opt.kernels_numbers(np.float32), one_gpu.asarray(np.zeros(1, np.float32)), x[:1].copy()
    half = x.astype(np.float16)
    with pytest.raises(ValueError, match="copies .float16. are updated from float32 masters with a loss scaler"):
        ops.update_step.with_kernel(t, opt, (x,), (half,), (), h, d, None, (half,))
    with pytest.raises(ValueError, match="every array must be a C-contiguous float16 array"):
        ops.update_step.with_kernel(t, opt, (x,), (x,), (), h, d, None, (half,), one_gpu.asarray(scaler_state(1.0, 0)))
    np.testing.assert_array_equal(gn.to_numpy(x), 0)  # refused before anything was written
