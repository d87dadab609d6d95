"""The CUDA kernels in Numba's CUDA simulator, against the plain xp references.

Run by tests/test_kernels.py in a subprocess with NUMBA_ENABLE_CUDASIM=1 (it must be set
before Numba is imported); skipped in an ordinary run. Kernels are launched on NumPy
arrays with a grid smaller than the data, so the grid-stride loops are exercised.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="needs NUMBA_ENABLE_CUDASIM=1"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # uint64 hash arithmetic wraps by design
]

from gpunn import ops  # noqa: E402
from gpunn.kernels import activations as act  # noqa: E402
from gpunn.kernels import dropout as drop  # noqa: E402
from gpunn.kernels.bindings import Target, make_bindings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared cases in tests/
from kernel_cases import OPTIMIZER_CASES  # noqa: E402

GRID = (2, 32)  # 64 threads
REF = {name: getattr(ops, name).reference for name in ops.KERNEL_OPS}
CUDA = make_bindings(Target("cuda"), REF, min_size=0)  # the CUDA bindings, launching in the simulator
KINDS = ["relu", "leaky_relu", "elu", "sigmoid", "tanh"]


def consts(dt, alpha):
    return dt.type(alpha), dt.type(0), dt.type(0.5)


def close(got, expected, dtype, what):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
    tol = 8 * np.finfo(dtype).eps
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 31, 300])
@pytest.mark.parametrize("kind", KINDS)
def test_activation_kernels(kind, n, dtype, rng):
    dt = np.dtype(dtype)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    x[: min(n, 3)] = [0.0, np.nan, -50.0][: min(n, 3)]
    g = rng.standard_normal(n).astype(dtype)
    y = np.full(n, np.nan, dtype)
    act.forward_cuda[GRID](x, y, act.CODES[kind], *consts(dt, 0.2))
    y_ref = ops.activation.reference(x, kind, 0.2)
    close(y, y_ref, dtype, f"{kind} forward")
    dx = np.full(n, np.nan, dtype)
    act.backward_cuda[GRID](g, y_ref, dx, act.CODES[kind], *consts(dt, 0.2))
    close(dx, ops.activation_backward.reference(g, y_ref, kind, 0.2), dtype, f"{kind} backward")


@pytest.mark.parametrize("kind", ["identity", "relu", "tanh"])
def test_bias_activation_kernels(kind, rng):
    dt = np.dtype(np.float32)
    z, b = rng.standard_normal((9, 70)).astype(dt), rng.standard_normal(70).astype(dt)
    g = rng.standard_normal((9, 70)).astype(dt)
    y = np.full_like(z, np.nan)
    act.bias_forward_cuda[(2, 1), (32, 8)](z, b, y, act.CODES[kind], *consts(dt, 0.0))  # a grid smaller than z
    y_ref = ops.bias_activation.reference(z.copy(), b, kind)
    close(CUDA["bias_activation"](z.copy(), b, kind), y_ref, dt, f"{kind} bias forward, through the binding")
    close(y, y_ref, dt, f"{kind} bias forward")
    dz, db = CUDA["bias_activation_backward"](g, y_ref, kind)  # through the binding: kernel, then the column sum
    dz_ref, db_ref = ops.bias_activation_backward.reference(g, y_ref, kind)
    close(dz, dz_ref, dt, "dz")
    np.testing.assert_allclose(db, db_ref, rtol=1e-5, atol=1e-5)


def test_dropout_kernel_matches_the_reference_bit_for_bit(rng):
    x = rng.standard_normal(500).astype(np.float32)
    seed, p = int(rng.integers(0, 2**63)), 0.3
    out, mask = np.full_like(x, np.nan), np.full_like(x, np.nan)
    drop.dropout_cuda[GRID](x, out, mask, np.array([seed, 1000], np.uint64), np.uint64(ops.dropout_threshold(p)),
                            np.float32(1 / 0.7), np.float32(0))
    out_ref, mask_ref = ops.dropout_forward.reference(x, p, seed, 1000)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(out, out_ref)




@pytest.mark.parametrize("skip", [None, 0, 3])
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_optimizer_kernels(case, skip, rng):
    """Through the CUDA bindings; a set skip flag (the Trainer's divergence flag) leaves everything unchanged."""
    op, n_state, args = OPTIMIZER_CASES[case]
    dt = np.dtype(np.float32)
    n = 200
    w, g = rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)
    state = [np.abs(rng.standard_normal(n)).astype(dt) for _ in range(n_state)]
    if args[1] == 0.0 and op == "sgd_step":  # plain SGD keeps no state
        state = [None]
    flag = None if skip is None else np.array([skip], np.int64)
    wk, sk = w.copy(), [None if s is None else s.copy() for s in state]
    wr, sr = w.copy(), [None if s is None else s.copy() for s in state]
    CUDA[op](wk, g, *sk, *args, skip=flag)
    REF[op](wr, g, *sr, *args, skip=flag)
    close(wk, wr, dt, f"{case} weights")
    for a, b in zip(sk, sr):
        if a is not None:
            close(a, b, dt, f"{case} state")
    if skip:
        np.testing.assert_array_equal(wk, w)
        for a, b in zip(sk, state):
            if a is not None:
                np.testing.assert_array_equal(a, b)
    else:
        assert not np.array_equal(wk, w)
