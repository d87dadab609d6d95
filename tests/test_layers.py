import numpy as np
import pytest
from scipy.special import expit

import gpunn as gn
from gpunn.gradcheck import check_layer
from conftest import away_from_zero

SMOOTH_TOL = 1e-7


def on(layer, device):
    return layer.to(device)


# ---------------------------------------------------------------- gradient checks (float64)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gn.nn.Linear(6, 4, rng=1),
        lambda: gn.nn.Linear(6, 4, bias=False, rng=1),
        lambda: gn.nn.Sigmoid(),
        lambda: gn.nn.Tanh(),
        lambda: gn.nn.ELU(alpha=0.7),
        lambda: gn.nn.BatchNorm1d(6),
        lambda: gn.nn.Sequential(gn.nn.Linear(6, 5, rng=2), gn.nn.Tanh(), gn.nn.Linear(5, 3, rng=3)),
    ],
    ids=["linear", "linear-nobias", "sigmoid", "tanh", "elu", "batchnorm", "sequential"],
)
def test_smooth_layers_pass_gradient_check(make, device, rng):
    x = rng.standard_normal((5, 6)) * 2
    assert check_layer(on(make(), device), x, seed=int(rng.integers(1 << 30))) < SMOOTH_TOL


def test_batchnorm_eval_mode_gradient_check(device, rng):
    bn = gn.nn.BatchNorm1d(4).to(device)
    bn.forward(rng.standard_normal((8, 4)) * 3 + 1)  # running statistics move off their start
    bn.eval()
    with device:  # CuPy computes on the current device: code touching a GPU's arrays directly runs on it
        bn.gamma.data[:] = bn.device.asarray(rng.uniform(0.5, 2, 4))
    assert check_layer(bn, rng.standard_normal((5, 4))) < SMOOTH_TOL


@pytest.mark.parametrize(
    "make",
    [lambda: gn.nn.ReLU(), lambda: gn.nn.LeakyReLU(0.1), lambda: gn.nn.Dropout(0.4, seed=7)],
    ids=["relu", "leaky_relu", "dropout"],
)
def test_kinked_layers_pass_gradient_check_away_from_kinks(make, device, rng):
    x = away_from_zero(rng, (5, 6), margin=0.05)
    assert check_layer(on(make(), device), x) < SMOOTH_TOL


def test_maxout_passes_gradient_check_away_from_ties(device, rng):
    # Maxout's kinks are where two pieces of a unit tie, not where x = 0: keep only rows whose
    # winning piece leads the runner-up by far more than a finite-difference step can move it.
    layer = gn.nn.Maxout(6, 3, pieces=3, rng=int(rng.integers(1 << 30)))
    W, b = layer.W.data.astype(np.float64), layer.b.data.astype(np.float64)
    rows = []
    while len(rows) < 5:
        x = rng.standard_normal(6)
        top2 = np.sort((x @ W + b).reshape(3, 3), axis=1)[:, -2:]
        if (top2[:, 1] - top2[:, 0]).min() > 0.05:
            rows.append(x)
    assert check_layer(on(layer, device), np.stack(rows), seed=int(rng.integers(1 << 30))) < SMOOTH_TOL


def test_flatten_gradient_check(device, rng):
    assert check_layer(on(gn.nn.Flatten(), device), rng.standard_normal((3, 2, 4))) < SMOOTH_TOL


def test_gradient_check_catches_a_wrong_backward(rng):
    class WrongTanh(gn.nn.Tanh):
        def backward(self, dout):
            return super().backward(dout) * 1.01

    assert check_layer(WrongTanh(), rng.standard_normal((4, 3))) > 1e-3


# ---------------------------------------------------------------- forward values against references


def test_activations_match_formulas(device, rng):
    x = rng.standard_normal((50, 7)) * 4
    cases = {
        gn.nn.ReLU(): np.maximum(x, 0),
        gn.nn.LeakyReLU(0.2): np.where(x > 0, x, 0.2 * x),
        gn.nn.ELU(1.5): np.where(x > 0, x, 1.5 * (np.exp(x) - 1)),
        gn.nn.Sigmoid(): expit(x),
        gn.nn.Tanh(): np.tanh(x),
    }
    for layer, expected in cases.items():
        out = gn.to_numpy(layer.to(device, "float64").forward(x))
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=repr(layer))


def test_sigmoid_saturates_without_overflow(device):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = gn.to_numpy(gn.nn.Sigmoid().to(device).forward(np.array([[-1e4, -88.0, 0.0, 88.0, 1e4]])))
    np.testing.assert_allclose(out, [[0.0, expit(-88.0), 0.5, 1.0, 1.0]], atol=1e-7)
    assert np.isfinite(out).all()


def test_linear_computes_xw_plus_b(device, rng):
    layer = gn.nn.Linear(5, 3, rng=0).to(device, "float64")
    with device:
        layer.b.data[:] = layer.device.asarray(rng.standard_normal(3))
    x = rng.standard_normal((4, 5))
    expected = x @ gn.to_numpy(layer.W.data) + gn.to_numpy(layer.b.data)
    np.testing.assert_allclose(gn.to_numpy(layer.forward(x)), expected, rtol=1e-12)


