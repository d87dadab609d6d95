import re
import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier as SklearnKNN
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gpunn as gn
from gpunn.data import load_digits
from gpunn.neighbors import cross_validate_k, pairwise_distances, parse_memory

SCIPY = {"l1": "cityblock", "l2": "euclidean", "sqeuclidean": "sqeuclidean"}
SKLEARN = {"l1": "manhattan", "l2": "euclidean"}


@pytest.mark.parametrize("metric", list(SCIPY))
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 33, 5), (64, 301, 130)])
def test_distances_match_scipy(metric, shape, device, rng):
    if device.type == "cuda" and shape[0] > 1:  # simulated barriers are slow: past one 64 x 64 tile is enough
        shape = (7, 70, 40)
    q, n, d = shape
    A, B = rng.standard_normal((q, d)), rng.standard_normal((n, d))
    got = gn.to_numpy(pairwise_distances(A, B, metric, device=device))
    assert got.shape == (q, n) and got.dtype == np.float32
    ref = cdist(A, B, SCIPY[metric])
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * max(1.0, ref.max()))
    exact = gn.to_numpy(pairwise_distances(A, B, metric, device=device, precision="float64"))
    np.testing.assert_allclose(exact, ref, rtol=1e-9, atol=1e-9 * max(1.0, ref.max()))


def test_l2_of_identical_rows_is_exactly_zero(rng):
    A = rng.standard_normal((5, 40)) * 100
    d = pairwise_distances(A, A, "l2", device="cpu")
    assert (np.diag(d) == 0).all() and (d >= 0).all()


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_kneighbors_match_argsort(metric, device, rng):
    q = 30 if device.type == "cpu" else 3  # a CUDA block per query, with barriers: slow when simulated
    X, Xq = rng.standard_normal((400, 12)), rng.standard_normal((q, 12))
    dist, idx = gn.KNeighborsClassifier(k=9, metric=metric, device=device).fit(X, rng.integers(0, 3, 400)).kneighbors(Xq)
    ref = cdist(Xq, X, SCIPY[metric])
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1)[:, :9])
    np.testing.assert_allclose(dist, np.sort(ref, axis=1)[:, :9], rtol=1e-5)


@pytest.mark.parametrize("limit", ["1GB", 3000])
def test_ties_go_to_the_lower_training_index_even_across_tiles(limit, rng):
    base = rng.standard_normal((6, 4))
    X = np.repeat(base, 5, axis=0)[rng.permutation(30)]  # every row appears 5 times
    knn = gn.KNeighborsClassifier(k=7, device="cpu", memory_limit=limit).fit(X, np.zeros(30, int) + np.arange(30) % 2)
    dist, idx = knn.kneighbors(base[:3])
    for q in range(3):
        twins = np.flatnonzero((X == base[q]).all(axis=1))
        np.testing.assert_array_equal(idx[q, :5], twins)  # the 5 exact copies, lowest index first
        assert (dist[q, :5] == 0).all()
        d_rest = cdist(base[q:q + 1], X)[0]
        expected = sorted(range(30), key=lambda j: (round(d_rest[j], 4), j))[:7]
        np.testing.assert_array_equal(idx[q], expected)


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_predictions_match_sklearn_brute_force(metric, weights, rng):
    X, y = rng.standard_normal((500, 16)), rng.integers(0, 5, 500)
    Xq = rng.standard_normal((120, 16))
    ours = gn.KNeighborsClassifier(k=6, metric=metric, weights=weights, device="cpu").fit(X, y)
    ref = SklearnKNN(6, weights=weights, algorithm="brute", metric=SKLEARN[metric]).fit(X, y)
    np.testing.assert_array_equal(ours.predict(Xq), ref.predict(Xq))
    np.testing.assert_allclose(ours.predict_proba(Xq), ref.predict_proba(Xq), rtol=1e-5, atol=1e-8)


def test_vote_rules(rng):
    X = np.array([[0.0], [1.0], [2.0], [10.0]])
    y = np.array([3, 1, 7, 3])
    knn = gn.KNeighborsClassifier(k=2, device="cpu").fit(X, y)
    assert knn.predict([[0.5]])[0] == 1  # labels 3 and 1 tie: the smaller label wins
    exact = gn.KNeighborsClassifier(k=3, weights="distance", device="cpu").fit(X, y)
    assert exact.predict([[2.0]])[0] == 7  # an exact match wins outright
    assert gn.KNeighborsClassifier(k=4, device="cpu").fit(X, y).score([[9.0]], [3]) == 1.0


