"""kNN on a Dask cluster on this machine: the same query on 1 and 2 worker processes beside one process without Dask.

Q=500 queries, N=20000 training rows in 4 chunks, D=256, float32, k=5, L2 and L1. One worker gets both
cores (2 threads for its BLAS), two workers one core each. What the figures show at this size: the
distributed path's overhead (shipping the queries, merging the chunks' answers) and how it scales.
Run: pytest bench/test_dask_knn.py --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunn as gn

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def clusters():
    made = {}
    for workers in (1, 2):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=2 // workers, processes=True,
                                           dashboard_address=None)
        made[workers] = (cluster, distributed.Client(cluster, set_as_default=False))
    yield {w: client for w, (_, client) in made.items()}
    for cluster, client in made.values():
        client.close()
        cluster.close()


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_knn_on_a_cluster(benchmark, interleaved, clusters, metric):
    rng = np.random.default_rng(0)
    X, Xq = rng.standard_normal((20000, 256)).astype(np.float32), rng.standard_normal((500, 256)).astype(np.float32)
    y = rng.integers(0, 10, 20000)
    one = gn.KNeighborsClassifier(k=5, metric=metric, device="cpu").fit(X, y)
    candidates = {"gpunn, one process": lambda: one.kneighbors(Xq)}
    expected = one.kneighbors(Xq)[1]
    for workers, client in clusters.items():
        with client.as_current():
            knn = gn.KNeighborsClassifier(k=5, metric=metric, device="cpu").fit(da.from_array(X, chunks=(5000, 256)), y)
            np.testing.assert_array_equal(knn.kneighbors(Xq)[1], expected)

        def run(knn=knn, client=client):
            with client.as_current():
                return knn.kneighbors(Xq)

        candidates[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = run
    benchmark.group = f"kNN {metric} search, Q=500 N=20000 D=256 k=5"
    interleaved(candidates, primary="gpunn, one process", rounds=7, block=2)
