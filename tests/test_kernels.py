"""The fused CPU kernels against the plain xp references, and the CUDA kernels under Numba's simulator.

Bindings are built with no size threshold, so every size here really runs a kernel.
Outputs the kernels write into are poisoned (NaN) first, so an unwritten element shows.
"""

import sys

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.kernels.bindings import Target, make_bindings

from gpunn.kernels import bindings
from kernel_cases import OPTIMIZER_CASES

REF = {name: getattr(ops, name).reference for name in ops.KERNEL_OPS}
CPU = make_bindings(Target("cpu"), REF, min_size=0)
SIZES = [1, 31, 1023, 10**6 + 7]
KINDS = ["relu", "leaky_relu", "elu", "sigmoid", "tanh"]
DTYPES = [np.float32, np.float64]
EDGES = [0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0, 1e4, -1e4, np.nan, np.inf, -np.inf]


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    """Every output a binding allocates starts as NaN, so an element the kernel never writes shows up."""
    monkeypatch.setattr(bindings, "_empty_like", lambda a: np.full_like(a, np.nan))


def tolerance(dtype, kind=None):
    """Bitwise for pure arithmetic; a few ulp where libm's tanh or expm1 and NumPy's may round differently."""
    ulp = np.finfo(dtype).eps
    return 0.0 if kind in ("relu", "leaky_relu", None) else 4 * ulp


def data(rng, n, dtype, scale=3.0):
    x = (rng.standard_normal(n) * scale).astype(dtype)
    x[: min(n, len(EDGES))] = EDGES[: min(n, len(EDGES))]
    return x


