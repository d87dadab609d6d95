"""Activation kernels (kernels/activations.py) against the gates' f and df, on every device."""

import numpy as np
import pytest
from kernel_cases import (DTYPES, assert_close, assert_half, assert_refused_unchanged, data, poisoned_outputs,  # noqa: F401
                          sizes, ulps)

import gpunn as gn
from gpunn import ops
from gpunn.nn import ACTIVATIONS

KINDS = sorted(ACTIVATIONS)  # every gate in the registry (identity too: it has kernels), a new one included
LIBM = ("elu", "sigmoid", "tanh", "gelu", "silu")


def gate_of(kind, alpha=0.2):
    """A gate of class ``kind``, with ``alpha`` where it takes one."""
    cls = ACTIVATIONS[kind]
    return cls(alpha=alpha) if "alpha" in cls.numbers else cls()


def tolerance(kind, dtype, device):
    # GELU's and SiLU's kernels compute x (1 + tanh(...)) / 2 in one expression, the references in several rounded
    # steps, each a product with x of a tanh that libm and NumPy may round apart
    return ulps(dtype, device, kind in LIBM) * (8 if kind in ("gelu", "silu") else 1)


@pytest.mark.filterwarnings("ignore:invalid value", "ignore:overflow")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["identity"] + KINDS)  # the identity's kernels too (a conv layer's own gate)
def test_activation_forward_and_backward(kind, dtype, device, rng):
    gate = gate_of(kind, alpha=0.1 if kind == "leaky_relu" else 1.3)
    for n in sizes(device):
        x = data(rng, n, dtype)
        g = data(rng, n, dtype, scale=1.0)[::-1].copy()  # edge values in the upstream gradient too, elsewhere
        y_ref = ops.activation.reference(x, gate)
        y = ops.activation.with_kernel(device.asarray(x), gate)
        assert_close(y, y_ref, tolerance(kind, dtype, device), f"{kind} forward, {n}")
        saved = x if gate.backward_from == "input" else y_ref
        dx = gn.to_numpy(ops.activation_backward.with_kernel(device.asarray(g), device.asarray(saved), gate))
        if kind in CONDITIONING:
            assert_conditioned(kind, dx, ops.activation_backward.reference(g, saved, gate), g, x, dtype,
                               f"backward, {n}")
        else:
            assert_close(dx, ops.activation_backward.reference(g, saved, gate), tolerance(kind, dtype, device),
                         f"{kind} backward, {n}")


# Input-based gates whose f' is ill-conditioned in tanh: GELU's needs 1 - tanh(u)^2 with tanh(u) near -1 for x
# around -5, where one ulp of tanh moves dx by about 10 ulp of g; SiLU's sigmoid s = (1 + tanh(x/2)) / 2 loses
# the relative precision of its small values for negative x (one ulp of tanh is eps/2 of s, absolute), and
# f' = s (1 + x (1 - s)) multiplies that by up to |x|. The kernel and the reference alike are within that of
# float64 truth, so they are held to each other within it (ulps of |g|, times a factor of x).
CONDITIONING = {"gelu": lambda x: 128 * (1 + x**2), "silu": lambda x: 16 * (1 + np.abs(x))}


def assert_conditioned(kind, got, expected, g, x, dtype, what):
    got = gn.to_numpy(got)
    # where g is infinite, inf * f'(x) is NaN or infinite by whether f'(x) rounded to 0: either is right
    sure = np.isfinite(g)
    np.testing.assert_array_equal(np.isnan(got)[sure], np.isnan(expected)[sure], err_msg=f"{kind} {what}: NaN pattern")
    finite = np.isfinite(expected) & sure
    bound = np.finfo(dtype).eps * np.abs(g[finite]) * CONDITIONING[kind](x[finite].astype(np.float64))
    worst = np.abs(got[finite] - expected[finite]) - bound
    assert (worst <= np.finfo(dtype).tiny).all(), f"{kind} {what}: off by {worst.max()} beyond the bound"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", KINDS)
