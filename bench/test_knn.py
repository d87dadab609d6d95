"""k-nearest neighbours on the CPU against FAISS (and scikit-learn), each at its best, in one interleaved run.

Peers at their best: FAISS's OpenBLAS runs this CPU's kernel (``bench/peer_blas.py`` sets
``OPENBLAS_CORETYPE`` where it would fall back to a generic one, and the table says so), and every peer
runs 2 threads (Numba's and NumPy's BLAS for gpunn, OpenMP for FAISS, ``n_jobs`` for scikit-learn).
``extra_info["peers"]`` records each peer's threads and BLAS kernel, ``extra_info["data"]`` the data.

Exact search (float32, standard normal rows and queries, seed 0): L2 and L1 at 500 x 5,000 x 3,072 (CIFAR
pixels), 2,000 x 100,000 x 128 (embeddings) and 10,000 x 50,000 x 64, k = 1, 10 and 100; gpunn's
``KNeighborsClassifier(algorithm="brute").kneighbors`` against FAISS's ``IndexFlat`` (and scikit-learn's
brute-force ``NearestNeighbors`` for L2 at k = 10: its L1 takes 15-20 s a call). Each candidate is timed
5 times (L1: 3), interleaved. Before timing, every answer is compared with a float64 search of the same
data: ``extra_info["same_order_as_float64"]``, the share of neighbour positions (query, rank) that hold
the float64 search's row, for gpunn and FAISS; and ``same_neighbours``, the share of queries whose k rows
equal FAISS's, in order.

Approximate search (IVF, L2, k = 10): gpunn's ``IVFIndex`` against FAISS's ``IndexIVFFlat`` with the same
n_lists (sqrt(N)) at n_probe = 1 .. 32, on two data sets of 200,000 rows x 64 and 2,000 queries:
a Gaussian mixture of 300 unit-normal centres with spread 1.5 (the clusters overlap: recall@10 is about
0.6 at n_probe = 1), and uniform rows in [0, 1)^64. ``recall_at_10`` against exact search; queries per
second are 2,000 / the median. Both indexes are built once per data set (``build_seconds``).

Run: pytest bench/test_knn.py --benchmark-json=knn.json && python bench/report.py knn.json
(``python bench/tables.py --suites knn`` rewrites docs/performance/knn.rst; about 8 minutes on 2 quiet cores).
"""

from __future__ import annotations

import importlib.util
import time

import numba
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

import gpunn as gn
from gpunn.knn import kneighbors, recall_at_k

if importlib.util.find_spec("faiss") is None:
    pytest.skip("FAISS is not installed (pip install faiss-cpu)", allow_module_level=True)

import peer_blas  # noqa: E402

faiss = peer_blas.import_at_its_best("faiss", "faiss_cpu.libs")
THREADS = 2
NUMPY_LIBS, FAISS_LIBS = "numpy.libs", "faiss_cpu.libs"
SHAPES = {"500x5000x3072": (500, 5000, 3072), "2000x100000x128": (2000, 100_000, 128),
          "10000x50000x64": (10_000, 50_000, 64)}
SKLEARN_METRIC = {"l2": "euclidean", "l1": "manhattan"}
GPUNN, FAISS_FLAT, SKLEARN, FAISS_IVF = "gpunn", "faiss IndexFlat", "sklearn brute", "faiss IndexIVFFlat"


@pytest.fixture(autouse=True, scope="module")
def equal_threads():
    """Every peer on THREADS threads: Numba's, every BLAS and OpenMP pool, FAISS's OpenMP."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    faiss.omp_set_num_threads(THREADS)
    with threadpool_limits(THREADS):
        yield
    numba.set_num_threads(previous)


def peers(*names) -> dict:
    """extra_info["peers"] for the peers named, their threads as each library reports them."""
    described = {GPUNN: peer_blas.peer(numba.get_num_threads(), NUMPY_LIBS),
                 FAISS_FLAT: peer_blas.peer(faiss.omp_get_max_threads(), FAISS_LIBS),
                 FAISS_IVF: peer_blas.peer(faiss.omp_get_max_threads(), FAISS_LIBS),
                 SKLEARN: peer_blas.peer(THREADS, NUMPY_LIBS)}  # n_jobs=THREADS, NumPy's BLAS
    chosen = {name: described[name] for name in names}
    assert {p["threads"] for p in chosen.values()} == {THREADS}, chosen
    return chosen


# --------------------------------------------------------------------------- exact search

_REFERENCE: dict = {}


def data(q: int, n: int, d: int):
    rng = np.random.default_rng(0)
    return rng.standard_normal((q, d)).astype(np.float32), rng.standard_normal((n, d)).astype(np.float32)


def reference(shape: str, metric: str):
    """The float64 search's 100 nearest rows of every query (ties by the lower row), once per data set."""
    if (shape, metric) not in _REFERENCE:
        Xq, X = data(*SHAPES[shape])
        _REFERENCE[(shape, metric)] = kneighbors(Xq.astype(np.float64), X.astype(np.float64), 100, metric, 1 << 30)[1]
    return _REFERENCE[(shape, metric)]


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_exact_search(benchmark, interleaved, shape, metric, k):
    q, n, d = SHAPES[shape]
    Xq, X = data(q, n, d)
    ours = gn.KNeighborsClassifier(k, metric, device="cpu").fit(X, np.zeros(n, int))
    index = faiss.IndexFlat(d, faiss.METRIC_L1 if metric == "l1" else faiss.METRIC_L2)
    index.add(X)
    ours_i, theirs_i = ours.kneighbors(Xq)[1], index.search(Xq, k)[1]
    truth = reference(shape, metric)[:, :k]
    candidates = {GPUNN: lambda: ours.kneighbors(Xq), FAISS_FLAT: lambda: index.search(Xq, k)}
    if metric == "l2" and k == 10:
        sk = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=SKLEARN_METRIC[metric], n_jobs=THREADS).fit(X)
        candidates[SKLEARN] = lambda: sk.kneighbors(Xq)
    benchmark.group = f"exact kNN {metric} k={k} {shape}"
    benchmark.extra_info.update(
        data=f"standard normal float32, Q={q:,} queries x N={n:,} rows x D={d:,}, seed 0",
        peers=peers(*candidates),
        same_order_as_float64={GPUNN: float((ours_i == truth).mean()), FAISS_FLAT: float((theirs_i == truth).mean())},
        same_neighbours=float((ours_i == theirs_i).all(axis=1).mean()))
    interleaved(candidates, primary=GPUNN, rounds=5 if metric == "l2" else 3, block=1)


