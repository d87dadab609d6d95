"""An inverted-file (IVF) index: approximate k-nearest neighbours that scan a few lists instead of every row.

Building (:meth:`IVFIndex.fit`): k-means (:mod:`gpunn.knn.kmeans`) places ``n_lists`` centroids; every
row joins the list of its nearest centroid, and the rows are stored list after list, contiguously
(CPU: packed in panels for kernels/knn_ivf.py). Searching (:meth:`IVFIndex.search`): each query finds
its ``n_probe`` nearest centroids by exact search, then its k best among the rows of those lists
(kernels/knn_ivf.py), sorted by (distance, row), ties by the lower row as in exact search.

What it gives up: a neighbour whose list was not probed is missed. More probes find more (measure it
with :func:`gpunn.knn.recall.index_recall`); ``n_probe = n_lists`` scans every row and gives exact
search's answer (up to the rounding of near-ties: the distances are the same formulas, summed in
another order). A query whose probed lists hold fewer than k rows is refused with a ``ValueError``
(raise ``n_probe`` or lower k) rather than answered with fewer neighbours.
"""

from __future__ import annotations

import math

import numpy as np

from ..devices import array_module, device_of, on_device, to_numpy
from ..kernels import knn_ivf
from ..validation import check_choice, check_finite, check_int
from . import exact
from .kmeans import MAX_POINTS_PER_CLUSTER, N_ITER, assign, kmeans


def _check_rows(name: str, X) -> None:
    """X must be a non-empty 2-D float32/float64 array of finite values (NumPy or CuPy)."""
    if getattr(X, "ndim", 0) != 2 or X.shape[0] == 0 or X.shape[1] == 0 or X.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a non-empty 2-D float32 or float64 array, got "
                         f"{getattr(X, 'dtype', type(X).__name__)} of shape {getattr(X, 'shape', None)}")
    check_finite(name, X)


def default_n_lists(n_rows: int) -> int:
    """About sqrt(N) lists (at least 1, at most N): the usual starting point, lists of about sqrt(N) rows each."""
    return max(1, min(n_rows, round(math.sqrt(n_rows))))


