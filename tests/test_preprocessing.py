import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from gpunn.preprocessing import MeanSubtraction, PCAWhitening, Standardize


def correlated(rng, n=500, d=6):
    mixing = rng.standard_normal((d, d))
    return rng.standard_normal((n, d)) @ mixing + rng.standard_normal(d) * 5


def test_mean_subtraction_uses_training_statistics(rng):
    X_train, X_test = correlated(rng), correlated(rng, 50)
    pre = MeanSubtraction().fit(X_train)
    np.testing.assert_allclose(pre.transform(X_train).mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(pre.transform(X_test), X_test - X_train.mean(axis=0), rtol=1e-12)


def test_standardize_matches_sklearn_and_inverts(rng):
    X_train, X_test = correlated(rng), correlated(rng, 50)
    X_train[:, 2] = 3.0  # a constant feature
    ours = Standardize().fit(X_train)
    ref = StandardScaler().fit(X_train)
    np.testing.assert_allclose(ours.transform(X_test), ref.transform(X_test), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X_test)), X_test, rtol=1e-10)


def test_pca_whitening_decorrelates_and_matches_sklearn(rng):
    X_train, X_test = correlated(rng), correlated(rng, 50)
    pre = PCAWhitening(eps=0.0).fit(X_train)
    Z = pre.transform(X_train)
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.eye(6), atol=1e-8)
    ref = PCA(whiten=True).fit(X_train)
    n = len(X_train)
    # scikit-learn divides by n - 1 and may flip a component's sign
    expected = ref.transform(X_test) * np.sqrt(n / (n - 1))
    got = pre.transform(X_test)
    signs = np.sign((got * expected).sum(axis=0))
    np.testing.assert_allclose(got * signs, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(pre.inverse_transform(pre.transform(X_test)), X_test, rtol=1e-8, atol=1e-8)


def test_pca_keeps_leading_components_and_eps_damps_small_ones(rng):
    X = correlated(rng)
    two = PCAWhitening(n_components=2).fit(X)
    assert two.transform(X).shape == (500, 2)
    assert two.explained_variance_[0] >= two.explained_variance_[1]
    damped = PCAWhitening(eps=1e3).fit(X).transform(X)
    assert damped.var(axis=0).max() < 1


def test_float32_in_float32_out(rng):
    X = correlated(rng).astype(np.float32)
    for pre in (MeanSubtraction(), Standardize(), PCAWhitening()):
        assert pre.fit_transform(X).dtype == np.float32


@pytest.mark.parametrize("cls", [MeanSubtraction, Standardize, PCAWhitening])
def test_bad_input(cls, rng):
    X = correlated(rng)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        cls().transform(X)
    with pytest.raises(ValueError, match="2-D matrix"):
        cls().fit(X[:, 0])
    with pytest.raises(ValueError, match="contains NaN"):
        cls().fit(np.where(X > 4, np.nan, X))
    with pytest.raises(ValueError, match="empty"):
        cls().fit(X[:0])
    with pytest.raises(ValueError, match="X has 5 features"):
        cls().fit(X).transform(X[:, :5])
    with pytest.raises(ValueError, match="n_components=9 is more than the 6 features"):
        PCAWhitening(n_components=9).fit(X)