def test_cross_validation_on_digits_matches_sklearn():
    X, y = load_digits(split=False)
    cv = cross_validate_k(X, y, ks=[1, 3], folds=5, metric="l2", device="cpu")
    for row, k in enumerate([1, 3]):
        ref = cross_val_score(SklearnKNN(k, algorithm="brute"), X, y, cv=KFold(5))
        np.testing.assert_allclose(cv.fold_accuracies[row], ref)
    assert cv.best_k in (1, 3) and cv.mean[0] > 0.95
    assert "<- best" in cv.table()


def test_peak_temporary_memory_stays_under_the_limit(rng):
    X, Xq = rng.standard_normal((3000, 32)).astype(np.float32), rng.standard_normal((200, 32)).astype(np.float32)
    y = rng.integers(0, 4, 3000)
    unbounded = gn.KNeighborsClassifier(k=10, device="cpu", memory_limit="1GB").fit(X, y).kneighbors(Xq)
    limit = 1_000_000  # the full 200 x 3000 distances alone take 2.4 MB, with selection about 20 MB
    knn = gn.KNeighborsClassifier(k=10, device="cpu", memory_limit=limit).fit(X, y)
    tracemalloc.start()
    try:
        bounded = knn.kneighbors(Xq)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak} bytes over the {limit}-byte limit"
    np.testing.assert_array_equal(bounded[1], unbounded[1])
    np.testing.assert_allclose(bounded[0], unbounded[0], rtol=1e-6)