# --------------------------------------------------------------------------- approximate search (IVF)

IVF_ROWS, IVF_QUERIES, IVF_DIMS, IVF_K, IVF_CENTRES, IVF_SPREAD = 200_000, 2_000, 64, 10, 300, 1.5
IVF_DATA = {
    "mixture": f"Gaussian mixture float32: {IVF_CENTRES} unit-normal centres, spread {IVF_SPREAD}, "
               f"N={IVF_ROWS:,} rows and Q={IVF_QUERIES:,} queries x D={IVF_DIMS}, seed 0",
    "uniform": f"uniform float32 in [0, 1)^{IVF_DIMS}, N={IVF_ROWS:,} rows and Q={IVF_QUERIES:,} queries, seed 0",
}


def ivf_data(kind: str):
    """(queries, rows) of one IVF data set (see IVF_DATA)."""
    rng = np.random.default_rng(0)
    if kind == "uniform":
        X = rng.random((IVF_ROWS + IVF_QUERIES, IVF_DIMS), np.float32)
    else:
        centres = rng.standard_normal((IVF_CENTRES, IVF_DIMS)).astype(np.float32)
        X = centres[rng.integers(0, IVF_CENTRES, IVF_ROWS + IVF_QUERIES)] + \
            IVF_SPREAD * rng.standard_normal((IVF_ROWS + IVF_QUERIES, IVF_DIMS), np.float32)
    return np.ascontiguousarray(X[:IVF_QUERIES]), np.ascontiguousarray(X[IVF_QUERIES:])


@pytest.fixture(scope="module")
def ivf_indexes():
    """Per data set: (queries, exact neighbours, gpunn's index, FAISS's, build seconds), built once."""
    built = {}

    def get(kind: str):
        if kind not in built:
            Q, X = ivf_data(kind)
            n_lists = gn.knn.default_n_lists(IVF_ROWS)
            start = time.perf_counter()
            ours = gn.knn.IVFIndex(n_lists, random_state=0).fit(X)
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            theirs = faiss.IndexIVFFlat(faiss.IndexFlatL2(IVF_DIMS), IVF_DIMS, n_lists, faiss.METRIC_L2)
            theirs.train(X)
            theirs.add(X)
            theirs_s = time.perf_counter() - start
            exact = kneighbors(Q, X, IVF_K, "l2", 1 << 30)[1]
            built[kind] = (Q, exact, ours, theirs, {GPUNN: ours_s, FAISS_IVF: theirs_s})
        return built[kind]

    return get


@pytest.mark.parametrize("n_probe", [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize("kind", list(IVF_DATA))
def test_ivf_search(benchmark, interleaved, ivf_indexes, kind, n_probe):
    Q, exact, ours, theirs, built = ivf_indexes(kind)
    theirs.nprobe = n_probe
    recall = {GPUNN: recall_at_k(ours.search(Q, IVF_K, n_probe)[1], exact),
              FAISS_IVF: recall_at_k(theirs.search(Q, IVF_K)[1], exact)}
    benchmark.group = f"IVF kNN l2 k=10 {kind} n_lists={ours.n_lists_} n_probe={n_probe}, {IVF_QUERIES} queries"
    benchmark.extra_info.update(data=IVF_DATA[kind], peers=peers(GPUNN, FAISS_IVF), recall_at_10=recall,
                                build_seconds=built)
    interleaved({GPUNN: lambda: ours.search(Q, IVF_K, n_probe), FAISS_IVF: lambda: theirs.search(Q, IVF_K)},
                primary=GPUNN, rounds=5, block=1)
