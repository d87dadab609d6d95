"""An IVF index on a Dask cluster: centroids trained on a sample, each worker keeping the lists of its own rows.

Building (:meth:`DaskIVFIndex.fit`): the rows k-means trains on are drawn as one process draws them
(:func:`gpunn.knn.kmeans.training_rows`, the same generator), gathered, and k-means runs on them in one
task on a worker's device; then every training chunk is stored where it lives, list by list, with its
global row numbers (:func:`gpunn.knn.ivf.build_lists`), and stays there (``persist``). Only the centroids
and the rows per list come back to the client.

Searching (:meth:`DaskIVFIndex.search`): the client ranks the lists for each query tile once
(:func:`gpunn.knn.ivf.probe_lists`, with the whole index's list sizes, so a query short of k rows goes on to
the next lists as in one process); every chunk's task scans its own part of those lists and returns each
query's k best with global row numbers; the client merges them (:func:`gpunn.knn.exact.merge_best`).

Exact with respect to one process: with the same centroids every row joins the same list, and each
distance is computed by the same kernel from the same two rows, so each chunk's answer holds the rows
one process would keep from it, sorted by (distance, row); chunks are in row order, so the stable merge
gives one process's answer, ties included. With the same ``random_state`` the centroids are the same too.
"""

from __future__ import annotations

import numpy as np

from ..devices import device as make_device
from ..devices import to_numpy
from ..knn import exact, ivf, near_ties
from ..knn.kmeans import N_ITER, MAX_POINTS_PER_CLUSTER, lloyd, training_rows
from ..validation import check_int
from .dask_knn import QUERY_TILE_BYTES, _query_tiles, rows_of


