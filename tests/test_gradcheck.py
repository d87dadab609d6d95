import numpy as np
import pytest

import gpunn as gn
from gpunn.gradcheck import check_model, check_sparse, numerical_gradient, rel_error


def test_numerical_gradient_of_known_functions(rng):
    x = rng.standard_normal((3, 4))
    # centered differences of x^3 give exactly 3 x^2 + h^2: an absolute error of h^2 = 1e-10
    np.testing.assert_allclose(numerical_gradient(lambda: (x**3).sum(), x), 3 * x**2, rtol=1e-8, atol=2e-10)
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