@pytest.mark.parametrize("init,std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 600)), (0.05, 0.05)])
def test_linear_init_scales(init, std):
    w = gn.to_numpy(gn.nn.Linear(400, 200, init=init, rng=0).W.data)
    assert w.dtype == np.float32
    assert abs(w.std() / std - 1) < 0.02 and abs(w.mean()) < 0.05 * std


def test_linear_same_seed_same_weights_on_every_dtype():
    a = gn.nn.Linear(8, 3, rng=5)
    b = gn.nn.Linear(8, 3, rng=5).to(dtype="float64")
    np.testing.assert_allclose(gn.to_numpy(a.W.data), gn.to_numpy(b.W.data), rtol=1e-6)
    assert not np.allclose(gn.to_numpy(a.W.data), gn.to_numpy(gn.nn.Linear(8, 3, rng=6).W.data))


def test_maxout_takes_the_best_piece(device, rng):
    layer = gn.nn.Maxout(4, 2, pieces=3, rng=1).to(device, "float64")
    x = rng.standard_normal((6, 4))
    z = x @ gn.to_numpy(layer.W.data) + gn.to_numpy(layer.b.data)
    np.testing.assert_allclose(gn.to_numpy(layer.forward(x)), z.reshape(6, 2, 3).max(axis=2), rtol=1e-12)


def test_batchnorm_training_statistics_and_running_update(device, rng):
    bn = gn.nn.BatchNorm1d(3, momentum=0.2).to(device, "float64")
    x = rng.standard_normal((10, 3)) * [1.0, 3.0, 0.5] + [2.0, -1.0, 0.0]
    y = gn.to_numpy(bn.forward(x))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-10)
    np.testing.assert_allclose(gn.to_numpy(bn.running_mean), 0.2 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gn.to_numpy(bn.running_var), 0.8 + 0.2 * x.var(axis=0, ddof=1), rtol=1e-12)
    bn.eval()
    expected = (x - gn.to_numpy(bn.running_mean)) / np.sqrt(gn.to_numpy(bn.running_var) + 1e-5)
    np.testing.assert_allclose(gn.to_numpy(bn.forward(x)), expected, rtol=1e-12)


def test_dropout_is_inverted_and_identity_in_eval(device, rng):
    p = 0.3
    drop = gn.nn.Dropout(p, seed=int(rng.integers(1 << 30))).to(device)
    x = np.abs(rng.standard_normal((400, 250))) + 0.1
    y = gn.to_numpy(drop.forward(x))
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 0.01  # 100k draws: the dropped fraction is within 1% of p
    np.testing.assert_allclose(y[kept], x.astype(np.float32)[kept] / (1 - p), rtol=1e-6)
    dx = gn.to_numpy(drop.backward(np.ones_like(x)))
    np.testing.assert_array_equal(dx != 0, kept)
    drop.eval()
    np.testing.assert_array_equal(gn.to_numpy(drop.forward(x)), x.astype(np.float32))


def test_dropout_masks_repeat_with_the_seed_and_differ_between_layers(device, rng):
    x = rng.standard_normal((20, 30)) + 5
    model = gn.nn.Sequential(gn.nn.Dropout(0.5), gn.nn.Dropout(0.5)).to(device)
    first = [gn.to_numpy(model.seed(3)[0].forward(x)), gn.to_numpy(model[1].forward(x))]
    second = [gn.to_numpy(model.seed(3)[0].forward(x)), gn.to_numpy(model[1].forward(x))]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0] != 0, first[1] != 0)


# ---------------------------------------------------------------- bad input


def test_shape_mismatch_names_the_layer_and_both_shapes(rng):
    model = gn.nn.Sequential(gn.nn.Linear(8, 5), gn.nn.ReLU(), gn.nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"layer 2: Linear\(6, 2\) expects input of shape \(N, 6\), got \(3, 5\)"):
        model.forward(rng.standard_normal((3, 8)))


@pytest.mark.parametrize(
    "layer", [gn.nn.Linear(4, 2), gn.nn.ReLU(), gn.nn.BatchNorm1d(4), gn.nn.Dropout(0.5), gn.nn.Flatten()],
    ids=repr,
)
def test_empty_batches_are_refused(layer):
    with pytest.raises(ValueError, match="empty batch"):
        layer.forward(np.zeros((0, 4)))


def test_non_numeric_and_wrong_rank_inputs(rng):
    with pytest.raises(TypeError, match="must hold numbers"):
        gn.nn.ReLU().forward(np.array([["a"]]))
    with pytest.raises(ValueError, match="expects a 2-D input"):
        gn.nn.Linear(4, 2).forward(rng.standard_normal((2, 2, 4)))


@pytest.mark.parametrize(
    "make,err,match",
    [
        (lambda: gn.nn.Dropout(1.0), ValueError, r"p must be in \[0, 1\), got 1.0"),
        (lambda: gn.nn.Dropout(-0.1), ValueError, "p must be in"),
        (lambda: gn.nn.Dropout("half"), TypeError, "p must be a real number"),
        (lambda: gn.nn.Linear(4, 2, init="glorot"), ValueError, "unknown init 'glorot'"),
        (lambda: gn.nn.Linear(4, 2, init=-1.0), ValueError, "positive float std"),
        (lambda: gn.nn.Linear(0, 2), ValueError, "in_features must be >= 1"),
        (lambda: gn.nn.LeakyReLU(1.5), ValueError, "alpha"),
        (lambda: gn.nn.ELU(0), ValueError, "alpha"),
        (lambda: gn.nn.Sequential(gn.nn.ReLU(), "relu"), TypeError, "layer 1 must be a gpunn.nn.Module"),
    ],
)
def test_bad_hyperparameters_are_named(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_backward_before_forward_and_wrong_upstream_shape(rng):
    relu = gn.nn.ReLU()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        relu.backward(np.ones((2, 2)))
    relu.forward(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"upstream gradient has shape \(2, 2\), its output had \(2, 3\)"):
        relu.backward(np.ones((2, 2)))


def test_batchnorm_refuses_single_row_batches_in_training_without_touching_stats(rng):
    bn = gn.nn.BatchNorm1d(3)
    before = bn.state_dict()
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn.forward(rng.standard_normal((1, 3)))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
