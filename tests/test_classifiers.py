import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.svm import LinearSVC

import gpunn as gn
from gpunn.data import load_digits
from gpunn.data.splits import check_xy
from gpunn.preprocessing import Standardize


@pytest.fixture(scope="module")
def digits():
    """The fixed digits split, standardized with training statistics; train and val joined for fitting."""
    s = load_digits()
    pre = Standardize().fit(s.X_train)
    X = np.concatenate([pre.transform(s.X_train), pre.transform(s.X_val)])
    y = np.concatenate([s.y_train, s.y_val])
    return X, y, pre.transform(s.X_test), s.y_test


@pytest.fixture(scope="module")
def reference_split():
    """The issue's reference: scikit-learn's digits / 16, train_test_split(test_size=0.25, random_state=0)."""
    X, y = sklearn_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.25, random_state=0)


def blobs(rng, labels, n=120, d=4):
    """Well separated classes: one center per label, 6 apart along its own axis."""
    which = rng.integers(0, len(labels), n)
    which[:len(labels)] = np.arange(len(labels))  # every class present
    X = 6 * np.eye(max(d, len(labels)))[which][:, :d] + rng.standard_normal((n, d))
    return X, np.asarray(labels)[which]


def test_mlp_reaches_97_percent_on_digits(digits, rng):
    X, y, X_test, y_test = digits
    clf = gn.MLPClassifier(hidden=(256,), reg=1e-3, epochs=40, device="cpu", random_state=int(rng.integers(1 << 30)))
    assert clf.fit(X, y) is clf
    assert clf.score(X_test, y_test) >= 0.97


@pytest.mark.parametrize("loss,target", [("softmax", 0.94), ("svm", 0.93)])
def test_linear_classifiers_on_digits(loss, target, digits, rng):
    X, y, X_test, y_test = digits
    clf = gn.LinearClassifier(loss=loss, device="cpu", random_state=int(rng.integers(1 << 30))).fit(X, y)
    assert clf.score(X_test, y_test) >= target
    assert clf.model_[0].W.shape == (64, 10)


@pytest.mark.parametrize("loss,reference", [("softmax", LogisticRegression(max_iter=1000)), ("svm", LinearSVC())])
def test_linear_defaults_within_a_point_of_scikit_learn(loss, reference, reference_split, rng):
    X_train, X_test, y_train, y_test = reference_split
    ours = gn.LinearClassifier(loss=loss, device="cpu", random_state=int(rng.integers(1 << 30))).fit(X_train, y_train)
    ref = clone(reference).fit(X_train, y_train)
    assert ours.score(X_test, y_test) >= ref.score(X_test, y_test) - 0.01


def test_mlp_defaults_as_accurate_as_scikit_learns(reference_split, rng):
    X_train, X_test, y_train, y_test = reference_split
    ours = gn.MLPClassifier(device="cpu", random_state=int(rng.integers(1 << 30))).fit(X_train, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's default 200 epochs end with a ConvergenceWarning
        ref = SklearnMLP(random_state=0).fit(X_train, y_train)
    # one seed each: allow two test rows (of 450) of seed-to-seed noise; bench/test_fit.py compares means over seeds
    assert ours.score(X_test, y_test) >= ref.score(X_test, y_test) - 2 / len(y_test)


def test_sklearn_conventions(digits):
    X, y, X_test, y_test = digits
    clf = gn.MLPClassifier(hidden=(32,), epochs=3, random_state=0, device="cpu")
    assert is_classifier(clf)
    params = clf.get_params()
    assert params["hidden"] == (32,) and params["epochs"] == 3
    twin = clone(clf)  # scikit-learn's own check that __init__ stores parameters unchanged
    assert twin.get_params() == params and twin is not clf
    assert not hasattr(clf, "model_")
    clf.set_params(epochs=2, lr=3e-3)
    assert clf.epochs == 2 and clf.lr == 3e-3
    with pytest.raises(ValueError, match="Invalid parameter 'learning_rate'"):
        clf.set_params(learning_rate=1)
    clf.fit(X, y)
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), proba, rtol=1e-9)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_test))
    assert clf.score(X_test, y_test) == accuracy_score(y_test, clf.predict(X_test))
    assert clf.n_features_in_ == 64 and len(clf.history_.epochs) == 2 and clf.n_iter_ == 2


