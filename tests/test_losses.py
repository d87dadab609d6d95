import numpy as np
import pytest
from scipy.special import log_expit, log_softmax

import gpunn as gn
from gpunn.gradcheck import check_loss

N, C = 7, 5


def hinge_reference(s, y, delta=1.0):
    total = 0.0
    for i in range(len(y)):
        for j in range(s.shape[1]):
            if j != y[i]:
                total += max(0.0, s[i, j] - s[i, y[i]] + delta)
    return total / len(y)


def scores_off_hinge(rng, delta=1.0):
    """Scores with every margin s_j - s_y + delta at least 1e-3 from the hinge's kink."""
    while True:
        s, y = rng.standard_normal((N, C)) * 2, rng.integers(0, C, N)
        m = s - s[np.arange(N), y][:, None] + delta
        m[np.arange(N), y] = 1.0
        if np.abs(m).min() > 1e-3:
            return s, y


def test_softmax_cross_entropy_matches_scipy(device, rng):
    s, y = rng.standard_normal((N, C)) * 3, rng.integers(0, C, N)
    value = gn.nn.SoftmaxCrossEntropy().forward(device.asarray(s), y)
    assert float(value) == pytest.approx(-log_softmax(s, axis=1)[np.arange(N), y].mean(), rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_scores(device):
    s = np.array([[1e4, 0.0, -1e4], [-3e4, 3e4, 0.0]])
    loss = gn.nn.SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = float(loss.forward(device.asarray(s), np.array([0, 0])))
    assert value == pytest.approx(3e4, rel=1e-12)  # row 0 costs ~0, row 1 costs 6e4
    assert np.isfinite(gn.to_numpy(loss.backward())).all()


def test_multiclass_hinge_matches_a_loop(device, rng):
    s, y = rng.standard_normal((N, C)), rng.integers(0, C, N)
    value = gn.nn.MulticlassHinge(delta=1.0).forward(device.asarray(s), y)
    assert float(value) == pytest.approx(hinge_reference(s, y), rel=1e-12)


def test_binary_logistic_matches_scipy_and_is_stable(device, rng):
    s, y = rng.standard_normal(N) * 3, rng.integers(0, 2, N)
    expected = -(y * log_expit(s) + (1 - y) * log_expit(-s)).mean()
    assert float(gn.nn.BinaryLogistic().forward(device.asarray(s[:, None]), y)) == pytest.approx(expected, rel=1e-12)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = float(gn.nn.BinaryLogistic().forward(device.asarray(np.array([800.0, -800.0])), np.array([0, 1])))
    assert big == pytest.approx(800.0, rel=1e-12)


def test_margin_ranking_matches_formula(device, rng):
    s = rng.standard_normal((N, 2))
    y = rng.choice([-1, 1], N)
    loss = gn.nn.MarginRanking(delta=0.5)
    expected = np.maximum(0, 0.5 - y * (s[:, 0] - s[:, 1])).mean()
    assert float(loss.forward(device.asarray(s), y)) == pytest.approx(expected, rel=1e-12)
    positive_first = np.maximum(0, 0.5 + s[:, 1] - s[:, 0]).mean()  # max(0, delta + s_neg - s_pos)
    assert float(loss.forward(device.asarray(s))) == pytest.approx(positive_first, rel=1e-12)


def test_smooth_losses_pass_gradient_check(device, rng):
    s, y = rng.standard_normal((N, C)) * 2, rng.integers(0, C, N)
    assert check_loss(gn.nn.SoftmaxCrossEntropy(), device.asarray(s), y) < 1e-7
    s1, y1 = rng.standard_normal((N, 1)) * 2, rng.integers(0, 2, N)
    assert check_loss(gn.nn.BinaryLogistic(), device.asarray(s1), y1) < 1e-7


def test_hinge_losses_pass_gradient_check_off_the_kink(device, rng):
    s, y = scores_off_hinge(rng)
    assert check_loss(gn.nn.MulticlassHinge(), device.asarray(s), y) < 1e-7
    while True:
        pairs, sign = rng.standard_normal((N, 2)), rng.choice([-1, 1], N)
        if np.abs(1 - sign * (pairs[:, 0] - pairs[:, 1])).min() > 1e-3:
            break
    assert check_loss(gn.nn.MarginRanking(), device.asarray(pairs), sign) < 1e-7


def test_backward_scales_by_the_upstream_gradient(rng):
    s, y = rng.standard_normal((N, C)), rng.integers(0, C, N)
    loss = gn.nn.SoftmaxCrossEntropy()
    loss.forward(s, y)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * loss.backward(), rtol=1e-12)


def test_float32_scores_give_float32_loss_and_gradient(rng):
    s = rng.standard_normal((N, C)).astype(np.float32)
    loss = gn.nn.SoftmaxCrossEntropy()
    assert loss.forward(s, rng.integers(0, C, N)).dtype == np.float32
    assert loss.backward().dtype == np.float32


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "y,err,match",
    [
        (np.array([0, 1, 5]), ValueError, r"class indices in \[0, 5\), got values from 0 to 5"),
        (np.array([0, -1, 2]), ValueError, r"got values from -1 to 2"),
        (np.array([0.0, 1.0, 2.0]), TypeError, "integer class labels.*astype"),
        (np.array([0.5, 1.0, 2.0]), TypeError, "integer class labels, got dtype float64$"),
        (np.array([0, 1]), ValueError, r"y must have shape \(3,\)"),
        (None, TypeError, "labels"),
    ],
)
def test_bad_labels_are_named(y, err, match, rng):
    with pytest.raises(err, match=match):
        gn.nn.SoftmaxCrossEntropy().forward(rng.standard_normal((3, 5)), y)


@pytest.mark.parametrize(
    "scores,match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN or infinite"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "NaN or infinite"),
        (np.zeros((0, 2)), "empty batch"),
        (np.zeros(4), r"scores must have shape \(N, C\), got \(4,\)"),
    ],
)
def test_bad_scores_are_refused(scores, match):
    with pytest.raises(ValueError, match=match):
        gn.nn.MulticlassHinge().forward(scores, np.zeros(len(scores), dtype=int))


def test_binary_and_ranking_label_rules(rng):
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        gn.nn.BinaryLogistic().forward(rng.standard_normal(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"scores must have shape \(N,\) or \(N, 1\)"):
        gn.nn.BinaryLogistic().forward(rng.standard_normal((3, 2)), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"\+1.*-1"):
        gn.nn.MarginRanking().forward(rng.standard_normal((3, 2)), np.array([1, 0, -1]))


def test_failed_forward_keeps_the_last_good_cache(rng):
    loss = gn.nn.SoftmaxCrossEntropy()
    s, y = rng.standard_normal((N, C)), rng.integers(0, C, N)
    loss.forward(s, y)
    good = loss.backward()
    with pytest.raises(ValueError):
        loss.forward(s, np.full(N, C))
    np.testing.assert_array_equal(loss.backward(), good)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        gn.nn.SoftmaxCrossEntropy().backward()