class IVFIndex:
    """An inverted-file index over the rows of X, on X's device (NumPy or CuPy), float32 or float64.

    Parameters
    ----------
    n_lists : int or None
        Coarse centroids (lists); None: :func:`default_n_lists`. At most the number of rows.
    metric : {"l2", "l1", "sqeuclidean"}
    random_state : int, np.random.Generator or None
        Seeds k-means (its sample of rows and first centroids): the same seed gives the same index.
    memory_limit : int
        Bytes of temporaries a search may hold (query blocks are sized to fit).
    n_iter : int
        k-means iterations.
    max_points_per_list : int
        k-means trains on at most this many sampled rows per list (FAISS's rule).

    Attributes
    ----------
    centroids_ : array (n_lists, D)
        The lists' centroids, on the rows' device.
    list_sizes_ : numpy.ndarray (n_lists,) int64
        Rows per list, on the host.
    n_rows_ : int
        Rows indexed.
    """

    def __init__(self, n_lists=None, metric: str = "l2", random_state=None, memory_limit: int = 1 << 30,
                 n_iter: int = N_ITER, max_points_per_list: int = MAX_POINTS_PER_CLUSTER):
        self.n_lists = n_lists
        self.metric = metric
        self.random_state = random_state
        self.memory_limit = memory_limit
        self.n_iter = n_iter
        self.max_points_per_list = max_points_per_list

    @on_device(lambda self, X: device_of(X))
    def fit(self, X) -> "IVFIndex":
        """Build the index of X (N, D): a C-contiguous, finite float32/float64 matrix on its device."""
        check_choice("metric", self.metric, exact.METRICS)
        _check_rows("X", X)
        n = X.shape[0]
        n_lists = default_n_lists(n) if self.n_lists is None else check_int("n_lists", self.n_lists, low=1)
        if n_lists > n:
            raise ValueError(f"n_lists={n_lists} is more than the number of training rows, n_samples={n}: "
                             "each list needs rows")
        xp = array_module(X)
        limit = int(self.memory_limit)
        centroids = kmeans(X, n_lists, self.metric, check_int("n_iter", self.n_iter, low=0),
                           check_int("max_points_per_list", self.max_points_per_list, low=1), self.random_state, limit)
        labels = assign(X, centroids, self.metric, limit)
        order = xp.argsort(labels, kind="stable") if xp is np else xp.argsort(labels)
        sizes = to_numpy(xp.bincount(labels, minlength=n_lists)).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rows = xp.ascontiguousarray(X[order])
        row_sq = (rows * rows).sum(axis=1) if self.metric != "l1" else None
        ids = order.astype(np.int64)
        if xp is np:
            self.lists_ = knn_ivf.pack_lists(rows, row_sq, ids, starts)
        else:
            self.lists_ = (rows, row_sq, ids, xp.asarray(starts), int(sizes.max()))
        self.centroids_, self.list_sizes_, self.n_rows_ = centroids, sizes, n
        return self

    @property
    def n_lists_(self) -> int:
        return self.centroids_.shape[0]

    def probes(self, Xq, n_probe: int, memory_limit: int | None = None):
        """(Q, n_probe) int64: the lists each query scans, nearest centroid first, on the queries' device."""
        limit = int(self.memory_limit if memory_limit is None else memory_limit)
        return exact.kneighbors(Xq, self.centroids_, n_probe, self.metric, limit)[1]

    @on_device(lambda self, Xq, *rest: device_of(Xq))
    def search(self, Xq, k: int, n_probe: int, memory_limit: int | None = None):
        """(distances, row indices) of each query's k best among its n_probe nearest lists, each (Q, k), sorted.

        Xq (Q, D): C-contiguous, finite, of the index's dtype and device. Raises ``ValueError`` for
        n_probe > n_lists, and when a query's probed lists hold fewer than k rows. ``memory_limit``
        (bytes) overrides the index's for this search.
        """
        limit = int(self.memory_limit if memory_limit is None else memory_limit)
        n_probe = check_int("n_probe", n_probe, low=1)
        k = check_int("k", k, low=1)
        if n_probe > self.n_lists_:
            raise ValueError(f"n_probe={n_probe} is more than n_lists={self.n_lists_}: a query cannot probe more "
                             "lists than the index has")
        _check_rows("Xq", Xq)
        if Xq.dtype != self.centroids_.dtype or device_of(Xq) != device_of(self.centroids_):
            raise ValueError(f"the queries ({Xq.dtype} on {device_of(Xq)}) must have the index's dtype and device "
                             f"({self.centroids_.dtype} on {device_of(self.centroids_)})")
        if Xq.shape[1] != self.centroids_.shape[1]:
            raise ValueError(f"Xq has {Xq.shape[1]} features, the index {self.centroids_.shape[1]}")
        probes = self.probes(Xq, n_probe, limit)
        found = self.list_sizes_[to_numpy(probes)].sum(axis=1)
        short = np.flatnonzero(found < k)
        if len(short):
            q = int(short[0])
            raise ValueError(f"k={k} is more than the {int(found[q])} rows in the n_probe={n_probe} lists probed for "
                             f"query {q} ({len(short)} of {len(found)} queries fall short): raise n_probe or lower k")
        xp = array_module(Xq)
        block = self._query_block(Xq.shape[0], k, n_probe, limit)
        out_d, out_i = xp.empty((Xq.shape[0], k), Xq.dtype), xp.empty((Xq.shape[0], k), np.int64)
        for q0 in range(0, Xq.shape[0], block):
            A = Xq[q0:q0 + block]
            a_sq = (A * A).sum(axis=1) if self.metric != "l1" else None
            out_d[q0:q0 + block], out_i[q0:q0 + block] = knn_ivf.scan(A, a_sq, self.lists_, probes[q0:q0 + block], k,
                                                                      self.metric)
        return out_d, out_i

    def _query_block(self, q: int, k: int, n_probe: int, limit: int) -> int:
        """Queries per scan within memory_limit: CPU, the tasks' heaps; CUDA, the candidate block and its lists."""
        size = self.centroids_.dtype.itemsize
        if device_of(self.centroids_).type == "cpu":
            import numba

            per_query = knn_ivf.TASKS_PER_THREAD * numba.get_num_threads() * k * (2 * size + 8)
        else:
            per_query = n_probe * self.lists_[4] * (size + 8) + k * (size + 8)
        return max(1, min(q, limit * 3 // 4 // max(1, per_query)))