@pytest.mark.parametrize("n_classes", [2, 4])
def test_coef_and_decision_function_as_in_scikit_learns_linear_models(n_classes, rng):
    labels = np.arange(n_classes) * 10 - 5
    X, y = blobs(rng, labels)
    clf = gn.LinearClassifier(device="cpu", random_state=0).fit(X, y)
    rows = 1 if n_classes == 2 else n_classes
    assert clf.coef_.shape == (rows, 4) and clf.intercept_.shape == (rows,)
    scores = clf.decision_function(X)
    np.testing.assert_allclose(scores.reshape(len(X), -1), X @ clf.coef_.T + clf.intercept_, rtol=1e-5, atol=1e-5)
    predicted = clf.predict(X)
    if n_classes == 2:
        assert scores.shape == (len(X),)
        np.testing.assert_array_equal(predicted, clf.classes_[(scores > 0).astype(int)])
        proba = clf.predict_proba(X)  # the softmax of two scores is the logistic of their difference
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-5)
    else:
        assert scores.shape == (len(X), n_classes)
        np.testing.assert_array_equal(predicted, clf.classes_[scores.argmax(axis=1)])
    assert clf.score(X, y) > 0.95


def test_svm_has_scores_but_no_probabilities(rng):
    X, y = blobs(rng, [0, 1, 2])
    svm = gn.LinearClassifier(loss="svm", device="cpu", random_state=0)
    assert not hasattr(svm, "predict_proba") and hasattr(gn.LinearClassifier(), "predict_proba")
    svm.fit(X, y)
    assert svm.decision_function(X).shape == (len(X), 3) and svm.score(X, y) > 0.95


LABELS = {
    "strings": np.array(["cat", "dog", "emu"]),
    "negative and gaps": np.array([-7, 0, 42]),
    "booleans": np.array([False, True]),
    "whole floats": np.array([1.0, 2.0, 3.0]),
    "objects": np.array(["x", "y"], dtype=object),
}


@pytest.mark.parametrize("labels", LABELS.values(), ids=LABELS.keys())
@pytest.mark.parametrize("make", [
    lambda: gn.LinearClassifier(device="cpu", random_state=0),
    lambda: gn.MLPClassifier(hidden=(16,), device="cpu", random_state=0),
    lambda: gn.KNeighborsClassifier(device="cpu"),
], ids=["linear", "mlp", "knn"])
def test_any_labels_round_trip_through_classes(make, labels, rng):
    X, y = blobs(rng, labels)
    clf = make().fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    predicted = clf.predict(X)
    assert predicted.dtype == y.dtype and set(predicted) <= set(labels)
    assert clf.score(X, y) > 0.95
    assert clf.score(X, list(y)) == clf.score(X, y)  # lists of labels too


def test_unfitted_use_raises_not_fitted_error(rng):
    X = rng.standard_normal((5, 3))
    for clf in (gn.LinearClassifier(), gn.MLPClassifier(), gn.KNeighborsClassifier()):
        for method in ("predict", "predict_proba", "decision_function", "score"):
            if hasattr(clf, method):
                with pytest.raises(NotFittedError, match="not fitted yet"):
                    getattr(clf, method)(*((X, [0] * 5) if method == "score" else (X,)))
    with pytest.raises(NotFittedError):
        gn.LinearClassifier().coef_  # noqa: B018
    assert not hasattr(gn.LinearClassifier(), "coef_")


def test_dataframes_give_feature_names(rng):
    pd = pytest.importorskip("pandas")
    X, y = blobs(rng, [0, 1, 2])
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    for clf in (gn.LinearClassifier(device="cpu", random_state=0), gn.KNeighborsClassifier(device="cpu")):
        clf.fit(frame, pd.Series(y))
        np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
        assert clf.n_features_in_ == 4
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
        with pytest.raises(ValueError, match="feature names"):
            clf.predict(frame[["b", "a", "c", "d"]])
        clf.fit(X, y)  # refitted on an array: the names are gone
        assert not hasattr(clf, "feature_names_in_")


