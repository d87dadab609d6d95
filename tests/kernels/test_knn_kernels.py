"""kNN's CUDA kernels on the GPU (real or simulated), launched directly, against their references.

The CPU side of these kernels is tested through the search (tests/test_knn_exact.py, test_knn_ivf.py);
here each CUDA kernel is fed fresh random data with ties, on grids smaller than the data, so that every
grid-stride loop takes several steps. ``run_cuda`` launches where and how the library does: in the
device's context, on CuPy's current stream.
"""

import numpy as np
import pytest

import gpunn as gn
from gpunn.kernels import cluster_sums, knn_ivf, knn_l1, knn_l2, topk
from gpunn.kernels.launch import run_cuda
from gpunn.kernels.topk import CUDA_MAX_K, Best


def tied(rng, shape, dtype):
    """Small integers: exact distances, with many ties."""
    return rng.integers(-2, 3, shape).astype(dtype)


@pytest.mark.parametrize("k,dtype", [(1, np.float32), (7, np.float64), (CUDA_MAX_K, np.float32),
                                     (CUDA_MAX_K + 3, np.float64)])  # the kernel's limit, and the sorting fallback
def test_selection_over_several_blocks_equals_a_stable_sort(k, dtype, rng, one_gpu):
    q, widths = 2, [topk.ROUND + 300, 3, 140]  # three blocks, one narrower than k, one of several rounds
    d = rng.integers(0, 20, (q, sum(widths))).astype(dtype)  # many ties
    with one_gpu:
        best = Best(one_gpu.xp, 1, q, k, dtype)
        col = 0
        for w in widths:
            topk.select_cuda(one_gpu.asarray(np.ascontiguousarray(d[:, col:col + w])), best, col)
            col += w
        got_d, got_i = (gn.to_numpy(a) for a in best.result())
    ref_d, ref_i = topk.smallest_k(d, k)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_array_equal(got_d, ref_d)


def test_selection_kernel_strides_over_rows_and_takes_gathered_ids(rng, one_gpu):
    q, n, k = 3, 90, 6
    d = rng.integers(0, 9, (q, n)).astype(np.float32)
    ids = np.stack([rng.permutation(1000)[:n] for _ in range(q)]).astype(np.int64)
    ids[:, -10:] = topk.NO_INDEX  # padding: never taken
    d[:, -10:] = np.inf
    with one_gpu:
        best = Best(one_gpu.xp, 1, q, k, np.float32)
        kernel = topk.SELECT_CUDA[(np.dtype(np.float32), True)]
        run_cuda(kernel, (2,), (topk.SELECT_THREADS,), one_gpu.asarray(d), one_gpu.asarray(ids), np.int64(0), best.keys[0],
                 best.idx[0], np.float32(np.inf))  # 2 blocks < 3 rows
        keys, idx = gn.to_numpy(best.keys[0]), gn.to_numpy(best.idx[0])
    for r in range(q):
        order = np.lexsort((ids[r], d[r]))[:k]
        np.testing.assert_array_equal(idx[r], ids[r, order])
        np.testing.assert_array_equal(keys[r], d[r, order])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l1_distance_kernel(dtype, rng, one_gpu):
    A, B = rng.standard_normal((40, 21)).astype(dtype), rng.standard_normal((45, 21)).astype(dtype)
    with one_gpu:
        out = one_gpu.xp.full((40, 45), np.nan, dtype)
        run_cuda(knn_l1.DISTANCES_CUDA[np.dtype(dtype)], (1, 1), (16, 16), one_gpu.asarray(A), one_gpu.asarray(B), out,
                 dtype(0))  # one block of 16 x 16 threads over a 40 x 45 output: strides both ways
        got = gn.to_numpy(out)
    np.testing.assert_allclose(got, knn_l1.reference(A, B), rtol=8 * np.finfo(dtype).eps * 21)


