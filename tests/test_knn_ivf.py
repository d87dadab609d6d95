"""The IVF index, its k-means and recall@k: exact at n_probe = n_lists, seeded, accurate on clustered data."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans

from gpunn import to_numpy
from gpunn.kernels import cluster_sums, knn_ivf
from gpunn.knn import IVFIndex, default_n_lists, drop_self, exact, index_recall, kmeans, recall_at_k, tune_n_probe
from gpunn.knn.auto_probe import check_target, held_out
from gpunn.knn.kmeans import assign


def tied(rng, shape, dtype):
    return rng.integers(-3, 4, shape).astype(dtype)


def clustered(rng, n, queries, d=16, clusters=40, spread=0.3):
    centres = rng.standard_normal((clusters, d)) * 3
    X = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
    Q = centres[rng.integers(0, clusters, queries)] + spread * rng.standard_normal((queries, d))
    return X.astype(np.float32), Q.astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_probing_every_list_equals_exact_search(metric, dtype, rng):
    X, Q = tied(rng, (900, 5), dtype), tied(rng, (70, 5), dtype)
    index = IVFIndex(n_lists=17, metric=metric, random_state=1).fit(X)
    for k in (1, 9):
        d, i = index.search(Q, k, n_probe=17)
        ed, ei = exact.kneighbors(Q, X, k, metric, 1 << 30)
        np.testing.assert_array_equal(i, ei)
        np.testing.assert_array_equal(d, ed)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_a_few_probes_equal_the_scan_reference(metric, rng):
    X, Q = tied(rng, (500, 4), np.float64), tied(rng, (25, 4), np.float64)
    index = IVFIndex(n_lists=9, metric=metric, random_state=0).fit(X)
    probes = index.probes(Q, 3)
    labels = assign(X, index.centroids_, metric, 1 << 30)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=9))])
    ref_d, ref_i = knn_ivf.reference(Q, X[order], order, starts, probes, 6, metric)
    d, i = index.search(Q, 6, 3)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-12)
    np.testing.assert_array_equal(np.sort(index.list_sizes_), np.sort(np.bincount(labels, minlength=9)))


def test_recall_at_the_defaults_on_clustered_data(rng):
    X, Q = clustered(rng, 20_000, 500)
    index = IVFIndex(random_state=0).fit(X)
    assert index.n_lists_ == default_n_lists(20_000) == 141
    assert index_recall(index, X, Q, 10, n_probe=8, n_queries=500, random_state=0) >= 0.95


def test_the_same_random_state_gives_the_same_index(rng):
    X, Q = clustered(rng, 3000, 50)
    a, b = IVFIndex(n_lists=30, random_state=5).fit(X), IVFIndex(n_lists=30, random_state=5).fit(X)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    np.testing.assert_array_equal(a.list_sizes_, b.list_sizes_)
    for x, y in zip(a.search(Q, 5, 3), b.search(Q, 5, 3)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(IVFIndex(n_lists=30, random_state=6).fit(X).centroids_, a.centroids_)


def test_kmeans_follows_lloyds_iterations_as_scikit_learn_does(rng):
    X, _ = clustered(rng, 3000, 1, d=8, clusters=12, spread=1.5)
    X = X.astype(np.float64)
    init = X[rng.choice(3000, 12, replace=False)]
    ours = kmeans(X, 12, n_iter=8, max_points_per_cluster=10**6, init=init)
    ref = KMeans(12, init=init, n_init=1, max_iter=8, tol=0, algorithm="lloyd").fit(X)
    labels = assign(X, ours, "l2", 1 << 30)
    if len(np.unique(labels)) == 12:  # scikit-learn relocates empty clusters its own way
        np.testing.assert_allclose(ours, ref.cluster_centers_, rtol=1e-9, atol=1e-9)
    inertia = float(((X - ours[labels]) ** 2).sum())
    assert inertia <= 1.0001 * ref.inertia_


def test_l1_kmeans_moves_centroids_to_medians(rng):
    X = rng.standard_normal((300, 3)).astype(np.float64)
    c = kmeans(X, 1, metric="l1", n_iter=1, max_points_per_cluster=300, random_state=0)
    np.testing.assert_array_equal(c[0], np.median(X, axis=0))


def test_recall_at_k_counts_the_shared_rows():
    found = np.array([[1, 2, 3], [4, 5, 6]])
    expected = np.array([[3, 2, 9], [7, 8, 9]])
    assert recall_at_k(found, expected) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="found and expected must be"):
        recall_at_k(found[:1], expected)


@pytest.mark.parametrize("call,match", [
    (lambda X: IVFIndex(n_lists=51).fit(X), "n_lists=51 is more than the number of training rows, n_samples=50"),
    (lambda X: IVFIndex(n_lists=5).fit(X).search(X, 3, 6), "n_probe=6 is more than n_lists=5"),
    (lambda X: IVFIndex(n_lists=5, metric="cosine").fit(X), "unknown metric 'cosine'"),
    (lambda X: IVFIndex(n_lists=5).fit(X).search(X.astype(np.float64), 3, 1), "must have the index's dtype"),
    (lambda X: IVFIndex(n_lists=5).fit(np.where(X > 1, np.nan, X)), "X contains NaN"),
    (lambda X: IVFIndex(n_lists=5).fit(X).search(np.where(X > 1, np.inf, X), 3, 1), "Xq contains NaN or infinite"),
    (lambda X: IVFIndex(n_lists=5).fit(X).search(X[:, :2].copy(), 3, 1), "Xq has 2 features, the index 3"),
    (lambda X: IVFIndex(n_lists=5).fit(X.astype(int)), "X must be a non-empty 2-D float32 or float64 array"),
    (lambda X: IVFIndex().fit(X, centroids=X[:4, :2].copy()), r"centroids must be \(n_lists, 3\) float32"),
    (lambda X: IVFIndex(n_lists=5).fit(X).search(X, 51, 2), "k=51 is more than the 50 rows indexed"),
])
def test_bad_input(call, match, rng):
    X = rng.standard_normal((50, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        call(X)


def probe_reference(Q, centroids, sizes, n_probe, k):
    """float64 brute force: each query's lists nearest first, as many as n_probe or more until they hold k rows."""
    d = cdist(np.asarray(Q, np.float64), np.asarray(centroids, np.float64), "sqeuclidean")
    ranked = np.argsort(d, axis=1, kind="stable")
    need = np.maximum(n_probe, (np.cumsum(sizes[ranked], axis=1) < k).sum(axis=1) + 1)
    return [row[:m].tolist() for row, m in zip(ranked, need)]