def test_same_random_state_same_model(digits):
    X, y, X_test, _ = digits
    a = gn.MLPClassifier(hidden=(16,), epochs=2, random_state=4, device="cpu").fit(X, y)
    b = gn.MLPClassifier(hidden=(16,), epochs=2, random_state=4, device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.decision_function(X_test), b.decision_function(X_test))


def test_float64_precision_trains_a_float64_model(rng):
    X, y = blobs(rng, [0, 1, 2])
    clf = gn.MLPClassifier(hidden=(8,), epochs=5, precision="float64", device="cpu", random_state=0).fit(X, y)
    assert clf.model_[0].W.data.dtype == np.float64
    whole = clf.decision_function(X)
    one_by_one = np.concatenate([clf.decision_function(X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [gn.MLPClassifier, gn.LinearClassifier])
def test_mixed_precision_needs_a_gpu_and_a_failed_fit_changes_nothing(cls, rng):
    X, y = blobs(rng, [0, 1, 2])
    clf = cls(epochs=2, precision="mixed", device="cpu", random_state=0)
    with pytest.raises(ValueError, match=r"precision='mixed' needs a CUDA device, and the device is cpu"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


@pytest.mark.parametrize("cls", [gn.MLPClassifier, gn.LinearClassifier])
def test_mixed_precision_on_a_gpu_fits_a_float32_model(cls, gpu, rng):
    X, y = blobs(rng, [0, 1, 2])
    clf = cls(epochs=20, lr=0.01, precision="mixed", device=str(gpu), random_state=0, batch_size=32).fit(X, y)
    assert all(p.data.dtype == np.float32 and p.master is None for p in clf.model_.parameters())
    reference = cls(epochs=20, lr=0.01, device="cpu", random_state=0, batch_size=32).fit(X, y)
    assert clf.score(X, y) >= reference.score(X, y) - 0.05 and clf.score(X, y) > 0.9


def test_early_stopping_keeps_the_epoch_of_lowest_validation_loss(rng):
    X, y = rng.standard_normal((200, 8)), rng.choice(["a", "b", "c"], 200)  # no signal: validation loss soon rises
    clf = gn.MLPClassifier(hidden=(64,), lr=1e-2, epochs=200, early_stopping=True, patience=3, device="cpu",
                           random_state=0).fit(X, y)
    losses = clf.history_.column("val_loss")
    assert clf.n_iter_ == len(losses) < 200  # stopped early
    assert clf.history_.best_epoch == int(np.argmin(losses)) + 1
    assert clf.n_iter_ == clf.history_.best_epoch + 3
    last = gn.MLPClassifier(**{**clf.get_params(), "early_stopping": False, "epochs": clf.n_iter_})
    assert not np.allclose(last.fit(X, y).decision_function(X), clf.decision_function(X))  # not the last epoch's


def test_one_hot_y_gets_a_hint(rng):
    X = rng.standard_normal((1257, 4))
    one_hot = np.eye(10)[rng.integers(0, 10, 1257)]
    message = r"y must be 1-D class labels, got shape \(1257, 10\); for one-hot rows use y.argmax\(1\)"
    for clf in (gn.LinearClassifier(device="cpu"), gn.MLPClassifier(device="cpu"), gn.KNeighborsClassifier()):
        with pytest.raises(ValueError, match=message):
            clf.fit(X, one_hot)
    with pytest.raises(ValueError, match=message):
        check_xy(X, one_hot)  # what the Trainer checks its data with
    model = gn.nn.Sequential(gn.nn.Linear(4, 10))
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=0.1), device="cpu",
                         progress=False)
    with pytest.raises(ValueError, match=message):
        trainer.fit(X, one_hot)


def test_a_column_of_labels_is_accepted_with_a_warning(rng):
    X, y = blobs(rng, [0, 1])
    clf = gn.LinearClassifier(device="cpu", random_state=0)
    with pytest.warns(UserWarning, match="column-vector y"):
        clf.fit(X, y[:, None])
    flat = gn.LinearClassifier(device="cpu", random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), flat.predict(X))


