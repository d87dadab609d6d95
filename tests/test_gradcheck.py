import numpy as np
import pytest

import gpunn as gn
from gpunn.gradcheck import check_model, check_sparse, numerical_gradient, rel_error


def test_numerical_gradient_of_known_functions(rng):
    x = rng.standard_normal((3, 4))
    # centered differences of x^3 give exactly 3 x^2 + h^2 (h^2 = 1e-10), plus the rounding of the two sums over
    # 12 cubes, divided by 2h (a fixed atol of 2e-10 failed on about 1 draw in 110)
    roundoff = 4 * np.finfo(np.float64).eps * np.abs(x**3).sum() / 1e-5
    np.testing.assert_allclose(numerical_gradient(lambda: (x**3).sum(), x), 3 * x**2, rtol=1e-8,
                               atol=1e-10 + roundoff)
    df = rng.standard_normal((3, 4))
    np.testing.assert_allclose(numerical_gradient(lambda: np.sin(x), x, df), np.cos(x) * df, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_restores_x(rng):
    x = rng.standard_normal(5)
    before = x.copy()
    numerical_gradient(lambda: np.exp(x).sum(), x)
    np.testing.assert_array_equal(x, before)


def test_rel_error_is_scale_relative():
    a = np.array([1000.0, 2000.0])
    assert rel_error(a, a * (1 + 1e-6)) == pytest.approx(1e-6, rel=1e-3)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_sparse_agrees_and_catches_errors(rng):
    x = rng.standard_normal((30, 20))
    f = lambda: (np.tanh(x) ** 2).sum()  # noqa: E731
    exact = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    assert check_sparse(f, x, exact, num_checks=20, seed=1) < 1e-7
    assert check_sparse(f, x, exact * 1.1, num_checks=20, seed=1) > 1e-2


def test_check_model_full_and_sparse(device, rng):
    model = gn.nn.Sequential(
        gn.nn.Linear(5, 8, rng=1), gn.nn.BatchNorm1d(8), gn.nn.Tanh(), gn.nn.Dropout(0.3), gn.nn.Linear(8, 3, rng=2)
    ).to(device)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    assert check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y) < 1e-7
    assert check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y, num_checks=5) < 1e-6


def test_checks_leave_the_callers_model_alone(rng):
    model = gn.nn.Sequential(gn.nn.Linear(3, 2, rng=0))
    before = model.state_dict()
    check_model(model, gn.nn.SoftmaxCrossEntropy(), rng.standard_normal((4, 3)), rng.integers(0, 2, 4))
    assert model.dtype == np.float32 and model[0].W.grad is None
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_check_model_on_the_readme_model_samples_big_parameters_and_reports_each(rng):
    model = gn.nn.Sequential(gn.nn.Linear(3072, 100, rng=0), gn.nn.ReLU(), gn.nn.Dropout(0.5), gn.nn.Linear(100, 10))
    X, y = rng.standard_normal((5, 3072)), rng.integers(0, 10, 5)
    report = check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y)
    assert report.checked == {"0.W": (20, 307200), "0.b": (100, 100), "3.W": (20, 1000), "3.b": (10, 10)}
    assert set(report.errors) == {"0.W", "0.b", "3.W", "3.b"} and report == max(report.errors.values())
    assert report < 1e-5  # ReLU: kinks are possible, at float64 they are rarely hit
    text = str(report)
    assert "0.W" in text and "20 of 307200 (sampled)" in text and "all 100" in text


def test_check_model_points_at_the_wrong_parameter(rng):
    class WrongBias(gn.nn.Linear):
        def backward(self, dout, input_grad=True):
            dx = super().backward(dout, input_grad)
            self.b.grad *= 1.5
            return dx

    model = gn.nn.Sequential(gn.nn.Linear(4, 5, rng=0), gn.nn.Tanh(), WrongBias(5, 3, rng=1))
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    report = check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y)
    assert report.errors["2.b"] > 0.1
    assert all(report.errors[k] < 1e-7 for k in ("0.W", "0.b", "2.W"))


def test_a_parameter_left_without_gradient_is_named(rng):
    class ForgetsItsWeights(gn.nn.Linear):
        def backward(self, dout, input_grad=True):
            dx = super().backward(dout, input_grad)
            self.W.grad = None
            return dx

    model = gn.nn.Sequential(ForgetsItsWeights(4, 3, rng=0))
    with pytest.raises(ValueError, match=r"0\.W has no gradient after backward"):
        check_model(model, gn.nn.SoftmaxCrossEntropy(), rng.standard_normal((3, 4)), rng.integers(0, 3, 3))
    with pytest.raises(ValueError, match=r"W has no gradient after backward"):
        gn.gradcheck.check_layer(ForgetsItsWeights(4, 3, rng=0), rng.standard_normal((3, 4)))


def test_the_full_objective_with_l2_is_checked_and_is_what_the_optimizer_descends(rng):
    model = gn.nn.Sequential(gn.nn.Linear(4, 6, rng=0), gn.nn.Tanh(), gn.nn.Linear(6, 3, rng=1)).to("float64")
    X, y, reg = rng.standard_normal((7, 4)), rng.integers(0, 3, 7), 0.3
    loss = gn.nn.SoftmaxCrossEntropy()
    assert check_model(model, loss, X, y, reg=reg) < 1e-7
    # one plain SGD step with weight_decay=reg moves every parameter along -lr * (objective's gradient)
    before = {n: p.data.copy() for n, p in model.named_parameters()}

    def objective():
        return float(loss.forward(model.forward(X), y)) + 0.5 * reg * sum((p.data ** 2).sum()
                                                                          for p in model.parameters() if p.decay)

    numeric = {n: numerical_gradient(objective, p.data) for n, p in model.named_parameters()}
    penalty = gn.optim.SGD(model.parameters(), lr=1.0, weight_decay=reg).penalty()
    assert penalty == pytest.approx(0.5 * reg * sum((before[n] ** 2).sum() for n in ("0.W", "2.W")), rel=1e-12)
    opt = gn.optim.SGD(model.parameters(), lr=1e-3, weight_decay=reg)
    opt.zero_grad()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    opt.step()
    for n, p in model.named_parameters():
        np.testing.assert_allclose((before[n] - p.data) / 1e-3, numeric[n], rtol=1e-6, atol=1e-9)
    assert gn.optim.AdamW(model.parameters(), weight_decay=reg).penalty() == 0.0  # decoupled: no loss term