def test_bias_activation_forward_and_backward(kind, dtype, device, rng):
    shapes = [(1, 1), (7, 31), (257, 129)] if device.type == "cpu" else [(1, 1), (7, 31), (70, 5)]
    gate = gate_of(kind)
    for shape in shapes:
        z = rng.standard_normal(shape).astype(dtype) * 2
        b = rng.standard_normal(shape[1]).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        z_ref = z.copy()
        y_ref = ops.bias_activation.reference(z_ref, b, gate)
        z_dev = device.asarray(z)
        y = ops.bias_activation.with_kernel(z_dev, device.asarray(b), gate)
        tol = tolerance(kind, dtype, device)
        assert_close(y, y_ref, tol, f"{kind} bias forward")
        if gate.backward_from == "input":
            assert_close(z_dev, z_ref, tol, f"{kind}: z afterwards")  # z + b, which backward reads
        saved = z_ref if gate.backward_from == "input" else y_ref
        dz, db = ops.bias_activation_backward.with_kernel(device.asarray(g), device.asarray(saved), gate)
        dz_ref, db_ref = ops.bias_activation_backward.reference(g, saved, gate)
        if kind in CONDITIONING:
            assert_conditioned(kind, dz, dz_ref, g, saved, dtype, "dz")
        else:
            assert_close(dz, dz_ref, tol, f"{kind} dz")
        # the bias gradient sums shape[0] rows in another order than NumPy's pairwise sum; for GELU and SiLU, whose dz
        # differs from the reference's within its conditioning (above), it is held to the sum of its own dz
        sums = gn.to_numpy(dz).astype(np.float64).sum(axis=0).astype(dtype) if kind in CONDITIONING else db_ref
        assert_close(db, sums, shape[0] * 4 * np.finfo(dtype).eps, f"{kind} db")


RELU = gn.nn.ReLU()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x: ops.activation_backward.with_kernel(x, x[:-1], RELU),
         r"activation_backward: saved has shape \(9,\), expected \(10,\)"),
        (lambda x: ops.activation_backward.with_kernel(x, x.astype(np.float64), RELU),
         "saved has dtype float64, expected float32"),
        (lambda x: ops.activation.with_kernel(x.astype(np.int32), RELU), "arrays must be float32 or float64, got int32"),
        (lambda x: ops.bias_activation.with_kernel(x.reshape(2, 5).copy(), x[:4].copy(), RELU),
         r"bias_activation: b must be float32 of shape \(5,\), got float32 \(4,\)"),
    ],
)
def test_bad_arguments_are_named_and_write_nothing(call, match, rng):
    assert_refused_unchanged(call, rng.standard_normal(10).astype(np.float32), match)


def test_strided_inputs_are_made_contiguous(rng):
    x = rng.standard_normal((40, 30)).astype(np.float32)[:, ::3]
    np.testing.assert_array_equal(ops.activation.with_kernel(x, RELU), np.maximum(x, 0))


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_cpu_kernels_equal_the_one_thread_ones(kind, rng, monkeypatch):
    """Above ``PARALLEL_MIN_SIZE`` the CPU runs each loop on Numba's threads: lowered here, the same results."""
    from gpunn.kernels import launch

    gate = gate_of(kind)
    x, g = rng.standard_normal((300, 41)), rng.standard_normal((300, 41))
    z, b = x.copy(), rng.standard_normal(41)
    one = [ops.activation.with_kernel(x, gate), ops.activation_backward.with_kernel(g, x, gate),
           *ops.bias_activation_backward.with_kernel(g, x, gate), ops.bias_activation.with_kernel(z.copy(), b, gate)]
    monkeypatch.setattr(launch, "PARALLEL_MIN_SIZE", 1)
    monkeypatch.setattr(gn.kernels.activations, "PARALLEL_MIN_SIZE", 1)
    many = [ops.activation.with_kernel(x, gate), ops.activation_backward.with_kernel(g, x, gate),
            *ops.bias_activation_backward.with_kernel(g, x, gate), ops.bias_activation.with_kernel(z.copy(), b, gate)]
    for a, c, what in zip(one, many, ("forward", "backward", "dz", "db", "bias forward")):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12, err_msg=f"{kind} {what}")


def test_a_gate_that_changes_f_without_its_scalar_rule_runs_its_xp_rule(rng):
    """Kernels made from an inherited scalar rule would compute the parent's f: such a gate gets none."""

    class Doubled(gn.nn.ReLU):
        def f(self, x):
            return 2 * super().f(x)

    assert Doubled.kernels is None and not Doubled().fusable
    x = rng.standard_normal(40000).astype(np.float32)
    np.testing.assert_array_equal(ops.activation(x, Doubled()), 2 * np.maximum(x, 0))