def test_validation_errors_name_validation_fraction(rng):
    X, y = blobs(rng, [0, 1], n=20)
    clf = gn.MLPClassifier(hidden=(4,), epochs=2, early_stopping=True, validation_fraction=0.01, device="cpu",
                           random_state=0)
    assert clf.fit(X, y).n_iter_ >= 1  # 1% of 20 rows is still one validation row
    clf.set_params(validation_fraction=0.9)
    with pytest.raises(ValueError, match=r"validation_fraction=0.9 of 5 rows leaves no training rows"):
        clf.fit(X[:5], y[:5])
    clf.set_params(validation_fraction=1.0)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\), got 1.0"):
        clf.fit(X, y)


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
        ({"hidden": "100"}, TypeError, r"^hidden must be an int or a sequence of ints, got str '100'$"),
        ({"hidden": 2.5}, TypeError, r"^hidden must be an int or a sequence of ints, got float 2.5$"),
        ({"hidden": (10, "5")}, TypeError, r"^hidden\[1\] must be an integer, got str '5'$"),
        ({"early_stopping": True, "validation_fraction": 0.0}, ValueError, "early_stopping=True needs"),
        ({"precision": "float16"}, ValueError, "unknown precision 'float16'"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
    ],
)
def test_bad_hyperparameters_fail_in_fit_and_keep_the_old_model(params, err, match, digits):
    X, y, X_test, _ = digits
    clf = gn.MLPClassifier(hidden=(8,), epochs=1, random_state=0, device="cpu").fit(X, y)
    before, model = clf.predict(X_test), clf.model_
    clf.set_params(**params)
    with pytest.raises(err, match=match):
        clf.fit(X, y)
    assert clf.model_ is model
    np.testing.assert_array_equal(clf.predict(X_test), before)


@pytest.mark.parametrize(
    "bad,err,match",
    [
        (lambda X, y: (np.where(X > 2, np.nan, X), y), ValueError, "X contains NaN"),
        (lambda X, y: (np.where(X > 2, np.inf, X)[:, :3], y), ValueError, "X contains NaN or infinite"),  # new width
        (lambda X, y: (X, np.eye(3)[y]), ValueError, "one-hot"),
        (lambda X, y: (X, y * 0.5), ValueError, "Unknown label type"),
        (lambda X, y: (X, y[:5]), ValueError, "same number of rows"),
        (lambda X, y: (X[:, 0], y), ValueError, "Reshape your data"),
        (lambda X, y: (sp.csr_matrix(X), y), TypeError, "Sparse data"),
        (lambda X, y: (X + 1j, y), ValueError, "Complex data not supported"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
        (lambda X, y: (X, None), ValueError, "requires y to be passed"),
    ],
)
@pytest.mark.parametrize("make", [lambda: gn.LinearClassifier(epochs=2, device="cpu", random_state=0),
                                  lambda: gn.KNeighborsClassifier(device="cpu")], ids=["linear", "knn"])
def test_bad_data_fails_with_a_message_and_a_failed_fit_keeps_the_fitted_state(make, bad, err, match, rng):
    X, y = blobs(rng, [0, 1, 2])
    clf = make().fit(X, y)
    before = clf.predict_proba(X)
    state = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    with pytest.raises(err, match=match):
        clf.fit(*bad(X, y))
    assert {k: v for k, v in vars(clf).items() if k.endswith("_")}.keys() == state.keys()
    assert all(vars(clf)[k] is v for k, v in state.items())
    assert clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_trained_classifiers_need_two_classes(rng):
    X = rng.standard_normal((10, 3))
    for clf in (gn.LinearClassifier(device="cpu"), gn.MLPClassifier(device="cpu")):
        with pytest.raises(ValueError, match=r"y has only 1 class \('spam'\); \w+ needs at least 2 classes"):
            clf.fit(X, ["spam"] * 10)
    knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, ["spam"] * 10)  # voting needs no second class
    assert list(knn.predict(X[:2])) == ["spam", "spam"]