def scan_reference(Q, X, labels, probes, k):
    """float64 brute force over the rows of each query's probed lists: (distances, rows), ties by the lower row."""
    out_d, out_i = [], []
    for q, lists in zip(Q, probes):
        rows = np.flatnonzero(np.isin(labels, lists))
        d = np.sqrt(((X[rows] - q) ** 2).sum(axis=1))
        order = np.lexsort((rows, d))[:k]
        out_d.append(d[order])
        out_i.append(rows[order])
    return np.array(out_d), np.array(out_i)


def outliers(rng, n=200, d=4, outlying=3):
    """n rows around the origin and ``outlying`` rows far from them, shuffled in."""
    X = np.concatenate([rng.standard_normal((n, d)), 50 + rng.standard_normal((outlying, d))])
    return X[rng.permutation(len(X))]


@pytest.mark.parametrize("n_probe", [1, 2])
def test_probe_lists_go_on_until_they_hold_k_rows(n_probe, rng):
    X = outliers(rng, 300).astype(np.float32)
    centroids = np.concatenate([X[X[:, 0] > 25].mean(axis=0, keepdims=True), X[X[:, 0] < 25][:6]]).astype(np.float32)
    index = IVFIndex(metric="l2").fit(X, centroids=centroids)
    assert index.list_sizes_[0] == 3  # the outliers' own list
    Q = np.concatenate([50 + rng.standard_normal((4, 4)), rng.standard_normal((30, 4))]).astype(np.float32)
    for k in (1, 10, 150, 303):
        got = index.probes(Q, n_probe, k)
        expected = probe_reference(Q, centroids, index.list_sizes_, n_probe, k)
        assert got.shape[1] == max(map(len, expected))
        assert [row[row >= 0].tolist() for row in got] == expected, f"k={k}"


def test_an_outlier_query_is_answered_not_refused(device, rng):
    """3 outlying training rows, k = 10, n_probe = 1: the outliers' list holds 3 rows, the next lists the rest."""
    X = outliers(rng, 120 if device.type == "cpu" else 40)
    labels_of_rows = (X[:, 0] > 25).astype(np.int64)
    centroids = np.stack([X[labels_of_rows == 0].mean(axis=0), X[labels_of_rows == 1].mean(axis=0)])
    Q = np.concatenate([50 + rng.standard_normal((2, 4)), rng.standard_normal((1, 4))])
    X_dev, C_dev, Q_dev = (device.asarray(np.ascontiguousarray(a)) for a in (X, centroids, Q))
    index = IVFIndex().fit(X_dev, centroids=C_dev)
    assert sorted(index.list_sizes_.tolist()) == [3, len(X) - 3]
    d, i = (to_numpy(a) for a in index.search(Q_dev, 10, n_probe=1))
    ref_d, ref_i = scan_reference(Q, X, labels_of_rows, probe_reference(Q, centroids, index.list_sizes_, 1, 10), 10)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-9)
    assert set(i[0, :3].tolist()) == set(np.flatnonzero(labels_of_rows).tolist())  # the 3 outliers first
    with pytest.raises(ValueError, match=f"k={len(X) + 1} is more than the {len(X)} rows indexed"):
        index.search(Q_dev, len(X) + 1, n_probe=1)


