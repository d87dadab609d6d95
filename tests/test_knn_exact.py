"""Exact kNN search (gpunn.knn.exact and its kernels) against a brute-force NumPy float64 reference, ties included."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gpunn.kernels import knn_l1, knn_l2, topk
from gpunn.knn import exact

SCIPY = {"l1": "cityblock", "l2": "euclidean", "sqeuclidean": "sqeuclidean"}


def reference(Xq, X, k, metric):
    """float64 distances, each row's k smallest by (distance, index)."""
    d = cdist(np.asarray(Xq, np.float64), np.asarray(X, np.float64), SCIPY[metric])
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


def tied(rng, shape, dtype):
    """Small integers: every distance is exact in float32 too, and equal distances are everywhere."""
    return rng.integers(-3, 4, shape).astype(dtype)


def search(Xq, X, k, metric, limit=1 << 30):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small limits warn that tiles are small: that is what these cases want
        return exact.kneighbors(np.ascontiguousarray(Xq), np.ascontiguousarray(X), k, metric, limit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
@pytest.mark.parametrize("queries,limit", [(1, 1 << 30), (3, 1 << 30), (37, 1 << 30), (300, 1 << 30), (300, 60_000)],
                         ids=["1 query", "3 queries", "37 queries", "300 queries", "300 queries in small blocks"])
def test_equals_the_float64_reference_with_ties(queries, limit, metric, dtype, rng):
    """Ties by lower index; few queries split their rows into parts, small limits into many blocks."""
    n = 613  # not a multiple of any vector or block width
    X, Xq = tied(rng, (n, 6), dtype), tied(rng, (queries, 6), dtype)
    for k in (1, 7, n):
        d, i = search(Xq, X, k, metric, limit)
        ref_d, ref_i = reference(Xq, X, k, metric)
        assert d.dtype == dtype and i.dtype == np.int64 and d.shape == (queries, k)
        np.testing.assert_array_equal(i, ref_i, err_msg=f"k={k}")
        np.testing.assert_allclose(d, ref_d, rtol=4 * np.finfo(dtype).eps, err_msg=f"k={k}")


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_continuous_data_in_float64(metric, rng):
    X, Xq = rng.standard_normal((2000, 24)), rng.standard_normal((50, 24))
    d, i = search(Xq, X, 10, metric)
    ref_d, ref_i = reference(Xq, X, 10, metric)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-12)


def test_many_queries_span_several_query_blocks(rng):
    q = exact.CPU_QUERY_BLOCK + 77
    X, Xq = tied(rng, (300, 4), np.float32), tied(rng, (q, 4), np.float32)
    for metric in ("l1", "l2"):
        d, i = search(Xq, X, 5, metric)
        np.testing.assert_array_equal(i, reference(Xq, X, 5, metric)[1])


def test_duplicate_rows_are_exactly_zero_apart_and_tie_by_index(rng):
    base = rng.standard_normal((4, 30)).astype(np.float32) * 100
    X = np.repeat(base, 3, axis=0)[rng.permutation(12)]
    d, i = search(base, X, 3, "l2")
    for q in range(4):
        np.testing.assert_array_equal(i[q], np.flatnonzero((X == base[q]).all(axis=1)))
        assert (d[q] == 0).all()


@pytest.mark.filterwarnings("ignore:memory_limit of")
def test_the_plan_stays_within_the_limit():
    for metric in ("l1", "l2"):
        for limit in (10**5, 10**6, 10**8):
            p = exact.plan(5000, 100_000, 128, 10, np.float32, metric, limit, True)
            block = p.rows * 128 * 4 if metric == "l1" else p.queries * p.rows * 4
            assert block + p.parts * p.queries * 10 * (4 + 4 + 8) <= limit * 3 // 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distance_matrix_kernels_equal_their_references(dtype, rng):
    A, B = rng.standard_normal((37, 45)).astype(dtype), rng.standard_normal((101, 45)).astype(dtype)
    np.testing.assert_allclose(knn_l1.l1_distances(A, B), knn_l1.reference(A, B), rtol=50 * np.finfo(dtype).eps)
    a_sq, b_sq = (A * A).sum(1), (B * B).sum(1)
    G = A @ B.T
    ref = knn_l2.reference(G.copy(), a_sq, b_sq, True)
    np.testing.assert_allclose(knn_l2.l2_distances(G, a_sq, b_sq, True), ref, rtol=4 * np.finfo(dtype).eps)


def test_smallest_k_reference_is_a_stable_sort():
    d = np.array([[3.0, 1.0, 3.0, 1.0, 0.0]])
    got_d, got_i = topk.smallest_k(d, 4, offset=10)
    np.testing.assert_array_equal(got_i, [[14, 11, 13, 10]])
    np.testing.assert_array_equal(got_d, [[0.0, 1.0, 1.0, 3.0]])


@pytest.mark.parametrize("call,match", [
    (lambda A, B: knn_l1.l1_distances(A, np.ascontiguousarray(B[:, :3])),
     r"l1_distances: A and B must be \(Q, D\) and \(N, D\) of one dtype"),
    (lambda A, B: knn_l1.l1_distances(A.astype(np.int64), B), "l1_distances: A must be a C-contiguous float32"),
    (lambda A, B: knn_l2.l2_distances(A @ B.T, (A * A).sum(1)[:2], (B * B).sum(1), True),
     r"l2_distances: a_sq must be a contiguous float32 vector of length 5"),
    (lambda A, B: knn_l1.l1_distances(np.asfortranarray(A), B), "must be a C-contiguous"),
])
def test_kernel_launches_refuse_bad_arguments(call, match, rng):
    A, B = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        call(A, B)


@pytest.mark.parametrize("k", [1, 5, 40])
def test_buffers_keep_the_k_best_by_distance_then_row(k, rng):
    """kernels/topk.py's Buffers: offers in any order, ties everywhere, several compactions, parts merged."""
    parts, q, n = 3, 4, 500
    d = rng.integers(0, 30, (q, n)).astype(np.float32)  # many equal distances
    ids = np.stack([rng.permutation(n) for _ in range(q)]).astype(np.int64)
    buffers = topk.Buffers(parts, q, k, np.float32)
    for i in range(q):
        for p in range(parts):
            held = 0
            for j in range(p, n, parts):  # part p gets every parts-th column, rows in random order
                if d[i, j] <= buffers.limit[p, i]:
                    held, new = topk.offer(buffers.keys[p, i], buffers.raws[p, i], buffers.idx[p, i], held, k,
                                           d[i, j], d[i, j], ids[i, j])
                    buffers.limit[p, i] = new if new >= 0 else buffers.limit[p, i]
            buffers.fill[p, i] = held
    got_d, got_i = buffers.result()
    for i in range(q):
        order = np.lexsort((ids[i], d[i]))[:k]
        np.testing.assert_array_equal(got_i[i], ids[i, order])
        np.testing.assert_array_equal(got_d[i], d[i, order])
