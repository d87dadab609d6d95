"""What the kernel tests share: poisoned outputs, sizes per device, data with edge values, host comparisons.

Each test runs through ``op.with_kernel``, which runs the kernel whatever the input's size. Every array a
binding allocates starts poisoned (NaN, or -7 for indices; the autouse fixture below, imported by each
kernel test module), so an element a kernel never writes shows up.
"""

import numpy as np
import pytest

import gpunn as gn
from gpunn.kernels import activations, checks, conv_direct, conv_epilogue, dropout, im2col, optimizers, padding, pooling
from gpunn.kernels.arrays import array_module

FAMILIES = (checks, activations, conv_direct, conv_epilogue, dropout, im2col, optimizers, padding, pooling)


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    def poisoned(like, shape, dtype):
        return array_module(like).full(shape, -7 if np.dtype(dtype).kind == "i" else np.nan, dtype)

    for module in FAMILIES:
        if hasattr(module, "empty"):
            monkeypatch.setattr(module, "empty", poisoned)

DTYPES = [np.float32, np.float64]
EDGES = [0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0, 1e4, -1e4, np.nan, np.inf, -np.inf]

# {case: (optimizer class, its arguments)}
OPTIMIZER_CASES = {
    "sgd": (gn.optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    "momentum": (gn.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "nesterov": (gn.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    "adagrad": (gn.optim.Adagrad, dict(lr=0.1, weight_decay=0.01)),
    "rmsprop": (gn.optim.RMSProp, dict(lr=0.01, alpha=0.9, weight_decay=0.01)),
    "adam": (gn.optim.Adam, dict(lr=0.01, weight_decay=0.01)),
    "adamw": (gn.optim.AdamW, dict(lr=0.01, weight_decay=0.05)),
}


def sizes(device) -> list[int]:
    """Element counts: on the CPU up to a million and more (the threaded paths); on a simulated GPU, whose
    threads are Python threads, sizes above a grid's worth still exercise the grid-stride loops."""
    return [1, 31, 1023, 10**6 + 7] if device.type == "cpu" else [1, 31, 300]


def data(rng, n, dtype, scale=3.0):
    x = (rng.standard_normal(n) * scale).astype(dtype)
    x[: min(n, len(EDGES))] = EDGES[: min(n, len(EDGES))]
    return x


def ulps(dtype, device, libm: bool) -> float:
    """Tolerance: bitwise for pure arithmetic on the CPU; a few ulp where libm's tanh or expm1 and NumPy's
    may round differently; 8 ulp on CUDA (the simulator computes in Python floats, then rounds)."""
    eps = np.finfo(dtype).eps
    if device.type != "cpu":
        return 8 * eps
    return 4 * eps if libm else 0.0


def assert_close(got, expected, rtol, what):
    got = gn.to_numpy(got)
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN pattern")
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=rtol, err_msg=what)


def assert_refused_unchanged(call, x, match):
    """``call(x)`` raises a ValueError matching ``match`` and leaves x as it was (a refused call writes nothing)."""
    before = x.copy()
    with pytest.raises(ValueError, match=match):
        call(x)
    np.testing.assert_array_equal(x, before)


def assert_half(got, exact, what, slack=0.0, where=None):
    """A float16 result of a kernel that computes in float32 and rounds once, against the float64 truth ``exact``
    (the reference run on the float16 inputs widened to float64): within one float16 ulp of it rounded to float16
    (round to nearest lands either side of a boundary that float32's own error straddles), plus ``slack``
    (absolute, per element: where the computation is ill-conditioned in float32). NaN and infinities must match,
    on the elements ``where`` selects (all by default)."""
    got, exact = gn.to_numpy(got), np.asarray(exact, np.float64)
    assert got.dtype == np.float16 and got.shape == exact.shape, f"{what}: {got.dtype} {got.shape}"
    if where is not None:
        got, exact, slack = got[where], exact[where], np.broadcast_to(slack, where.shape)[where]
    expected = exact.astype(np.float16)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN pattern")
    infinite = np.isinf(expected)
    np.testing.assert_array_equal(got[infinite], expected[infinite], err_msg=f"{what}: infinities")
    finite = np.isfinite(expected)
    off = np.abs(got[finite].astype(np.float64) - expected[finite])
    allowed = np.spacing(np.abs(expected[finite])).astype(np.float64) + np.broadcast_to(slack, exact.shape)[finite]
    assert (off <= allowed).all(), f"{what}: off by {off[off > allowed][:5]} (allowed {allowed[off > allowed][:5]})"
