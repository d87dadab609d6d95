"""The IVF index, its k-means and recall@k: exact at n_probe = n_lists, seeded, accurate on clustered data."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from gpunn.kernels import cluster_sums, knn_ivf
from gpunn.knn import IVFIndex, default_n_lists, exact, index_recall, kmeans, recall_at_k
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
])
def test_bad_input(call, match, rng):
    X = rng.standard_normal((50, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        call(X)


def test_k_beyond_the_rows_of_the_probed_lists_is_refused(rng):
    X = np.concatenate([np.zeros((3, 2)), np.full((40, 2), 10.0)]).astype(np.float32)
    index = IVFIndex(n_lists=2, random_state=0).fit(X)
    assert sorted(index.list_sizes_.tolist()) == [3, 40]
    with pytest.raises(ValueError, match=r"k=5 is more than the 3 rows in the n_probe=1 lists probed for query 0 "
                                          r"\(1 of 2 queries fall short\): raise n_probe or lower k"):
        index.search(np.array([[0.0, 0.0], [10.0, 10.0]], np.float32), 5, 1)
    assert index.search(np.array([[0.0, 0.0]], np.float32), 5, 2)[1].shape == (1, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cluster_sums_equal_their_reference(dtype, rng):
    X, labels = rng.standard_normal((1001, 13)).astype(dtype), rng.integers(0, 7, 1001)
    labels[labels == 3] = 2  # an empty cluster sums to zeros
    got = cluster_sums.cluster_sums(X, labels, 7)
    np.testing.assert_allclose(got, cluster_sums.reference(X, labels, 7), rtol=100 * np.finfo(dtype).eps, atol=1e-4)
    assert (got[3] == 0).all()
    with pytest.raises(ValueError, match=r"labels must be int64 of shape \(1001,\)"):
        cluster_sums.cluster_sums(X, labels[:5], 7)
