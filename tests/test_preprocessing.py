import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gpunn as gn
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
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls().transform(X)
    with pytest.raises(ValueError, match="Reshape your data"):
        cls().fit(X[:, 0])
    with pytest.raises(ValueError, match="X contains NaN"):
        cls().fit(np.where(X > 4, np.nan, X))
    with pytest.raises(ValueError, match="0 sample"):
        cls().fit(X[:0])
    with pytest.raises(TypeError, match="Sparse data"):
        cls().fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match=f"X has 5 features, but {cls.__name__} is expecting 6 features as input"):
        cls().fit(X).transform(X[:, :5])
    with pytest.raises(ValueError, match="n_components=9 is more than the 6 features"):
        PCAWhitening(n_components=9).fit(X)


@pytest.mark.parametrize("cls", [MeanSubtraction, Standardize, PCAWhitening])
def test_a_failed_fit_keeps_the_fitted_statistics(cls, rng):
    X = correlated(rng)
    pre = cls().fit(X)
    before, state = pre.transform(X), dict(vars(pre))
    bad = X[:, :4].copy()  # another width, too: n_features_in_ must not change
    bad[::7, 1] = np.nan  # always some NaN (a threshold on fresh random data sometimes picked none)
    with pytest.raises(ValueError, match="X contains NaN"):
        pre.fit(bad)
    assert vars(pre) == state
    np.testing.assert_array_equal(pre.transform(X), before)


def test_pca_parameters_are_checked_in_fit_not_in_init(rng):
    bad = PCAWhitening(eps=-1, n_components=0)  # scikit-learn's convention: __init__ only stores
    assert bad.eps == -1
    with pytest.raises(ValueError, match=r"eps must be in \[0, inf\)"):
        bad.fit(correlated(rng))
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        bad.set_params(eps=0).fit(correlated(rng))


def test_in_a_pipeline_with_a_classifier(rng):
    X = correlated(rng) * 100 + 1000  # badly scaled: the pipeline's standardization is what makes it learnable
    y = (X[:, 0] + X[:, 1] > np.median(X[:, 0] + X[:, 1])).astype(int)
    pipe = make_pipeline(Standardize(), gn.LinearClassifier(device="cpu", random_state=0)).fit(X, y)
    assert pipe.score(X, y) > 0.9
    reference = make_pipeline(StandardScaler(), gn.LinearClassifier(device="cpu", random_state=0)).fit(X, y)
    np.testing.assert_allclose(pipe.decision_function(X), reference.decision_function(X), rtol=1e-4, atol=1e-4)
    scores = cross_val_score(pipe, X, y, cv=3)
    assert np.isfinite(scores).all() and scores.min() > 0.8
    assert Standardize().fit_transform(X, y).shape == X.shape  # y is accepted and ignored


def test_feature_names_and_pandas_output(rng):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(correlated(rng, d=3), columns=["a", "b", "c"])
    std = Standardize().set_output(transform="pandas").fit(frame)
    out = std.transform(frame)
    assert list(out.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(out.to_numpy(), StandardScaler().fit_transform(frame), rtol=1e-10, atol=1e-12)
    assert list(PCAWhitening(n_components=2).fit(frame).get_feature_names_out()) == ["pcawhitening0", "pcawhitening1"]
    np.testing.assert_array_equal(MeanSubtraction().fit(frame).feature_names_in_, ["a", "b", "c"])


@pytest.mark.parametrize("cls", [MeanSubtraction, Standardize, PCAWhitening])
def test_cuda_statistics_stay_on_the_gpu_and_outputs_follow_the_input(cls, gpu, rng):
    import cupy

    X = correlated(rng)
    pre = cls().fit(gpu.asarray(X))
    assert isinstance(pre.mean_, cupy.ndarray) and gn.device_of(pre.mean_) == gpu
    on_gpu, on_host = pre.transform(gpu.asarray(X)), pre.transform(X)
    assert isinstance(on_gpu, cupy.ndarray) and isinstance(on_host, np.ndarray)
    np.testing.assert_allclose(gn.to_numpy(on_gpu), on_host, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(on_host, cls().fit(X).transform(X), rtol=1e-8, atol=1e-8)
