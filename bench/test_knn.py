"""k-nearest neighbours on the CPU against FAISS and scikit-learn, in the same interleaved run.

Exact search (float32, standard normal rows, FAISS's ``IndexFlat`` and scikit-learn's brute-force
``NearestNeighbors``, 2 threads each): L2 and L1 at 500 x 5,000 x 3,072 (CIFAR pixels), 2,000 x
100,000 x 128 (embeddings) and 10,000 x 50,000 x 64, k = 5; and k = 1, 10, 100 at 2,000 x 100,000 x
128 (scikit-learn there for L2 only). Each candidate is timed 5 times, interleaved; the machine's other
load makes single runs noisy. Before timing, gpunn's neighbours are compared with FAISS's
(``extra_info["same_neighbours"]``: the share of queries whose k indices agree, in order) and, where they
differ, with a float64 search: a difference must be a near-tie that float32 rounding may order either way.

Approximate search: clustered synthetic rows (400,000 x 128, 10,000 queries, k = 10), gpunn's
``algorithm="ivf"`` against FAISS's ``IndexIVFFlat`` with the same n_lists and n_probe: search time,
recall@10 against exact search, and build time (``extra_info``).

Run: pytest bench/test_knn.py --benchmark-json=knn.json && python bench/report.py knn.json
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import gpunn as gn
from gpunn.knn import kneighbors, recall_at_k

faiss = pytest.importorskip("faiss")
THREADS = 2
SHAPES = {"500x5000x3072": (500, 5000, 3072), "2000x100000x128": (2000, 100_000, 128),
          "10000x50000x64": (10_000, 50_000, 64)}
SKLEARN_METRIC = {"l2": "euclidean", "l1": "manhattan"}


@pytest.fixture(autouse=True)
def two_threads():
    faiss.omp_set_num_threads(THREADS)


def data(q: int, n: int, d: int):
    rng = np.random.default_rng(0)
    return rng.standard_normal((q, d)).astype(np.float32), rng.standard_normal((n, d)).astype(np.float32)


def flat_index(X, metric: str):
    index = faiss.IndexFlat(X.shape[1], faiss.METRIC_L1 if metric == "l1" else faiss.METRIC_L2)
    index.add(X)
    return index


def check_neighbours(ours, theirs, Xq, X, metric: str, k: int) -> float:
    """The share of queries whose neighbours agree with FAISS's; each disagreement must be a float32 near-tie."""
    same = (ours == theirs).all(axis=1)
    differ = np.flatnonzero(~same)
    if len(differ):
        exact_d, _ = kneighbors(Xq[differ].astype(np.float64), X.astype(np.float64), k + 1,
                                metric, 1 << 30)
        ref = np.abs(Xq[differ, None, :].astype(np.float64) - X[ours[differ]].astype(np.float64))
        ours_d = ref.sum(-1) if metric == "l1" else np.sqrt((ref ** 2).sum(-1))
        # gpunn's k-th neighbour is as near as the exact k-th, to float32 rounding of a D-term sum
        np.testing.assert_allclose(ours_d, exact_d[:, :k], rtol=1e-5 * np.sqrt(X.shape[1]), atol=1e-6)
    return float(same.mean())


def exact_candidates(Xq, X, metric: str, k: int, sklearn: bool = True):
    ours = gn.KNeighborsClassifier(k, metric, device="cpu").fit(X, np.zeros(len(X), int))
    index = flat_index(X, metric)
    same = check_neighbours(ours.kneighbors(Xq)[1], index.search(Xq, k)[1], Xq, X, metric, k)
    candidates = {"gpunn": lambda: ours.kneighbors(Xq), "faiss IndexFlat": lambda: index.search(Xq, k)}
    if sklearn:
        sk = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=SKLEARN_METRIC[metric], n_jobs=THREADS).fit(X)
        candidates["sklearn brute"] = lambda: sk.kneighbors(Xq)
    return candidates, same


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_exact_search(benchmark, interleaved, shape, metric):
    Xq, X = data(*SHAPES[shape])
    candidates, same = exact_candidates(Xq, X, metric, 5)
    benchmark.group = f"exact kNN {metric} k=5 {shape}"
    benchmark.extra_info["same_neighbours"] = same
    interleaved(candidates, primary="gpunn", rounds=5, block=1)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_exact_search_k(benchmark, interleaved, k, metric):
    Xq, X = data(*SHAPES["2000x100000x128"])
    # scikit-learn's L1 brute force takes 15 s a call at any k: its figure is test_exact_search's, at k=5
    candidates, same = exact_candidates(Xq, X, metric, k, sklearn=metric == "l2")
    benchmark.group = f"exact kNN {metric} k={k} 2000x100000x128"
    benchmark.extra_info["same_neighbours"] = same
    interleaved(candidates, primary="gpunn", rounds=5, block=1)


# --------------------------------------------------------------------------- approximate search (IVF)

IVF_ROWS, IVF_QUERIES, IVF_DIMS, IVF_CLUSTERS, IVF_K = 400_000, 10_000, 128, 1000, 10


def clustered(seed: int = 0):
    """Rows and queries drawn around the same 1,000 centres (unit-normal centres, spread 0.5 around each)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((IVF_CLUSTERS, IVF_DIMS)).astype(np.float32)
    X = centres[rng.integers(0, IVF_CLUSTERS, IVF_ROWS)] + 0.5 * rng.standard_normal((IVF_ROWS, IVF_DIMS), np.float32)
    Q = centres[rng.integers(0, IVF_CLUSTERS, IVF_QUERIES)] + 0.5 * rng.standard_normal((IVF_QUERIES, IVF_DIMS),
                                                                                         np.float32)
    return np.ascontiguousarray(Q), np.ascontiguousarray(X)


@pytest.mark.parametrize("n_probe", [1, 8, 32])
def test_ivf_search(benchmark, interleaved, n_probe):
    Q, X = clustered()
    n_lists = gn.knn.default_n_lists(len(X))
    start = time.perf_counter()
    ours = gn.KNeighborsClassifier(IVF_K, device="cpu", algorithm="ivf", n_lists=n_lists, n_probe=n_probe,
                                   random_state=0).fit(X, np.zeros(len(X), int))
    built = time.perf_counter() - start
    start = time.perf_counter()
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(IVF_DIMS), IVF_DIMS, n_lists, faiss.METRIC_L2)
    index.train(X)
    index.add(X)
    faiss_built = time.perf_counter() - start
    index.nprobe = n_probe
    exact = kneighbors(Q, X, IVF_K, "l2", 1 << 30)[1]
    recall = {"gpunn": recall_at_k(ours.kneighbors(Q)[1], exact), "faiss IndexIVFFlat": recall_at_k(index.search(Q, IVF_K)[1], exact)}
    benchmark.group = f"IVF kNN l2 k=10 400000x128 n_lists={n_lists} n_probe={n_probe}, 10000 queries"
    benchmark.extra_info.update(recall_at_10=recall, build_seconds={"gpunn": built, "faiss IndexIVFFlat": faiss_built})
    interleaved({"gpunn": lambda: ours.kneighbors(Q), "faiss IndexIVFFlat": lambda: index.search(Q, IVF_K)},
                primary="gpunn", rounds=5, block=1)
