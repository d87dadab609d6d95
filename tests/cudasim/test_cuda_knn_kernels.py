"""kNN's CUDA kernels in Numba's CUDA simulator, against the plain references, on fresh random data with ties.

Run by tests/test_kernels.py in a subprocess with NUMBA_ENABLE_CUDASIM=1; skipped in an ordinary run.
The launch functions' CUDA branches are called on NumPy arrays (the simulator's device arrays), and
some grids are smaller than the data, so the grid-stride loops run.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="needs NUMBA_ENABLE_CUDASIM=1")

from gpunn.kernels import cluster_sums, knn_ivf, knn_l1, knn_l2, topk  # noqa: E402
from gpunn.kernels.topk import CUDA_MAX_K, Best  # noqa: E402


def HostBest(queries, k, dtype):
    """CUDA lists (one part, sorted) in NumPy arrays, as the simulator's device arrays are."""
    return Best(np, 1, queries, k, dtype, cuda=True)


def tied(rng, shape, dtype):
    """Small integers: exact distances, with many ties."""
    return rng.integers(-2, 3, shape).astype(dtype)


def reference_search(d_full, k):
    """Each row's k smallest by (distance, column), from the whole distance matrix."""
    return topk.smallest_k(d_full, k)


@pytest.mark.parametrize("k,dtype", [(1, np.float32), (7, np.float64), (CUDA_MAX_K, np.float32),
                                     (CUDA_MAX_K + 3, np.float64)])  # the kernel's limit, and the sorting fallback
def test_selection_over_several_blocks_equals_a_stable_sort(k, dtype, rng):
    q, widths = 5, [150, 3, 140]  # three blocks, one narrower than k
    d = rng.integers(0, 20, (q, sum(widths))).astype(dtype)  # many ties
    best = HostBest(q, k, dtype)
    col = 0
    for w in widths:
        topk.select_cuda(np.ascontiguousarray(d[:, col:col + w]), best, col)
        col += w
    got_d, got_i = best.result()
    ref_d, ref_i = reference_search(d, k)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_array_equal(got_d, ref_d)


def test_selection_kernel_strides_over_rows_and_takes_gathered_ids(rng):
    q, n, k = 5, 90, 6
    d = rng.integers(0, 9, (q, n)).astype(np.float32)
    ids = np.stack([rng.permutation(1000)[:n] for _ in range(q)]).astype(np.int64)
    ids[:, -10:] = topk.NO_INDEX  # padding: never taken
    d[:, -10:] = np.inf
    best = HostBest(q, k, np.float32)
    kernel = topk.SELECT_CUDA[(np.dtype(np.float32), True)]
    kernel[(2,), (topk.SELECT_THREADS,)](d, ids, np.int64(0), best.keys[0], best.idx[0], np.float32(np.inf))  # 2 < 5
    for r in range(q):
        order = np.lexsort((ids[r], d[r]))[:k]
        np.testing.assert_array_equal(best.idx[0, r], ids[r, order])
        np.testing.assert_array_equal(best.keys[0, r], d[r, order])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l1_distance_kernel(dtype, rng):
    A, B = rng.standard_normal((70, 21)).astype(dtype), rng.standard_normal((75, 21)).astype(dtype)
    out = np.full((70, 75), np.nan, dtype)
    knn_l1.DISTANCES_CUDA[np.dtype(dtype)][(1, 1), (16, 16)](A, B, out, dtype(0))  # one block: strides both ways
    np.testing.assert_allclose(out, knn_l1.reference(A, B), rtol=8 * np.finfo(dtype).eps * 21)


@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_exact_search_with_the_cuda_kernels(metric, rng):
    """The CUDA branches of l1_select / l2_select, block after block, equal the reference search, ties included."""
    dtype = np.float32
    A, X = tied(rng, (5, 5), dtype), tied(rng, (110, 5), dtype)
    k, block = 7, 50
    best = HostBest(A.shape[0], k, dtype)
    a_sq, x_sq = (A * A).sum(1), (X * X).sum(1)
    for n0 in range(0, X.shape[0], block):
        B = X[n0:n0 + block]
        if metric == "l1":
            out = np.empty((A.shape[0], B.shape[0]), dtype)
            knn_l1._launch_distances(A, B, out)
        else:
            out = np.ascontiguousarray(A @ B.T)
            knn_l2._launch_distances(out, a_sq, x_sq[n0:n0 + block], metric == "l2")
        topk.select_cuda(out, best, n0)
    full = knn_l1.reference(A, X) if metric == "l1" else knn_l2.reference(A @ X.T, a_sq, x_sq, metric == "l2")
    ref_d, ref_i = reference_search(full, k)
    got_d, got_i = best.result()
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_array_equal(got_d, ref_d)


def test_l2_distance_kernel_strides_over_rows(rng):
    A, B = rng.standard_normal((19, 37)), rng.standard_normal((23, 37))
    for dtype in (np.float32, np.float64):
        A_, B_ = A.astype(dtype), B.astype(dtype)
        G = A_ @ B_.T
        a_sq, b_sq = (A_ * A_).sum(1), (B_ * B_).sum(1)
        ref = knn_l2.reference(G.copy(), a_sq, b_sq, True)
        knn_l2.distances_cuda[(1, 2), (32, 4)](G, a_sq, b_sq, True, knn_l2.floor_ulps(dtype), dtype(0))
        np.testing.assert_allclose(G, ref, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ivf_scan_with_the_cuda_kernels(metric, dtype, rng):
    X, A = tied(rng, (60, 4), dtype), tied(rng, (6, 4), dtype)
    labels = rng.integers(0, 5, 60)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=5))]).astype(np.int64)
    rows, ids = np.ascontiguousarray(X[order]), order.astype(np.int64)
    probes = np.stack([rng.permutation(5)[:3] for _ in range(6)]).astype(np.int64)
    row_sq = (rows * rows).sum(1) if metric != "l1" else None
    a_sq = (A * A).sum(1) if metric != "l1" else None
    lists = (rows, row_sq, ids, starts, int(np.diff(starts).max()))
    got_d, got_i = knn_ivf._scan_cuda(A, a_sq, lists, probes, 5, metric)
    ref_d, ref_i = knn_ivf.reference(A, rows, ids, starts, probes, 5, metric)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_d, ref_d, rtol=4 * np.finfo(dtype).eps)


def test_cluster_sums_kernel(rng):
    for dtype in (np.float32, np.float64):
        X, labels = rng.standard_normal((70, 40)).astype(dtype), rng.integers(0, 4, 70)
        sums = np.zeros((4, 40), dtype)
        cluster_sums.sums_cuda[(1, 2), (32, 8)](X, labels, sums)  # x covers 32 of 40 features: a second block
        np.testing.assert_allclose(sums[:, :32], cluster_sums.reference(X, labels, 4)[:, :32],
                                   rtol=100 * np.finfo(dtype).eps, atol=1000 * np.finfo(dtype).eps)
        sums = np.zeros((4, 40), dtype)
        cluster_sums.sums_cuda[(2, 2), (32, 8)](X, labels, sums)  # 16 rows per pass over 70: the y stride
        np.testing.assert_allclose(sums, cluster_sums.reference(X, labels, 4), rtol=100 * np.finfo(dtype).eps,
                                   atol=1000 * np.finfo(dtype).eps)