# --------------------------------------------------------------------------- float16 (mixed precision, CUDA only)

def half_slack(kind, g, x):
    """float32's own error where a gate's f' is ill-conditioned (CONDITIONING, in float32 ulps of |g|): what the
    float16 result may carry beyond its rounding."""
    if kind not in CONDITIONING:
        return 0.0
    return np.finfo(np.float32).eps * np.abs(g.astype(np.float64)) * CONDITIONING[kind](x.astype(np.float64))


def forward_slack(kind, x):
    """GELU's and SiLU's x (1 + tanh(...)) / 2 for x near -5: 1 + tanh cancels, and tanh's float32 ulp there is a
    tenth of the result (the float32 kernels' tolerance allows the same, in absolute terms)."""
    return 4 * np.finfo(np.float32).eps * np.abs(x.astype(np.float64)) if kind in CONDITIONING else 0.0


@pytest.mark.filterwarnings("ignore:invalid value", "ignore:overflow")
@pytest.mark.parametrize("kind", ["identity"] + KINDS)
def test_float16_kernels_compute_in_float32_and_round_once(kind, one_gpu, rng):
    """Every gate's kernels on float16 arrays (a mixed-precision model's): each result within one float16 ulp of the
    float64 truth, the bias gradient summed in float32 (a float16 sum of 70 rows would be off by several ulp)."""
    gate = gate_of(kind, alpha=0.1 if kind == "leaky_relu" else 1.3)
    wide = np.float64
    x = data(rng, 300, np.float16)
    g = data(rng, 300, np.float16, scale=1.0)[::-1].copy()
    y = ops.activation.with_kernel(one_gpu.asarray(x), gate)
    y_exact = ops.activation.reference(x.astype(wide), gate)
    assert_half(y, y_exact, f"{kind} forward", forward_slack(kind, x))
    saved = x if gate.backward_from == "input" else y_exact.astype(np.float16)
    dx = ops.activation_backward.with_kernel(one_gpu.asarray(g), one_gpu.asarray(saved), gate)
    # where g is infinite, inf * f'(x) is NaN or infinite by whether an ill-conditioned f'(x) rounded to 0 (as in
    # assert_conditioned): those elements are left out for GELU and SiLU
    sure = np.isfinite(g) if kind in CONDITIONING else None
    assert_half(dx, ops.activation_backward.reference(g.astype(wide), saved.astype(wide), gate), f"{kind} backward",
                half_slack(kind, g, saved), sure)
    z, b, gz = (rng.standard_normal(shape).astype(np.float16) for shape in ((70, 5), (5,), (70, 5)))
    z_dev = one_gpu.asarray(z)
    y = ops.bias_activation.with_kernel(z_dev, one_gpu.asarray(b), gate)
    z_exact = z.astype(wide) + b.astype(wide)
    assert_half(y, ops.activation.reference(z_exact, gate), f"{kind} bias forward", forward_slack(kind, z_exact))
    if gate.backward_from == "input":
        assert_half(z_dev, z_exact, f"{kind}: z + b kept for backward")
    saved = z_exact.astype(np.float16) if gate.backward_from == "input" else gn.to_numpy(y)
    dz, db = ops.bias_activation_backward.with_kernel(one_gpu.asarray(gz), one_gpu.asarray(saved), gate)
    dz_exact = ops.activation_backward.reference(gz.astype(wide), saved.astype(wide), gate)
    slack = half_slack(kind, gz, saved)
    assert_half(dz, dz_exact, f"{kind} dz", slack)
    assert_half(db, dz_exact.sum(axis=0), f"{kind} db", np.sum(np.broadcast_to(slack, dz_exact.shape), axis=0))


def test_float16_arrays_on_the_cpu_run_the_numpy_reference(rng):
    """Numba's CPU target has no float16: the CPU bindings decline it and NumPy computes (mixed precision is for GPUs)."""
    x = rng.standard_normal(40_000).astype(np.float16)
    for gate in (RELU, gn.nn.GELU()):
        np.testing.assert_array_equal(ops.activation(x, gate), ops.activation.reference(x, gate))
        np.testing.assert_array_equal(ops.activation_backward(x, x, gate), ops.activation_backward.reference(x, x, gate))
