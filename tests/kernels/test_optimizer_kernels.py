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