@pytest.mark.parametrize("text,expected", [("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), ("1.5 gb", 15 * 10**8),
                                           ("100", 100), (4096, 4096)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    "call,err,match",
    [
        (lambda X, y: gn.KNeighborsClassifier(k=0).fit(X, y), ValueError, "k must be >= 1"),
        (lambda X, y: gn.KNeighborsClassifier(k=41).fit(X, y), ValueError,
         "k=41 is more than the number of training rows, n_samples=40"),
        (lambda X, y: gn.KNeighborsClassifier(metric="cosine").fit(X, y), ValueError, "unknown metric 'cosine'"),
        (lambda X, y: gn.KNeighborsClassifier(weights="rank").fit(X, y), ValueError, "unknown weights 'rank'"),
        (lambda X, y: gn.KNeighborsClassifier(memory_limit="lots").fit(X, y), ValueError, "memory_limit: cannot read"),
        (lambda X, y: gn.KNeighborsClassifier().fit(np.where(X > 1.5, np.inf, X), y), ValueError, "X contains NaN"),
        (lambda X, y: gn.KNeighborsClassifier().fit(X, y).predict(X[:, :3]), ValueError,
         "X has 3 features, but KNeighborsClassifier is expecting 4 features as input"),
        (lambda X, y: gn.KNeighborsClassifier().predict(X), NotFittedError, "not fitted yet"),
        (lambda X, y: gn.KNeighborsClassifier(precision="float16").fit(X, y), ValueError, "unknown precision"),
        (lambda X, y: cross_validate_k(X, np.eye(3)[y], ks=[1]), ValueError, "for one-hot rows use y.argmax"),
        (lambda X, y: gn.KNeighborsClassifier().fit(X, y).kneighbors(X, k=50), ValueError, "k=50 is more than"),
        (lambda X, y: cross_validate_k(X, y, ks=[1], folds=1), ValueError, "folds must be >= 2"),
        (lambda X, y: cross_validate_k(X, y, ks=[1], folds=41), ValueError, "folds=41 is more than the 40 rows"),
        (lambda X, y: cross_validate_k(X, y, ks=[33], folds=5), ValueError, "k=33 is more than the 32 training rows"),
        (lambda X, y: pairwise_distances(X, X[:, :2]), ValueError, "A has 4 features, B has 2"),
    ],
)
def test_bad_input(call, err, match, rng):
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    with pytest.raises(err, match=match):
        call(X, y)


def test_cli_knn_prints_the_table_and_test_accuracy(capsys):
    from gpunn.cli import main

    assert main(["knn", "--ks", "1", "3", "5", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "<- best" in out
    assert float(out.split("test accuracy at k=")[1].split(": ")[1].split()[0]) >= 0.97


def test_a_limit_beyond_the_device_falls_back_to_smaller_tiles(rng, monkeypatch):
    X, Xq, y = rng.standard_normal((600, 8)), rng.standard_normal((90, 8)), rng.integers(0, 3, 600)
    expected = gn.KNeighborsClassifier(k=4, device="cpu").fit(X, y).kneighbors(Xq)
    monkeypatch.setattr(gn.Device, "free_memory", lambda self: 20_000)  # a nearly full device
    knn = gn.KNeighborsClassifier(k=4, device="cpu", memory_limit="1TB").fit(X, y)
    assert knn._settings()[1] == 10_000  # half of what is free, not the terabyte asked for
    with pytest.warns(UserWarning, match=r"memory_limit of 10000 bytes allows only (\d+) x (\d+) distances per tile: "
                                         r"this query runs (\d+) tiles") as caught:
        got = knn.kneighbors(Xq)
    queries, rows, tiles = map(int, re.search(r"only (\d+) x (\d+) .* runs (\d+) tiles", str(caught[0].message)).groups())
    assert queries * rows * 4 < 10_000 and tiles == -(-90 // queries) * -(-600 // rows) > 1
    np.testing.assert_array_equal(got[1], expected[1])


def test_grid_search_over_a_pipeline_matches_scikit_learns_knn():
    X, y = load_digits(split=False)
    X, y = X[:600], y[:600]
    weights = ["uniform", "distance"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failing candidate is a warning (and a NaN score) in GridSearchCV
        ours = GridSearchCV(make_pipeline(StandardScaler(), gn.KNeighborsClassifier(device="cpu")),
                            {"kneighborsclassifier__k": [1, 3, 7], "kneighborsclassifier__weights": weights},
                            cv=4).fit(X, y)
    ref = GridSearchCV(make_pipeline(StandardScaler(), SklearnKNN(algorithm="brute")),
                       {"kneighborsclassifier__n_neighbors": [1, 3, 7],
                        "kneighborsclassifier__weights": weights}, cv=4).fit(X, y)
    scores = ours.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and scores.min() > 0.85
    np.testing.assert_allclose(scores, ref.cv_results_["mean_test_score"], atol=2 / 150)  # a near-tie or two may flip
    assert ours.best_params_["kneighborsclassifier__k"] == ref.best_params_["kneighborsclassifier__n_neighbors"]
    assert ours.score(X, y) == ref.score(X, y)


def test_string_labels_and_kneighbors_in_the_input_type(rng):
    X = rng.standard_normal((60, 3))
    y = np.where(X[:, 0] > 0, "right", "left")
    knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X.tolist(), list(y))
    np.testing.assert_array_equal(knn.classes_, ["left", "right"])
    assert knn.predict(X).dtype == y.dtype
    np.testing.assert_array_equal(knn.predict(X), SklearnKNN(3, algorithm="brute").fit(X, y).predict(X))
    d, i = knn.kneighbors(X[:4])
    assert isinstance(d, np.ndarray) and d.dtype == np.float64 and i.dtype == np.int64
    np.testing.assert_array_equal(i[:, 0], np.arange(4))  # each training row is its own nearest neighbour


def test_cross_validation_shuffles_with_scikit_learns_kfold(rng):
    X, y = rng.standard_normal((90, 5)), rng.integers(0, 3, 90)
    cv = cross_validate_k(X, y, ks=[1, 5], folds=3, shuffle=True, seed=7, device="cpu")
    for row, k in enumerate([1, 5]):
        ref = cross_val_score(SklearnKNN(k, algorithm="brute"), X, y, cv=KFold(3, shuffle=True, random_state=7))
        np.testing.assert_allclose(cv.fold_accuracies[row], ref)


# --------------------------------------------------------------------------- approximate search: algorithm="ivf"


def blobs(rng, n, queries, d=12, clusters=20):
    centres = rng.standard_normal((clusters, d)) * 4
    pick = rng.integers(0, clusters, n + queries)
    X = centres[pick] + rng.standard_normal((n + queries, d)) * 0.5
    return X[:n], pick[:n] % 3, X[n:]


def test_ivf_probing_every_list_answers_as_brute_force(rng):
    X = rng.integers(-3, 4, (400, 5)).astype(float)  # ties everywhere
    y, Xq = rng.integers(0, 3, 400), rng.integers(-3, 4, (60, 5)).astype(float)
    for metric in ("l1", "l2"):
        brute = gn.KNeighborsClassifier(k=7, metric=metric, device="cpu").fit(X, y)
        ivf = gn.KNeighborsClassifier(k=7, metric=metric, device="cpu", algorithm="ivf", n_lists=12, n_probe=12,
                                      random_state=0).fit(X, y)
        assert ivf.n_lists_ == 12 and ivf.index_.n_lists_ == 12
        for a, b in zip(ivf.kneighbors(Xq), brute.kneighbors(Xq)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ivf.predict(Xq), brute.predict(Xq))
        np.testing.assert_array_equal(ivf.predict_proba(Xq), brute.predict_proba(Xq))


def test_ivf_recall_grows_with_n_probe_and_brute_force_has_all(rng):
    X, y, Xq = blobs(rng, 5000, 300)
    knn = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", random_state=0).fit(X, y)
    assert knn.n_lists_ == 71  # about sqrt(5000)
    assert knn.recall_at_k(Xq, n_queries=300, random_state=0) >= 0.95  # the defaults: n_probe=8
    knn = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", n_lists=30, random_state=0).fit(X, y)
    recalls = []
    for n_probe in (2, 8, 30):  # lists of about 170 rows: two hold the 10 neighbours asked for
        knn.set_params(n_probe=n_probe)  # n_probe takes effect at query time
        recalls.append(knn.recall_at_k(Xq, n_queries=300, random_state=0))
    assert recalls[0] <= recalls[1] <= recalls[2] == 1.0 and recalls[0] < 1.0
    brute = gn.KNeighborsClassifier(k=10, device="cpu").fit(X, y)
    assert brute.recall_at_k(Xq, n_queries=50) == 1.0


def test_ivf_follows_scikit_learns_conventions(rng):
    import pickle

    from sklearn.base import clone

    X, y, Xq = blobs(rng, 1200, 100)
    knn = gn.KNeighborsClassifier(k=3, device="cpu", algorithm="ivf", n_lists=20, n_probe=4, random_state=3)
    params = knn.get_params()
    assert {k: params[k] for k in ("algorithm", "n_lists", "n_probe", "random_state")} == \
        {"algorithm": "ivf", "n_lists": 20, "n_probe": 4, "random_state": 3}
    twin = clone(knn).fit(X, y)
    knn.fit(X, y)
    np.testing.assert_array_equal(twin.index_.centroids_, knn.index_.centroids_)  # same seed, same index
    again = pickle.loads(pickle.dumps(knn))
    np.testing.assert_array_equal(again.predict(Xq), knn.predict(Xq))
    np.testing.assert_array_equal(again.kneighbors(Xq)[1], knn.kneighbors(Xq)[1])
    search = GridSearchCV(gn.KNeighborsClassifier(k=3, device="cpu", algorithm="ivf", n_lists=10, random_state=0),
                          {"n_probe": [1, 3, 10]}, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and scores[2] >= scores[0] - 0.02


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda X, y: gn.KNeighborsClassifier(algorithm="kdtree").fit(X, y), "unknown algorithm 'kdtree'; expected one "
         "of 'brute', 'ivf'"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=4, n_probe=5).fit(X, y),
         "n_probe=5 is more than n_lists=4: a query cannot probe more lists than the index has"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=41).fit(X, y),
         "n_lists=41 is more than the number of training rows, n_samples=40"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_probe=0).fit(X, y), "n_probe must be >= 1, got 0"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=0).fit(X, y), "n_lists must be >= 1, got 0"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=4, n_probe=2).fit(np.where(X > 1.5, np.nan, X),
                                                                                         y), "X contains NaN"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=4, n_probe=2).fit(X, y).predict(
            np.where(X > 1.5, np.nan, X)), "X contains NaN"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_lists=4, n_probe=2).fit(X, y).set_params(
            n_probe=5).predict(X), "n_probe=5 is more than n_lists=4"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_probe="fast").fit(X, y),
         "unknown n_probe 'fast'; expected one of 'auto'"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_probe="auto", target_recall=0).fit(X, y),
         r"target_recall must be in \(0.0, 1.0\], got 0.0"),
        (lambda X, y: gn.KNeighborsClassifier(algorithm="ivf", n_probe="auto").fit(X[:8], y[:8]),
         "n_probe='auto' measures recall@5 on held-out training rows"),
        (lambda X, y: gn.KNeighborsClassifier(k=40).fit(X, y).kneighbors(),
         "k=40 is more than the number of training rows besides the query row, n_samples=40"),
        (lambda X, y: gn.KNeighborsClassifier().fit(X, y).kneighbors_graph(mode="weights"), "unknown mode 'weights'"),
    ],
)
def test_ivf_bad_input(call, match, rng):
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    with pytest.raises(ValueError, match=match):
        call(X, y)


