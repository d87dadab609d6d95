import numpy as np
import pytest
from sklearn.base import clone

import gpunn as gn
from gpunn.data import load_digits
from gpunn.preprocessing import Standardize


@pytest.fixture(scope="module")
def digits():
    """The fixed digits split, standardized with training statistics; train and val joined for fitting."""
    s = load_digits()
    pre = Standardize().fit(s.X_train)
    X = np.concatenate([pre.transform(s.X_train), pre.transform(s.X_val)])
    y = np.concatenate([s.y_train, s.y_val])
    return X, y, pre.transform(s.X_test), s.y_test


def test_mlp_reaches_97_percent_on_digits(digits, rng):
    X, y, X_test, y_test = digits
    clf = gn.MLPClassifier(hidden=(256,), reg=1e-3, validation_fraction=0.0, device="cpu",
                           random_state=int(rng.integers(1 << 30)))
    assert clf.fit(X, y) is clf
    assert clf.score(X_test, y_test) >= 0.97


@pytest.mark.parametrize("loss,target", [("softmax", 0.94), ("svm", 0.93)])
def test_linear_classifiers_on_digits(loss, target, digits, rng):
    X, y, X_test, y_test = digits
    clf = gn.LinearClassifier(loss=loss, device="cpu", random_state=int(rng.integers(1 << 30))).fit(X, y)
    assert clf.score(X_test, y_test) >= target
    assert clf.model_[0].W.shape == (64, 10)


def test_sklearn_conventions(digits):
    X, y, X_test, _ = digits
    clf = gn.MLPClassifier(hidden=(32,), epochs=3, random_state=0, device="cpu")
    params = clf.get_params()
    assert params["hidden"] == (32,) and params["epochs"] == 3
    twin = clone(clf)  # scikit-learn's own check that __init__ stores parameters unchanged
    assert twin.get_params() == params and twin is not clf
    assert not hasattr(clf, "model_")
    clf.set_params(epochs=2, lr=3e-3)
    assert clf.epochs == 2 and clf.lr == 3e-3
    with pytest.raises(ValueError, match="has no parameter 'learning_rate'"):
        clf.set_params(learning_rate=1)
    clf.fit(X, y)
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-9)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_test))
    assert clf.n_features_in_ == 64 and len(clf.history_.epochs) == 2


def test_arbitrary_integer_labels_come_back_as_given(rng):
    labels = np.array([3, 7, 42])
    which = rng.integers(0, 3, 90)
    X = np.eye(3)[which] * 4 + rng.standard_normal((90, 3))
    y = labels[which]
    clf = gn.LinearClassifier(loss="softmax", batch_size=16, epochs=30, device="cpu", random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, labels)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, y) > 0.9


def test_same_random_state_same_model(digits):
    X, y, X_test, _ = digits
    a = gn.MLPClassifier(hidden=(16,), epochs=2, random_state=4, device="cpu").fit(X, y)
    b = gn.MLPClassifier(hidden=(16,), epochs=2, random_state=4, device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))


@pytest.mark.parametrize(
    "params,err,match",
    [
        ({"activation": "swish"}, ValueError, "unknown activation 'swish'"),
        ({"optimizer": "lbfgs"}, ValueError, "unknown optimizer 'lbfgs'"),
        ({"lr": 0}, ValueError, "lr must be in"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"dropout": 1.0}, ValueError, "dropout must be in"),
        ({"hidden": (10, 0)}, ValueError, r"hidden\[1\] must be >= 1"),
        ({"early_stopping": True, "validation_fraction": 0.0}, ValueError, "early_stopping=True needs"),
    ],
)
def test_bad_hyperparameters_fail_in_fit_and_keep_the_old_model(params, err, match, digits):
    X, y, X_test, _ = digits
    clf = gn.MLPClassifier(hidden=(8,), epochs=1, random_state=0, device="cpu").fit(X, y)
    before = clf.predict(X_test)
    clf.set_params(**params)
    with pytest.raises(err, match=match):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict(X_test), before)


def test_bad_data_and_unfitted_use(rng):
    X, y = rng.standard_normal((20, 4)), rng.integers(0, 2, 20)
    clf = gn.LinearClassifier(epochs=1, device="cpu")
    with pytest.raises(RuntimeError, match="not fitted yet"):
        clf.predict(X)
    with pytest.raises(ValueError, match="2-D matrix"):
        clf.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="same number of rows"):
        clf.fit(X, y[:5])
    with pytest.raises(ValueError, match="single class"):
        clf.fit(X, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        gn.LinearClassifier(loss="hinge").fit(X, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\) as in fit, got \(3, 5\)"):
        clf.predict(rng.standard_normal((3, 5)))