def _train(sample, n_lists: int, metric: str, n_iter: int, rng, limit: int, device: str, dtype: str):
    """On a worker: k-means' centroids of the gathered sample (host NumPy), on the worker's device."""
    dev = make_device(device)
    with dev:
        X = dev.xp.ascontiguousarray(dev.asarray(sample, dtype=dtype))
        return to_numpy(lloyd(X, n_lists, metric, n_iter, rng, min(limit, dev.free_memory() // 2)))


class _ChunkLists:
    """One training chunk's lists on its worker: the scan layout, rows per list, and the device they are on."""

    def __init__(self, rows, centroids, offset: int, metric: str, limit: int, device: str, dtype: str):
        self.device, self.dtype, self.metric, self.limit = device, dtype, metric, limit
        dev = make_device(device)
        with dev:
            X = dev.xp.ascontiguousarray(dev.asarray(rows, dtype=dtype))
            C = dev.xp.ascontiguousarray(dev.asarray(centroids, dtype=dtype))
            ids = dev.xp.arange(offset, offset + X.shape[0], dtype=np.int64)
            self.lists, self.sizes = ivf.build_lists(X, C, metric, min(limit, dev.free_memory() // 2), ids)

    def scan(self, queries, probes, k: int):
        """Each query's k best rows of this chunk in its probed lists (host arrays; (inf, NO_INDEX) past its rows)."""
        dev = make_device(self.device)
        with dev:
            A = dev.xp.ascontiguousarray(dev.asarray(queries, dtype=self.dtype))
            d, i = ivf.scan_blocks(A, self.lists, dev.asarray(probes), k, self.metric,
                                   min(self.limit, dev.free_memory() // 2))
            return to_numpy(d), to_numpy(i)


def _sizes(chunk: _ChunkLists) -> np.ndarray:
    return chunk.sizes


def _scan(chunk: _ChunkLists, queries, probes, k: int):
    return chunk.scan(queries, probes, k)


class DaskIVFIndex:
    """An IVF index whose lists live on a Dask cluster, each worker holding its own training chunks' rows.

    Parameters
    ----------
    n_lists : int or None, default None
        Coarse centroids; None: :func:`gpunn.knn.default_n_lists` of the rows.
    metric : {"l2", "l1", "sqeuclidean"}, default "l2"
    random_state : int, np.random.Generator or None, default None
        Seeds k-means as :class:`gpunn.knn.IVFIndex` does: the same seed gives the same centroids.
    memory_limit : int, default 1 << 30
        Bytes of temporaries per task (lowered to half a worker device's free memory).
    device : str, default "cpu"
        Each worker's device, resolved on the worker ("auto": its GPU under dask-cuda).
    dtype : {"float32", "float64"}, default "float32"
    n_iter, max_points_per_list : int
        k-means' iterations and rows sampled per list, as :class:`gpunn.knn.IVFIndex`.

    Attributes
    ----------
    centroids_ : numpy.ndarray (n_lists, D)
    list_sizes_ : numpy.ndarray (n_lists,) int64
        Rows per list over all chunks.
    n_rows_ : int
    """

    def __init__(self, n_lists=None, metric: str = "l2", random_state=None, memory_limit: int = 1 << 30,
                 device: str = "cpu", dtype: str = "float32", n_iter: int = N_ITER,
                 max_points_per_list: int = MAX_POINTS_PER_CLUSTER):
        self.n_lists = n_lists
        self.metric = metric
        self.random_state = random_state
        self.memory_limit = memory_limit
        self.device = device
        self.dtype = dtype
        self.n_iter = n_iter
        self.max_points_per_list = max_points_per_list

    @property
    def n_lists_(self) -> int:
        return self.centroids_.shape[0]

    def fit(self, X, offsets, centroids=None) -> "DaskIVFIndex":
        """Build the index of the dask array X (N, D), row-chunked and checked (:func:`dask_knn.training_rows`).

        Parameters
        ----------
        X : dask.array.Array (N, D)
            Finite, one chunk across the columns, in ``dtype``, persisted.
        offsets : numpy.ndarray (chunks,) int64
            Each chunk's first row.
        centroids : numpy.ndarray (n_lists, D) or None, default None
            Given centroids; None: k-means on a sample.

        Returns
        -------
        DaskIVFIndex
            ``self``.
        """
        import dask

        n = X.shape[0]
        limit = int(self.memory_limit)
        if centroids is None:
            n_lists = ivf.default_n_lists(n) if self.n_lists is None else check_int("n_lists", self.n_lists, low=1)
            if n_lists > n:
                raise ValueError(f"n_lists={n_lists} is more than the number of training rows, n_samples={n}: "
                                 "each list needs rows")
            n_iter = check_int("n_iter", self.n_iter, low=0)
            rng = np.random.default_rng(self.random_state)
            rows = training_rows(n, n_lists, check_int("max_points_per_list", self.max_points_per_list, low=1), rng)
            sample = X if rows is None else X[rows]
            centroids = dask.delayed(_train, pure=False)(sample, n_lists, self.metric, n_iter, rng, limit, self.device,
                                                         self.dtype).compute()
        centroids = np.ascontiguousarray(np.asarray(centroids, dtype=self.dtype))
        shared = dask.delayed(centroids, pure=True)
        chunks = [dask.delayed(_ChunkLists, pure=True)(block, shared, int(offset), self.metric, limit, self.device,
                                                        self.dtype)
                  for block, offset in zip(X.to_delayed().ravel(), offsets)]
        chunks = dask.persist(*chunks)  # the lists stay on the workers that built them
        sizes = np.sum(dask.compute(*[dask.delayed(_sizes, pure=True)(c) for c in chunks]), axis=0)
        self.chunks_, self.centroids_, self.list_sizes_, self.n_rows_ = chunks, centroids, sizes.astype(np.int64), n
        self.X_ = X  # near-ties' rows are fetched from it
        return self

    def search(self, queries, k: int, n_probe: int):
        """(distances, indices), each (Q, k) NumPy: each query's k best among its n_probe (or more) nearest lists.

        ``queries``: a NumPy or dask (Q, D) matrix of numbers (a dask array's tiles are fetched in turn).
        Equal to :meth:`gpunn.knn.IVFIndex.search` with the same centroids on one process.
        """
        import dask

        k, n_probe = ivf.check_search(k, n_probe, self.n_lists_, self.n_rows_)
        limit = int(self.memory_limit)
        tile = max(1, min(QUERY_TILE_BYTES, limit) // (8 * self.centroids_.shape[1]))
        refining = near_ties.wanted(self.metric, self.dtype)
        kept = min(k + 1, self.n_rows_) if refining else k  # as IVFIndex.search: one more, for near-ties
        out_d, out_i = [], []
        for part in _query_tiles(queries, tile):
            part = np.ascontiguousarray(np.asarray(part, dtype=self.dtype))
            ivf.check_queries(part, self.centroids_)
            probes = ivf.probe_lists(part, self.centroids_, self.list_sizes_, n_probe, kept, self.metric, limit)
            shared_q, shared_p = dask.delayed(part, pure=True), dask.delayed(probes, pure=True)
            answers = dask.compute(*[dask.delayed(_scan, pure=True)(c, shared_q, shared_p, kept)
                                     for c in self.chunks_])
            d, i = exact.merge_best(answers, kept)
            if refining:
                d, i = near_ties.refine(part, d, i, rows_of(self.X_), self.metric == "l2", k)
            out_d.append(d)
            out_i.append(i)
        return np.concatenate(out_d), np.concatenate(out_i)
