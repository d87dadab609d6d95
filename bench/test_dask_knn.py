"""kNN on a Dask cluster on this machine: the same query on 1 and 2 worker processes beside one process without Dask.

Q=500 queries, N=20000 training rows in 4 chunks, D=256, float32, k=5, L2 and L1, exact; and the same
with ``algorithm="ivf"`` (n_lists=141, n_probe=8, L2), whose lists stay on the workers. One worker gets
both cores (2 threads for its BLAS), two workers one core each. What the figures show at this size: the
distributed path's overhead (shipping the queries, merging the chunks' answers) and how it scales.
``extra_info["peers"]`` gives each candidate's threads in all and NumPy's BLAS kernel, ``["data"]`` the data.
Run: pytest bench/test_dask_knn.py --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunn as gn

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
DATA = "standard normal float32, Q=500 queries, N=20,000 rows in 4 chunks of 5,000 x D=256, labels 0-9, seed 0"


def numpy_blas() -> str:
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i["internal_api"] == "openblas" and "numpy" in i["filepath"]]
    return f"openblas {found[0].get('architecture')}" if found else "none"


def peers(names) -> dict:
    """Every candidate runs 2 threads in all: one process's 2, one worker's 2, or two workers' 1 each."""
    return {name: {"threads": 2, "blas": numpy_blas()} for name in names}


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


@pytest.mark.parametrize("metric,algorithm", [("l2", "brute"), ("l1", "brute"), ("l2", "ivf")])
def test_knn_on_a_cluster(benchmark, interleaved, clusters, metric, algorithm):
    rng = np.random.default_rng(0)
    X, Xq = rng.standard_normal((20000, 256)).astype(np.float32), rng.standard_normal((500, 256)).astype(np.float32)
    y = rng.integers(0, 10, 20000)
    settings = dict(k=5, metric=metric, device="cpu", algorithm=algorithm, n_probe=8, random_state=0)
    one = gn.KNeighborsClassifier(**settings).fit(X, y)
    candidates = {"gpunn, one process": lambda: one.kneighbors(Xq)}
    expected = one.kneighbors(Xq)[1]
    for workers, client in clusters.items():
        with client.as_current():
            knn = gn.KNeighborsClassifier(**settings).fit(da.from_array(X, chunks=(5000, 256)), y)
            np.testing.assert_array_equal(knn.kneighbors(Xq)[1], expected)  # the cluster answers as one process

        def run(knn=knn, client=client):
            with client.as_current():
                return knn.kneighbors(Xq)

        candidates[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = run
    benchmark.group = f"kNN {metric} search{' IVF n_lists=141 n_probe=8' if algorithm == 'ivf' else ''}, " \
                      "Q=500 N=20000 D=256 k=5"
    benchmark.extra_info.update(data=DATA, peers=peers(candidates))
    interleaved(candidates, primary="gpunn, one process", rounds=7, block=2)