@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_exact_search_with_the_cuda_kernels(metric, rng, one_gpu):
    """The CUDA branches of l1_select / l2_select, block after block, equal the reference search, ties included."""
    dtype = np.float32
    A, X = tied(rng, (2, 5), dtype), tied(rng, (110, 5), dtype)
    k, block = 7, 50
    a_sq, x_sq = (A * A).sum(1), (X * X).sum(1)
    with one_gpu:
        best = Best(one_gpu.xp, 1, A.shape[0], k, dtype)
        for n0 in range(0, X.shape[0], block):
            B = X[n0:n0 + block]
            if metric == "l1":
                out = one_gpu.xp.empty((A.shape[0], B.shape[0]), dtype)
                knn_l1._launch_distances(one_gpu.asarray(A), one_gpu.asarray(np.ascontiguousarray(B)), out)
            else:
                out = one_gpu.asarray(np.ascontiguousarray(A @ B.T))
                knn_l2._launch_distances(out, one_gpu.asarray(a_sq), one_gpu.asarray(x_sq[n0:n0 + block]), metric == "l2")
            topk.select_cuda(out, best, n0)
        got_d, got_i = (gn.to_numpy(a) for a in best.result())
    full = knn_l1.reference(A, X) if metric == "l1" else knn_l2.reference(A @ X.T, a_sq, x_sq, metric == "l2")
    ref_d, ref_i = topk.smallest_k(full, k)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_array_equal(got_d, ref_d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_distance_kernel_strides_over_rows(dtype, rng, one_gpu):
    A, B = rng.standard_normal((19, 37)).astype(dtype), rng.standard_normal((23, 37)).astype(dtype)
    G = A @ B.T
    a_sq, b_sq = (A * A).sum(1), (B * B).sum(1)
    ref = knn_l2.reference(G.copy(), a_sq, b_sq, True)
    with one_gpu:
        G_dev = one_gpu.asarray(G)
        run_cuda(knn_l2.distances_cuda, (1, 2), (32, 4), G_dev, one_gpu.asarray(a_sq), one_gpu.asarray(b_sq), True,
                 knn_l2.floor_ulps(dtype), dtype(0))
        got = gn.to_numpy(G_dev)
    np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ivf_scan_with_the_cuda_kernels(metric, dtype, rng, one_gpu):
    X, A = tied(rng, (60, 4), dtype), tied(rng, (3, 4), dtype)
    labels = rng.integers(0, 5, 60)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=5))]).astype(np.int64)
    rows, ids = np.ascontiguousarray(X[order]), order.astype(np.int64)
    probes = np.stack([rng.permutation(5)[:3] for _ in range(3)]).astype(np.int64)
    row_sq = (rows * rows).sum(1) if metric != "l1" else None
    a_sq = (A * A).sum(1) if metric != "l1" else None
    up = lambda a: None if a is None else one_gpu.asarray(a)  # noqa: E731
    with one_gpu:
        lists = (up(rows), up(row_sq), up(ids), up(starts), int(np.diff(starts).max()))
        got_d, got_i = (gn.to_numpy(a) for a in knn_ivf._scan_cuda(up(A), up(a_sq), lists, up(probes), 5, metric))
    ref_d, ref_i = knn_ivf.reference(A, rows, ids, starts, probes, 5, metric)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_d, ref_d, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cluster_sums_kernel(dtype, rng, one_gpu):
    n = 3 * cluster_sums.SUM_ROWS + 11  # runs of sorted rows that cross clusters, and a short last run
    X, labels = rng.standard_normal((n, 40)).astype(dtype), rng.integers(0, 5, n)
    labels[labels == 3] = 2  # an empty cluster sums to zeros
    ref = cluster_sums.reference(X, labels, 5)
    tol = dict(rtol=100 * np.finfo(dtype).eps, atol=1000 * np.finfo(dtype).eps)
    order = np.argsort(labels, kind="stable")
    with one_gpu:
        up = one_gpu.asarray
        X_dev, order_dev, sorted_dev = up(X), up(order.astype(np.int64)), up(labels[order].astype(np.int64))
        sums = one_gpu.xp.zeros((5, 40), dtype)
        run_cuda(cluster_sums.sums_cuda, (1, 1), (32, 2), X_dev, order_dev, sorted_dev, sums, dtype(0))
        np.testing.assert_allclose(gn.to_numpy(sums)[:, :32], ref[:, :32], **tol)  # x covers 32 of 40 features
        assert not gn.to_numpy(sums)[:, 32:].any()
        sums = one_gpu.xp.zeros((5, 40), dtype)
        run_cuda(cluster_sums.sums_cuda, (2, 1), (32, 2), X_dev, order_dev, sorted_dev, sums, dtype(0))  # runs stride
        np.testing.assert_allclose(gn.to_numpy(sums), ref, **tol)
        got = gn.to_numpy(cluster_sums.cluster_sums(X_dev, up(labels.astype(np.int64)), 5))  # the launch sorts itself
    np.testing.assert_allclose(got, ref, **tol)
    assert (got[3] == 0).all()


