"""Optimizer-update kernels (kernels/optimizers.py) against the xp update rules, on every device."""

import numpy as np
import pytest
from kernel_cases import (DTYPES, OPTIMIZER_CASES, assert_close, assert_refused_unchanged,  # noqa: F401
                          poisoned_outputs, sizes)

import gpunn as gn
from gpunn import ops


@pytest.mark.parametrize("skip", [None, 0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_optimizer_updates_match_the_reference(case, dtype, skip, device, rng):
    name, n_state, args = OPTIMIZER_CASES[case]
    op = getattr(ops, name)
    for n in sizes(device):
        w, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        state = [np.abs(rng.standard_normal(n)).astype(dtype) for _ in range(n_state)]
        w_k, s_k = device.asarray(w.copy()), [device.asarray(s.copy()) for s in state]
        w_r, s_r = w.copy(), [s.copy() for s in state]
        flag = None if skip is None else np.array([skip], np.int64)
        op.with_kernel(w_k, device.asarray(g), *s_k, *args, skip=None if flag is None else device.asarray(flag))
        op.reference(w_r, g, *s_r, *args, skip=flag)
        if skip:  # the divergence flag is set: nothing moves, in the kernel or the reference
            for got, start in [(w_k, w), (w_r, w)] + list(zip(s_k, state)) + list(zip(s_r, state)):
                np.testing.assert_array_equal(gn.to_numpy(got), start)
            continue
        rtol = 2 * np.finfo(dtype).eps if device.type == "cpu" else 8 * np.finfo(dtype).eps
        assert_close(w_k, w_r, rtol, f"{case} weights")
        for a, b in zip(s_k, s_r):
            assert_close(a, b, rtol, f"{case} state")


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x: ops.adam_step.with_kernel(x, x, x, x[::2].copy(), 0.1, 0.9, 0.9, 1e-8, 1),
         r"adam_step: v has shape \(5,\)"),
        (lambda x: ops.sgd_step.with_kernel(x.reshape(2, 5)[:, ::2], x[:6].reshape(2, 3), None, 0.1),
         "sgd_step: x must be C-contiguous"),
        (lambda x: ops.sgd_step.with_kernel(x, x.copy(), None, 0.1, skip=np.array([1.0])),
         "skip must be a 1-D int64 array"),
        (lambda x: ops.sgd_step.with_kernel(x, x.copy(), None, 0.1, hyper=np.zeros(3)),
         r"sgd_step: hyper must be a float32 array of shape \(3,\)"),
    ],
)
def test_bad_arguments_are_named_and_write_nothing(call, match, rng):
    assert_refused_unchanged(call, rng.standard_normal(10).astype(np.float32), match)