def test_ivf_answers_a_query_beyond_its_probed_rows_and_a_failed_fit_changes_nothing(rng):
    """3 outlying training rows, k = 10, n_probe = 1: the outliers' list is not enough, the next one is probed too."""
    X = np.concatenate([rng.standard_normal((3, 2)) * 0.1, 10 + rng.standard_normal((40, 2))])
    y = np.arange(43) % 2
    knn = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", n_lists=2, n_probe=1, random_state=0).fit(X, y)
    assert sorted(knn.index_.list_sizes_.tolist()) == [3, 40]
    brute = gn.KNeighborsClassifier(k=10, device="cpu").fit(X, y)
    for a, b in zip(knn.kneighbors([[0.0, 0.0]]), brute.kneighbors([[0.0, 0.0]])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(knn.predict(X), brute.predict(X))  # never refused, whatever the query
    before = dict(knn.__dict__)
    for bad, match in ((dict(n_lists=50), "n_lists=50 is more than the number of training rows, n_samples=43"),
                       (dict(n_probe="auto", target_recall=1.5), r"target_recall must be in \(0.0, 1.0\]"),
                       (dict(n_probe="auto", k=43), "it needs at least 44 rows, got n_samples=43")):
        with pytest.raises(ValueError, match=match):
            knn.set_params(**bad).fit(X, y)
        knn.set_params(n_lists=2, n_probe=1, target_recall=0.95, k=10)
        assert knn.__dict__.keys() == before.keys() and all(knn.__dict__[k] is v for k, v in before.items()
                                                            if k not in ("n_lists", "n_probe", "target_recall", "k"))


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_kneighbors_of_the_training_rows_match_scikit_learn(metric, rng):
    X, y = rng.standard_normal((300, 6)), rng.integers(0, 3, 300)
    ours = gn.KNeighborsClassifier(k=5, metric=metric, device="cpu").fit(X, y)
    ref = SklearnKNN(5, algorithm="brute", metric=SKLEARN[metric]).fit(X, y)
    d, i = ours.kneighbors()
    ref_d, ref_i = ref.kneighbors()
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-5)
    np.testing.assert_array_equal(ours.kneighbors(k=3, return_distance=False), ref.kneighbors(n_neighbors=3)[1])
    for mode in ("connectivity", "distance"):
        for queries in (None, rng.standard_normal((40, 6))):
            got = ours.kneighbors_graph(queries, mode=mode)
            expected = ref.kneighbors_graph(queries, mode=mode)
            assert got.shape == expected.shape and got.format == "csr" and got.dtype == np.float64
            np.testing.assert_array_equal(got.indices, expected.indices)
            np.testing.assert_array_equal(got.indptr, expected.indptr)
            np.testing.assert_allclose(got.data, expected.data, rtol=1e-5)