def test_predicting_bad_input_names_the_problem(rng):
    X, y = blobs(rng, [0, 1])
    clf = gn.LinearClassifier(epochs=2, device="cpu", random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but LinearClassifier is expecting 4 features as input"):
        clf.predict(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        clf.decision_function(np.full((2, 4), np.inf))
    with pytest.raises(ValueError, match="Reshape your data"):
        clf.predict(X[0])


# --------------------------------------------------------------------------- on a GPU (skipped without one)


@pytest.mark.parametrize("make", [
    lambda dev: gn.LinearClassifier(device=dev, random_state=0),
    lambda dev: gn.MLPClassifier(hidden=(16,), epochs=20, lr=1e-2, device=dev, random_state=0, early_stopping=True),
    lambda dev: gn.KNeighborsClassifier(device=dev),
], ids=["linear", "mlp", "knn"])
def test_cuda_state_stays_on_the_gpu_and_outputs_follow_the_input(make, gpu, rng):
    import cupy

    # kNN predicts with a block of threads per query, Python threads on a simulated GPU: fewer rows there
    X, y = blobs(rng, [3, 5, 9], n=30 if "KNeighbors" in repr(make("cpu")) else 200)
    clf = make(str(gpu)).fit(gpu.asarray(X), gpu.asarray(y))
    on_host = make(str(gpu)).fit(X, y)
    assert clf.device_ == gpu
    state = clf.X_ if isinstance(clf, gn.KNeighborsClassifier) else clf.model_[0].W.data
    assert isinstance(state, cupy.ndarray) and gn.device_of(state) == gpu
    some = X[:10]  # the outputs' types and values on a few rows; the score below takes them all
    for method in ("predict", "predict_proba", "decision_function"):
        if hasattr(clf, method):
            from_gpu, from_host = getattr(clf, method)(gpu.asarray(some)), getattr(clf, method)(some)
            assert isinstance(from_gpu, cupy.ndarray) and isinstance(from_host, np.ndarray)
            assert gn.device_of(from_gpu) == gpu
            np.testing.assert_allclose(gn.to_numpy(from_gpu), from_host, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(on_host.classes_, clf.classes_)
    assert clf.score(gpu.asarray(X), gpu.asarray(y)) == clf.score(X, y) > 0.95
    with pytest.raises(ValueError, match="X contains NaN"):
        clf.predict(gpu.asarray(np.full((2, 4), np.nan)))
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(gpu.asarray(X[:, :3]))


def test_random_search_over_lr_and_reg_as_in_the_readme():
    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV, ShuffleSplit
    from sklearn.pipeline import make_pipeline

    s = load_digits()
    search = RandomizedSearchCV(
        make_pipeline(Standardize(), gn.LinearClassifier(loss="softmax", device="cpu", random_state=0)),
        {"linearclassifier__lr": loguniform(1e-4, 1e-1), "linearclassifier__reg": loguniform(1e-6, 1e-1)},
        n_iter=8, cv=ShuffleSplit(n_splits=1, test_size=0.2, random_state=0), random_state=0,
    ).fit(s.X_train, s.y_train)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and len(set(scores)) > 1  # every candidate scored, and they differ
    assert search.best_score_ == scores.max() and search.best_score_ > 0.9
    best = search.best_params_
    assert 1e-4 <= best["linearclassifier__lr"] <= 1e-1 and 1e-6 <= best["linearclassifier__reg"] <= 1e-1
    assert search.score(s.X_test, s.y_test) > 0.9


def test_cross_val_score_and_grid_search_give_finite_scores(digits):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y, _, _ = digits
    scores = cross_val_score(gn.MLPClassifier(hidden=(32,), epochs=30, device="cpu", random_state=0), X, y, cv=3)
    assert np.isfinite(scores).all() and scores.min() > 0.9
    grid = GridSearchCV(gn.LinearClassifier(device="cpu", random_state=0), {"loss": ["softmax", "svm"]}, cv=3)
    results = grid.fit(X, y).cv_results_
    assert np.isfinite(results["mean_test_score"]).all() and results["mean_test_score"].min() > 0.9
