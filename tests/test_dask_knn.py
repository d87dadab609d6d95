"""kNN on a real Dask cluster (a LocalCluster of 2 worker processes) equals one process, ties included.

On GPUs too: each worker searches its chunks on its (real, or simulated: tests/simulated_gpu) GPU.
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import SIMULATED

import gpunn as gn

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


def _cluster(**worker):
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       worker_dashboard_address=None, **worker)
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def client():
    cluster, c = _cluster()
    with c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def gpu_client():
    """A cluster whose workers have GPUs: the simulated GPU, installed in each worker before any task, where
    this machine has no real one."""
    preload = [str(Path(__file__).parent / "simulated_gpu" / "dask_worker.py")] if SIMULATED else []
    # Dask's profiler samples every thread's stack each 10 ms: a simulated kernel with barriers runs a
    # Python thread per CUDA thread, and sampling them made the L1 search 15 times slower.
    with dask.config.set({"distributed.worker.profile.enabled": not SIMULATED}):
        cluster, c = _cluster(preload=preload)
    with c:
        yield c
    cluster.close()


def tied_data(rng, n=203, d=6, classes=4):
    """Small integers, many repeated rows: distances are exact, and ties between rows are everywhere."""
    base = rng.integers(-3, 4, (n // 3, d))
    X = base[rng.integers(0, len(base), n)].astype(np.float32)
    y = rng.integers(0, classes, n)
    return X, y


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_the_cluster_answers_exactly_as_one_process(client, metric, weights, rng):
    X, y = tied_data(rng)
    Xq = tied_data(rng, n=37)[0]
    one = gn.KNeighborsClassifier(k=9, metric=metric, weights=weights, device="cpu").fit(X, y)
    chunks = (50, 3, 70, 80)  # uneven, and one smaller than k
    knn = gn.KNeighborsClassifier(k=9, metric=metric, weights=weights, device="cpu")
    knn.fit(da.from_array(X, chunks=(chunks, 6)), da.from_array(y, chunks=(chunks,)))
    for queries in (Xq, da.from_array(Xq, chunks=(10, 6))):
        d, i = knn.kneighbors(queries)
        d1, i1 = one.kneighbors(Xq)
        np.testing.assert_array_equal(i, i1)
        np.testing.assert_array_equal(d, d1)
        np.testing.assert_array_equal(knn.predict(queries), one.predict(Xq))
        np.testing.assert_array_equal(knn.predict_proba(queries), one.predict_proba(Xq))
    labels = rng.integers(0, 4, 37)
    assert knn.score(Xq, labels) == one.score(Xq, labels)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_workers_search_on_their_gpu_as_one_cpu_process(gpu_client, gpu, metric, rng):
    X, y = tied_data(rng)
    Xq = tied_data(rng, n=7)[0]  # few queries: a simulated GPU runs a block of Python threads per query
    one = gn.KNeighborsClassifier(k=9, metric=metric, device="cpu").fit(X, y)
    chunks = (50, 3, 70, 80)
    knn = gn.KNeighborsClassifier(k=9, metric=metric, device=str(gpu))  # resolved on each worker
    knn.fit(da.from_array(X, chunks=(chunks, 6)), da.from_array(y, chunks=(chunks,)))
    d, i = knn.kneighbors(da.from_array(Xq, chunks=(4, 6)))
    d1, i1 = one.kneighbors(Xq)
    np.testing.assert_array_equal(i, i1)  # small integers: the distances are exact in float32 on any device
    np.testing.assert_array_equal(d, d1)
    np.testing.assert_array_equal(knn.predict(Xq), one.predict(Xq))


def clustered_with_outliers(rng, n=1500, d=6):
    """Overlapping clusters, and 3 outlying rows that k-means gives a list of their own: a query near them needs more
    lists than n_probe = 1 to find k rows."""
    centres = rng.standard_normal((12, d)) * 2
    X = centres[rng.integers(0, 12, n)] + rng.standard_normal((n, d))
    X[rng.choice(n, 3, replace=False)] = 40 + rng.standard_normal((3, d))
    return X.astype(np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_ivf_on_the_cluster_equals_one_process(client, metric, rng):
    X, y = clustered_with_outliers(rng)
    Xq = np.concatenate([rng.standard_normal((40, 6)) * 2, 40 + rng.standard_normal((2, 6))]).astype(np.float32)
    chunks = (400, 7, 600, 493)
    settings = dict(k=10, metric=metric, device="cpu", algorithm="ivf", n_lists=25, random_state=4)
    one = gn.KNeighborsClassifier(n_probe=1, **settings).fit(X, y)
    dist = gn.KNeighborsClassifier(n_probe=1, **settings).fit(da.from_array(X, chunks=(chunks, 6)),
                                                            da.from_array(y, chunks=(chunks,)))
    # the same sample of rows trained the same centroids: every row is in the same list
    np.testing.assert_array_equal(dist.index_.centroids_, one.index_.centroids_)
    np.testing.assert_array_equal(dist.index_.list_sizes_, one.index_.list_sizes_)
    beyond = int(one.index_.list_sizes_.min()) + 5  # the smallest list's own rows need more lists than theirs
    for n_probe in (1, 3, 25):
        one.set_params(n_probe=n_probe)
        dist.set_params(n_probe=n_probe)
        for queries in (Xq, da.from_array(Xq, chunks=(15, 6)), None):
            for k in (10, beyond):
                for a, b in zip(dist.kneighbors(queries, k), one.kneighbors(None if queries is None else Xq, k)):
                    np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(dist.predict(Xq), one.predict(Xq))
    np.testing.assert_array_equal(dist.kneighbors(Xq)[1], gn.KNeighborsClassifier(k=10, metric=metric, device="cpu")
                                  .fit(X, y).kneighbors(Xq)[1])  # n_probe = n_lists: exact search, ties included
    assert dist.recall_at_k(Xq) == 1.0


def test_ivf_auto_n_probe_on_the_cluster_equals_one_process(client, rng):
    X, y = clustered_with_outliers(rng, n=2000)
    settings = dict(k=5, device="cpu", algorithm="ivf", n_lists=30, n_probe="auto", target_recall=0.9, random_state=2)
    one = gn.KNeighborsClassifier(**settings).fit(X, y)
    dist = gn.KNeighborsClassifier(**settings).fit(da.from_array(X, chunks=(500, 6)), y)
    assert (dist.n_probe_, dist.n_probe_recall_) == (one.n_probe_, one.n_probe_recall_)
    assert dist.n_probe_recall_ >= 0.9


def test_ivf_index_given_centroids_on_the_cluster(client, rng):
    """The core, without the estimator: DaskIVFIndex with given centroids equals IVFIndex with them."""
    from gpunn.distributed.dask_ivf import DaskIVFIndex
    from gpunn.distributed.dask_knn import training_rows
    from gpunn.knn import IVFIndex

    X, y = clustered_with_outliers(rng, n=900)
    centroids = X[rng.choice(900, 20, replace=False)]
    Xd, _, offsets = training_rows(da.from_array(X, chunks=(200, 6)), y)
    index = DaskIVFIndex(metric="l2").fit(Xd, offsets, centroids=centroids)
    single = IVFIndex(metric="l2").fit(X, centroids=centroids)
    Xq = rng.standard_normal((30, 6)).astype(np.float32)
    for k, n_probe in ((1, 1), (10, 2), (50, 5)):
        for a, b in zip(index.search(Xq, k, n_probe), single.search(Xq, k, n_probe)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n_probe=21 is more than n_lists=20"):
        index.search(Xq, 3, 21)


def test_small_memory_limits_stream_the_queries_in_tiles(client, rng):
    X, y = tied_data(rng, n=300, d=8)
    Xq = tied_data(rng, n=120, d=8)[0]
    expected = gn.KNeighborsClassifier(k=5, device="cpu").fit(X, y).kneighbors(Xq)
    knn = gn.KNeighborsClassifier(k=5, device="cpu", memory_limit=2000)  # 31 queries per tile, tiny blocks on workers
    knn.fit(da.from_array(X, chunks=(100, 8)), y)
    got = knn.kneighbors(Xq)  # (the workers warn, in their logs, that tiles this small are slow)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


def test_cross_validating_k_on_the_cluster_equals_one_process(client, rng):
    X, y = tied_data(rng, n=150)
    one = gn.neighbors.cross_validate_k(X, y, ks=[1, 3, 7], folds=3, metric="l1", device="cpu")
    dist = gn.neighbors.cross_validate_k(da.from_array(X, chunks=(40, 6)), da.from_array(y, chunks=(40,)),
                                         ks=[1, 3, 7], folds=3, metric="l1", device="cpu")
    np.testing.assert_array_equal(dist.fold_accuracies, one.fold_accuracies)
    assert dist.best_k == one.best_k


def test_bad_cluster_input_is_refused(client, rng):
    X, y = tied_data(rng)
    knn = gn.KNeighborsClassifier(k=3, device="cpu")
    with pytest.raises(ValueError, match=r"X and y must be chunked alike along the rows: X has row chunks \(100, 100, 3\)"):
        knn.fit(da.from_array(X, chunks=(100, 6)), da.from_array(y, chunks=(50,)))
    assert not hasattr(knn, "X_")  # nothing fitted
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        knn.fit(da.from_array(bad, chunks=(100, 6)), y)
    knn.fit(da.from_array(X, chunks=(100, 6)), y)
    with pytest.raises(ValueError, match="X has 5 features, but the classifier was fitted with 6"):
        knn.kneighbors(X[:4, :5])
    with pytest.raises(ValueError, match="y must have one label per row of X"):
        gn.KNeighborsClassifier(device="cpu").fit(da.from_array(X, chunks=(100, 6)), y[:-1])