@pytest.mark.parametrize("metric", ["l1", "sqeuclidean"])
def test_ivf_candidate_kernel_strides_over_tiles_probes_and_queries(metric, rng, one_gpu):
    """A grid smaller than the work on every axis, a list longer than a tile, features past one staging step,
    and a probe of no list (-1)."""
    dtype = np.float32
    sizes = [knn_ivf.CANDIDATE_ROWS + 22, 5, 0, 31]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    d = knn_ivf.CANDIDATE_STEP + 9
    rows = tied(rng, (starts[-1], d), dtype)
    ids = rng.permutation(1000)[:starts[-1]].astype(np.int64)
    A = tied(rng, (3, d), dtype)
    probes = np.array([[0, 3, 1], [2, 0, -1], [1, -1, 3]], np.int64)
    width = max(sizes)
    code = knn_ivf.METRIC_CODES[metric]
    floor = dtype(knn_ivf.L2_FLOOR_ULPS * np.finfo(dtype).eps)
    with one_gpu:
        up = one_gpu.asarray
        out = one_gpu.xp.full((3, 3 * width), np.nan, dtype)
        out_ids = one_gpu.xp.full((3, 3 * width), -7, np.int64)
        run_cuda(knn_ivf.CANDIDATES_CUDA[np.dtype(dtype)], (1, 2, 2), (knn_ivf.CANDIDATE_ROWS,), up(A),
                 up((A * A).sum(1)), up(rows), up((rows * rows).sum(1)), up(ids), up(starts), up(probes),
                 np.int64(width), code, floor, dtype(0), dtype(np.inf), out, out_ids)
        got, got_ids = gn.to_numpy(out), gn.to_numpy(out_ids)
    for i in range(3):
        for p, c in enumerate(probes[i]):
            block, block_ids = got[i, p * width:(p + 1) * width], got_ids[i, p * width:(p + 1) * width]
            n = sizes[c] if c >= 0 else 0
            members = rows[starts[c]:starts[c] + n] if n else rows[:0]
            if metric == "l1":
                expected = np.abs(members - A[i]).sum(1)
            else:
                expected = ((members - A[i]) ** 2).sum(1)  # small integers: the product form is exact here
            np.testing.assert_array_equal(block[:n], expected)
            np.testing.assert_array_equal(block_ids[:n], ids[starts[c]:starts[c] + n] if n else [])
            assert np.isinf(block[n:]).all() and (block_ids[n:] == topk.NO_INDEX).all()


@pytest.mark.parametrize("where", ["cpu", "gpu"])
def test_sort_rows_orders_by_distance_then_row_as_lexsort(where, rng, one_gpu):
    # rows nearly sorted (as near-ties leave them), one reversed (the insertion sort's worst case), ties throughout
    m, k = 6, 40
    sq = np.sort(rng.integers(0, 12, (m, k)), axis=1).astype(np.float64)
    sq[:2] += rng.uniform(-0.6, 0.6, (2, k))  # neighbours' order disturbed a little
    sq[2] = sq[2][::-1]
    i = np.stack([rng.permutation(1000)[:k] for _ in range(m)]).astype(np.int64)
    d = np.sqrt(np.abs(sq)).astype(np.float32)
    order = np.stack([np.lexsort((i[r], sq[r])) for r in range(m)])
    expected = [np.take_along_axis(a, order, axis=1) for a in (sq, d, i)]
    dev = gn.device("cpu") if where == "cpu" else one_gpu
    with dev:
        got = knn_l2.sort_rows(*(dev.asarray(a) for a in (sq, d, i)))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(gn.to_numpy(g), e)


def test_cpu_buffers_finish_in_distance_then_row_order_when_raw_values_share_a_root(rng):
    # 4 and the next float32 above it have the same float32 square root, 2: the rows must then come in order
    above = np.nextafter(np.float32(4), np.float32(5))
    assert np.sqrt(above) == np.sqrt(np.float32(4))
    best = topk.Buffers(1, 2, 3, np.float32, take_sqrt=True)
    raws = [[above, 4, 9, 1, 16], [0, 0, 25, 0, 4]]
    rows = [[3, 7, 1, 9, 0], [5, 2, 4, 8, 6]]
    for q in range(2):
        best.raws[0, q, :5] = best.keys[0, q, :5] = raws[q]
        best.idx[0, q, :5] = rows[q]
        best.fill[0, q] = 5
    d, i = best.result()
    np.testing.assert_array_equal(i, [[9, 3, 7], [2, 5, 8]])
    np.testing.assert_array_equal(d, np.float32([[1, 2, 2], [0, 0, 0]]))
    # rows past 2^32 (a search of more rows than uint32 counts): the same order
    best64 = topk.Buffers(1, 1, 3, np.float32, take_sqrt=True)
    best64.raws[0, 0, :5] = best64.keys[0, 0, :5] = raws[0]
    best64.idx[0, 0, :5] = np.array(rows[0]) + (1 << 32)
    best64.fill[0, 0] = 5
    d64, i64 = best64.result()
    np.testing.assert_array_equal(i64 - (1 << 32), [[9, 3, 7]])
    np.testing.assert_array_equal(d64, d[:1])