def test_k_means_own_list_for_outliers_and_every_query_answered(rng):
    """k-means itself gives the outliers a list of 3; k = 10 at n_probe = 1 then equals exact search (two lists)."""
    X = np.concatenate([np.zeros((3, 2)), np.full((40, 2), 10.0)]).astype(np.float32) + \
        rng.standard_normal((43, 2)).astype(np.float32) * 0.1
    index = IVFIndex(n_lists=2, random_state=0).fit(X)
    assert sorted(index.list_sizes_.tolist()) == [3, 40]
    Q = np.array([[0.0, 0.0], [10.0, 10.0]], np.float32)
    d, i = index.search(Q, 10, 1)
    ed, ei = exact.kneighbors(Q, X, 10, "l2", 1 << 30)
    np.testing.assert_array_equal(i[0], ei[0])  # the outliers' query probed both lists
    np.testing.assert_allclose(d[0], ed[0], rtol=1e-6)


@pytest.mark.parametrize("target", [0.8, 0.95, 1.0])
def test_auto_n_probe_is_the_smallest_that_reaches_the_target(target, rng):
    X, Q = clustered(rng, 4000, 300, d=8, clusters=30, spread=1.5)  # overlapping clusters: recall grows slowly
    index = IVFIndex(n_lists=40, random_state=0).fit(X)
    rows = held_out(len(X), 10, 300, random_state=1)
    truth = drop_self(*exact.kneighbors(X[rows], X, 11, "l2", 1 << 30), rows)[1]
    choice = tune_n_probe(index, X[rows], rows, truth, X[truth.ravel()], 10, target)
    # every n_probe searched for real, each held-out row left out of its own answer
    recalls = [recall_at_k(drop_self(*index.search(X[rows], 11, p), rows)[1], truth) for p in range(1, 41)]
    reached = [p for p, r in enumerate(recalls, 1) if r >= target]
    assert choice.n_probe == (reached[0] if reached else 40) and choice.n_queries == 300
    assert choice.recall == recalls[choice.n_probe - 1]
    if target < 1.0:  # fresh queries from the same distribution reach it too, within sampling error
        fresh = recall_at_k(index.search(Q, 10, choice.n_probe)[1], exact.kneighbors(Q, X, 10, "l2", 1 << 30)[1])
        assert fresh >= target - 0.03


def test_drop_self_follows_scikit_learns_rule(rng):
    X = rng.integers(0, 3, (60, 2)).astype(np.float64)  # many duplicates: some rows are not in their own k + 1
    d, i = exact.kneighbors(X, X, 4, "l2", 1 << 30)
    got_d, got_i = drop_self(d, i, np.arange(60))
    for r in range(60):
        keep = [c for c in range(4) if i[r, c] != r] if r in i[r] else list(range(1, 4))
        np.testing.assert_array_equal(got_i[r], i[r, keep])
        np.testing.assert_array_equal(got_d[r], d[r, keep])
    assert (got_i != np.arange(60)[:, None]).all()


@pytest.mark.parametrize("call,err,match", [
    (lambda: check_target(0), ValueError, r"target_recall must be in \(0.0, 1.0\], got 0.0"),
    (lambda: check_target(1.5), ValueError, r"target_recall must be in \(0.0, 1.0\], got 1.5"),
    (lambda: check_target("high"), TypeError, "target_recall must be a real number"),
    (lambda: held_out(9, 3, 1000), ValueError, "n_probe='auto' measures recall@3 on held-out training rows"),
    (lambda: held_out(30, 30, 1000), ValueError, "it needs at least 31 rows, got n_samples=30"),
])
def test_auto_n_probe_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cluster_sums_equal_their_reference(dtype, rng):
    X, labels = rng.standard_normal((1001, 13)).astype(dtype), rng.integers(0, 7, 1001)
    labels[labels == 3] = 2  # an empty cluster sums to zeros
    got = cluster_sums.cluster_sums(X, labels, 7)
    np.testing.assert_allclose(got, cluster_sums.reference(X, labels, 7), rtol=100 * np.finfo(dtype).eps, atol=1e-4)
    assert (got[3] == 0).all()
    with pytest.raises(ValueError, match=r"labels must be int64 of shape \(1001,\)"):
        cluster_sums.cluster_sums(X, labels[:5], 7)