def test_kneighbors_of_the_training_rows_with_duplicates(device, rng):
    """Ties by the lower row; a row with k + 1 duplicates before it loses its first neighbour (scikit-learn's rule)."""
    X = rng.integers(0, 3, (40 if device.type == "cpu" else 12, 2)).astype(np.float64)
    n = len(X)
    knn = gn.KNeighborsClassifier(k=3, device=device, precision="float64").fit(device.asarray(X), np.arange(n) % 2)
    d, i = (gn.to_numpy(a) for a in knn.kneighbors())
    full = cdist(X, X)
    for r in range(n):
        order = sorted(range(n), key=lambda j: (full[r, j], j))[:4]  # the float64 reference, the row included
        expected = [j for j in order if j != r] if r in order else order[1:]
        np.testing.assert_array_equal(i[r], expected)
        np.testing.assert_allclose(d[r], full[r, expected], atol=1e-12)


def test_ivf_auto_n_probe_reaches_its_target_on_held_out_queries(rng):
    X, y, Xq = blobs(rng, 6000, 400, clusters=60)
    knn = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", n_probe="auto", target_recall=0.9,
                                  random_state=0).fit(X, y)
    assert knn.n_probe_recall_ >= 0.9 and 1 <= knn.n_probe_ <= knn.n_lists_
    assert knn.recall_at_k(Xq, n_queries=400) >= 0.9 - 0.03  # fresh queries: within the sampling error
    lower = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", n_probe=max(1, knn.n_probe_ - 1),
                                    random_state=0).fit(X, y)
    assert knn.n_probe_ == 1 or lower.n_probe_ < knn.n_probe_
    fixed = gn.KNeighborsClassifier(k=10, device="cpu", algorithm="ivf", n_probe=3, random_state=0).fit(X, y)
    assert fixed.n_probe_ == 3 and fixed.n_probe_recall_ is None
    brute = gn.KNeighborsClassifier(k=10, device="cpu").fit(X, y)
    assert brute.n_probe_ is None and brute.index_ is None