def assert_close(got, expected, rtol, what):
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN pattern")
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.filterwarnings("ignore:invalid value", "ignore:overflow")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_activation_forward_and_backward(kind, n, dtype, rng):
    x = data(rng, n, dtype)
    g = data(rng, n, dtype, scale=1.0)[::-1].copy()  # edge values in the upstream gradient too, at other places
    alpha = 0.1 if kind == "leaky_relu" else 1.3
    y = CPU["activation"](x, kind, alpha)
    assert_close(y, REF["activation"](x, kind, alpha), tolerance(dtype, kind), f"{kind} forward")
    y_ref = REF["activation"](x, kind, alpha)
    dx = CPU["activation_backward"](g, y_ref, kind, alpha)
    assert_close(dx, REF["activation_backward"](g, y_ref, kind, alpha), tolerance(dtype, kind), f"{kind} backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["identity"] + KINDS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 31), (257, 129)])
def test_bias_activation_forward_and_backward(shape, kind, dtype, rng):
    z = rng.standard_normal(shape).astype(dtype) * 2
    b = rng.standard_normal(shape[1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y = CPU["bias_activation"](z.copy(), b, kind, 0.2)
    y_ref = REF["bias_activation"](z.copy(), b, kind, 0.2)
    assert_close(y, y_ref, tolerance(dtype, kind), f"{kind} bias forward")
    dz, db = CPU["bias_activation_backward"](g, y_ref, kind, 0.2)
    dz_ref, db_ref = REF["bias_activation_backward"](g, y_ref, kind, 0.2)
    assert_close(dz, dz_ref, tolerance(dtype, kind), f"{kind} dz")
    # the bias gradient sums shape[0] rows in another order than NumPy's pairwise sum
    assert_close(db, db_ref, shape[0] * 4 * np.finfo(dtype).eps, f"{kind} db")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_dropout_masks_are_bit_identical_to_the_reference(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    seed, p = int(rng.integers(0, 2**63)), float(rng.uniform(0.1, 0.9))
    out, mask = CPU["dropout_forward"](x, p, seed)
    out_ref, mask_ref = REF["dropout_forward"](x, p, seed)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(out, out_ref)
    if n > 10**5:
        assert abs((mask == 0).mean() - p) < 0.003


def test_dropout_offset_draws_the_rows_of_a_bigger_batch(rng):
    """A process holding rows 5..12 of a batch draws exactly those rows of the whole batch's mask."""
    x = rng.standard_normal((13, 1000)).astype(np.float32)
    seed = int(rng.integers(0, 2**63))
    whole = CPU["dropout_forward"](x, 0.4, seed)[1]
    for fn in (CPU["dropout_forward"], REF["dropout_forward"]):
        part = fn(x[5:].copy(), 0.4, seed, 5 * 1000)[1]
        np.testing.assert_array_equal(part, whole[5:])


def test_a_layers_dropout_draw_lives_in_one_array_rewritten_each_mask(rng):
    """The seed reaches the kernel through a device array the layer keeps, not as a launch argument."""
    layer = gn.nn.Dropout(0.5).seed(3)
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    first = layer.forward(x)
    buffer, seed_1 = layer._draw_buffer, int(layer._draw_buffer[0])
    second = layer.forward(x)
    assert layer._draw_buffer is buffer and int(buffer[0]) != seed_1  # the same array, a new seed in it
    assert not np.array_equal(first, second)
    with gn.ops.use_kernels(False):  # the reference draws the same masks from the numbers
        again = gn.nn.Dropout(0.5).seed(3)
        np.testing.assert_array_equal(again.forward(x), first)
        np.testing.assert_array_equal(again.forward(x), second)


def test_dropout_seed_changes_the_mask(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    a, b = CPU["dropout_forward"](x, 0.5, 1)[1], CPU["dropout_forward"](x, 0.5, 2)[1]
    assert 0.3 < (a != b).mean() < 0.7




@pytest.mark.parametrize("skip", [None, 0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_optimizer_updates_match_the_reference(case, n, dtype, skip, rng):
    op, n_state, args = OPTIMIZER_CASES[case]
    w, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    state = [np.abs(rng.standard_normal(n)).astype(dtype) for _ in range(n_state)]
    w_k, s_k = w.copy(), [s.copy() for s in state]
    w_r, s_r = w.copy(), [s.copy() for s in state]
    flag = None if skip is None else np.array([skip], np.int64)
    CPU[op](w_k, g, *s_k, *args, skip=flag)
    REF[op](w_r, g, *s_r, *args, skip=flag)
    if skip:  # the divergence flag is set: nothing moves, in the kernel or the reference
        np.testing.assert_array_equal(w_k, w)
        np.testing.assert_array_equal(w_r, w)
        for a, b, c in zip(s_k, s_r, state):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, c)
        return
    rtol = 2 * np.finfo(dtype).eps  # same operations in the same order; allow one rounding of slack
    assert_close(w_k, w_r, rtol, f"{case} weights")
    for a, b in zip(s_k, s_r):
        assert_close(a, b, rtol, f"{case} state")


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x: CPU["activation_backward"](x, x[:-1], "relu"), r"activation_backward: y has shape \(9,\), expected \(10,\)"),
        (lambda x: CPU["activation_backward"](x, x.astype(np.float64), "relu"), "y has dtype float64, expected float32"),
        (lambda x: CPU["activation"](x.astype(np.int32), "relu"), "arrays must be float32 or float64, got int32"),
        (lambda x: CPU["adam_step"](x, x, x, x[::2].copy(), 0.1, 0.9, 0.9, 1e-8, 1), r"adam_step: v has shape \(5,\)"),
        (lambda x: CPU["sgd_step"](x.reshape(2, 5)[:, ::2], x[:6].reshape(2, 3), None, 0.1),
         "sgd_step: x must be C-contiguous"),
        (lambda x: CPU["sgd_step"](x, x.copy(), None, 0.1, skip=np.array([1.0])), "skip must be a 1-D int64 array"),
        (lambda x: CPU["sgd_step"](x, x.copy(), None, 0.1, hyper=np.zeros(3)),
         r"sgd_step: hyper must be a float32 array of shape \(3,\)"),
        (lambda x: CPU["bias_activation"](x.reshape(2, 5).copy(), x[:4].copy(), "relu"),
         r"bias_activation: b must be float32 of shape \(5,\), got float32 \(4,\)"),
    ],
)
def test_bad_arguments_are_named_and_write_nothing(call, match, rng):
    x = rng.standard_normal(10).astype(np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match=match):
        call(x)
    np.testing.assert_array_equal(x, before)


def test_arrays_from_another_device_are_refused(rng, monkeypatch):
    class FakeGpuArray:
        """Shaped like x, but an array of a stand-in cupy module on device 0: another device's array."""

        def __init__(self, a):
            self.shape, self.dtype, self.flags = a.shape, a.dtype, a.flags
            self.device = type("CudaDevice", (), {"id": 0})()

    x = rng.standard_normal(10).astype(np.float32)
    with pytest.raises(ValueError, match="activation_backward: y must be a NumPy or CuPy array, got FakeGpuArray"):
        CPU["activation_backward"](x, FakeGpuArray(x), "relu")
    monkeypatch.setitem(sys.modules, "cupy", type(sys)("cupy"))
    sys.modules["cupy"].ndarray = FakeGpuArray
    with pytest.raises(ValueError, match="activation_backward: y is on cuda:0 but x is on cpu: .*share a device"):
        CPU["activation_backward"](x, FakeGpuArray(x), "relu")


def test_strided_inputs_are_made_contiguous(rng):
    x = rng.standard_normal((40, 30)).astype(np.float32)[:, ::3]
    np.testing.assert_array_equal(CPU["activation"](x, "relu"), np.maximum(x, 0))


def test_kernels_change_no_training_result(rng):
    """A whole training run gives the same weights with the kernels on and off."""
    import gpunn as gn

    X, y = rng.standard_normal((300, 20)).astype(np.float32), rng.integers(0, 4, 300)
    runs = []
    for enabled in (True, False):
        with ops.use_kernels(enabled):
            model = gn.nn.Sequential(gn.nn.Linear(20, 256, rng=0), gn.nn.ReLU(), gn.nn.Dropout(0.3),
                                     gn.nn.Linear(256, 4, rng=1))
            opt = gn.optim.Adam(model.parameters(), lr=1e-3)
            gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=100, epochs=3, device="cpu",
                       progress=False).fit(X, y)
            runs.append(model.state_dict())
    for k in runs[0]:
        np.testing.assert_allclose(runs[0][k], runs[1][k], rtol=1e-5, atol=1e-6, err_msg=k)
