"""k-nearest neighbours at the cs231n scale: Q=500 queries, N=5000 training rows, D=3072, float32.

Peers in the same interleaved run, on the same arrays: SciPy's cdist and a NumPy broadcast
loop over query chunks (L1), the NumPy GEMM formula (L2), scikit-learn's brute-force
KNeighborsClassifier (predict, k=5), and FAISS's flat indexes (k=5 search) where faiss-cpu
is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import KNeighborsClassifier as SklearnKNN

import gpunn as gn
from gpunn import ops
from gpunn.neighbors import pairwise_distances

Q, N, D, K = 500, 5000, 3072, 5


def data():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((Q, D)).astype(np.float32)
    B = rng.standard_normal((N, D)).astype(np.float32)
    return A, B, rng.integers(0, 10, N)


def faiss_index(B, metric):
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexFlat(D, faiss.METRIC_L1 if metric == "l1" else faiss.METRIC_L2)
    index.add(B)
    return index


def test_l1_distance_matrix(benchmark, interleaved):
    A, B, _ = data()

    def numpy_broadcast():
        with ops.use_kernels(False):
            return ops.l1_distances(A, B)

    benchmark.group = "L1 distances 500x5000x3072"
    interleaved({"gpunn": lambda: pairwise_distances(A, B, "l1", device="cpu"),
                 "scipy cdist": lambda: cdist(A, B, "cityblock"), "numpy broadcast": numpy_broadcast},
                primary="gpunn", rounds=5, block=1)


def test_l2_distance_matrix(benchmark, interleaved):
    A, B, _ = data()

    def numpy_gemm():
        return np.sqrt(np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * (A @ B.T), 0))

    benchmark.group = "L2 distances 500x5000x3072"
    interleaved({"gpunn": lambda: pairwise_distances(A, B, "l2", device="cpu"), "numpy gemm": numpy_gemm,
                 "scipy cdist": lambda: cdist(A, B, "euclidean")}, primary="gpunn", rounds=5, block=2)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_predict(benchmark, interleaved, metric):
    A, B, y = data()
    ours = gn.KNeighborsClassifier(K, metric, device="cpu").fit(B, y)
    theirs = SklearnKNN(K, algorithm="brute", metric="euclidean" if metric == "l2" else "manhattan").fit(B, y)
    candidates = {"gpunn": lambda: ours.predict(A), "sklearn brute": lambda: theirs.predict(A)}
    try:
        index = faiss_index(B, metric)
        candidates["faiss flat (search only)"] = lambda: index.search(A, K)
    except pytest.skip.Exception:
        pass
    benchmark.group = f"{metric} predict k=5, 500 queries x 5000 x 3072"
    interleaved(candidates, primary="gpunn", rounds=3, block=1)
