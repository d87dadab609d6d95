"""An inverted-file (IVF) index: approximate k-nearest neighbours that scan a few lists instead of every row.

Building (:meth:`IVFIndex.fit`): k-means (:mod:`gpunn.knn.kmeans`) places ``n_lists`` centroids; every
row joins the list of its nearest centroid, and the rows are stored list after list, contiguously
(CPU: packed in panels for kernels/knn_ivf.py). Searching (:meth:`IVFIndex.search`): each query finds
its ``n_probe`` nearest centroids by exact search, then its k best among the rows of those lists
(kernels/knn_ivf.py), sorted by (distance, row), ties by the lower row as in exact search; float32 L2
keeps one more and measures its near-ties again in float64 as exact search does (:mod:`gpunn.knn.near_ties`).

``n_probe`` is a minimum: a query whose ``n_probe`` nearest lists hold fewer than k rows goes on to the
next-nearest lists until they hold k (:func:`probe_lists`), so every valid query (k no more than the
rows indexed) gets k neighbours, however k-means split the rows.

What it gives up: a neighbour whose list was not probed is missed. More probes find more (measure it
with :func:`gpunn.knn.recall.index_recall`, or let :func:`gpunn.knn.auto_probe.tune_n_probe` choose);
``n_probe = n_lists`` scans every row and gives exact search's answer (up to the rounding of near-ties:
the distances are the same formulas, summed in another order).
"""

from __future__ import annotations

import math

import numpy as np

from ..devices import array_module, device_of, on_device, to_numpy
from ..kernels import knn_ivf
from ..validation import check_choice, check_finite, check_int
from . import exact, near_ties
from .kmeans import MAX_POINTS_PER_CLUSTER, N_ITER, assign, kmeans


def _check_rows(name: str, X) -> None:
    """X must be a non-empty 2-D float32/float64 array of finite values (NumPy or CuPy)."""
    if getattr(X, "ndim", 0) != 2 or X.shape[0] == 0 or X.shape[1] == 0 or X.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a non-empty 2-D float32 or float64 array, got "
                         f"{getattr(X, 'dtype', type(X).__name__)} of shape {getattr(X, 'shape', None)}")
    check_finite(name, X)


def default_n_lists(n_rows: int) -> int:
    """About sqrt(N) lists (at least 1, at most N): the usual starting point, lists of about sqrt(N) rows each.

    Parameters
    ----------
    n_rows : int
        The number of rows to index, N.

    Returns
    -------
    int
        ``round(sqrt(n_rows))``, clipped to [1, n_rows].

    Examples
    --------
    >>> gn.knn.default_n_lists(10_000), gn.knn.default_n_lists(50), gn.knn.default_n_lists(1)
    (100, 7, 1)
    """
    return max(1, min(n_rows, round(math.sqrt(n_rows))))


def probe_lists(Xq, centroids, list_sizes, n_probe: int, k: int, metric: str, limit: int):
    """(Q, width) int64 lists each query scans: its n_probe nearest, then the next-nearest until they hold k rows.

    Only the queries whose n_probe lists hold fewer than k rows are ranked against more centroids. The
    arguments are not checked (:meth:`IVFIndex.probes` and :meth:`IVFIndex.search` call it with theirs).

    Parameters
    ----------
    Xq : array of shape (Q, D), float32 or float64 (NumPy or CuPy)
        The queries, finite.
    centroids : array of shape (n_lists, D)
        The lists' centroids, of ``Xq``'s dtype and on its device.
    list_sizes : numpy.ndarray of shape (n_lists,), int64
        Rows per list (on the host), summing to at least k.
    n_probe : int
        The nearest lists each query scans at least, 1 <= n_probe <= n_lists.
    k : int
        The rows a query's lists must hold between them.
    metric : {"l2", "l1", "sqeuclidean"}
        The distance from a query to a centroid.
    limit : int
        Bytes of temporaries the ranking of the lists may hold.

    Returns
    -------
    array of shape (Q, width), int64, on ``Xq``'s device
        Each query's lists, nearest first (ties to the lower list). width is n_probe, or more where some
        query needed more lists to hold k rows; -1 pads the rows shorter than the widest.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32)
    >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
    >>> index.list_sizes_
    array([16,  6,  4,  6, 11, 17])
    >>> gn.knn.probe_lists(X[:3], index.centroids_, index.list_sizes_, 1, 15, "l2", 1 << 20)
    array([[ 4,  3],
           [ 3,  5],
           [ 0, -1]])
    """
    xp = array_module(Xq)
    n_lists = centroids.shape[0]
    probes = exact.kneighbors(Xq, centroids, n_probe, metric, limit, refine=False)[1]
    short = np.flatnonzero(list_sizes[to_numpy(probes)].sum(axis=1) < k)
    if len(short) == 0:
        return probes
    out = np.full((Xq.shape[0], n_probe), -1, np.int64)
    out[:] = to_numpy(probes)
    ranks = min(n_lists, 2 * n_probe + 16)  # a few more lists are usually enough; all of them where not
    while len(short):
        ranked = to_numpy(exact.kneighbors(xp.ascontiguousarray(Xq[xp.asarray(short)]), centroids, ranks, metric,
                                           limit, refine=False)[1])
        held = np.cumsum(list_sizes[ranked], axis=1)
        done = (held[:, -1] >= k) | (ranks == n_lists)
        need = (held < k).sum(axis=1) + 1  # lists until k rows are held
        if need[done].size and need[done].max() > out.shape[1]:
            out = np.concatenate([out, np.full((out.shape[0], need[done].max() - out.shape[1]), -1, np.int64)], 1)
        for row, q, m in zip(ranked[done], short[done].tolist(), need[done].tolist()):
            out[q] = -1
            out[q, :m] = row[:m]  # one ranking for all of a short query's lists, its first n_probe included
        short, ranks = short[~done], n_lists
    return xp.asarray(out)


class IVFIndex:
    """An inverted-file index over the rows of X, on X's device (NumPy or CuPy), float32 or float64.

    Parameters
    ----------
    n_lists : int or None, default None
        Coarse centroids (lists); None: :func:`default_n_lists`. At most the number of rows.
    metric : {"l2", "l1", "sqeuclidean"}, default "l2"
    random_state : int, np.random.Generator or None, default None
        Seeds k-means (its sample of rows and first centroids): the same seed gives the same index.
    memory_limit : int, default 1 << 30
        Bytes of temporaries a search may hold (query blocks are sized to fit).
    n_iter : int, default 10
        k-means iterations.
    max_points_per_list : int, default 256
        k-means trains on at most this many sampled rows per list (FAISS's rule).

    Attributes
    ----------
    centroids_ : array (n_lists, D)
        The lists' centroids, on the rows' device.
    list_sizes_ : numpy.ndarray (n_lists,) int64
        Rows per list, on the host.
    n_rows_ : int
        Rows indexed.
    positions_ : array (n_rows,) int64 or None
        Where each row sits in the lists (float32 L2: its near-ties are measured again from there).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 16)).astype(np.float32)
    >>> index = gn.knn.IVFIndex(n_lists=40, random_state=0).fit(X)
    >>> d, i = index.search(X[:5], k=3, n_probe=4)
    >>> i[:, 0].tolist()                      # each row is its own nearest neighbour
    [0, 1, 2, 3, 4]
    >>> exact = gn.knn.kneighbors(X[:5], X, 3, "l2", 1 << 30)[1]
    >>> bool((index.search(X[:5], 3, n_probe=40)[1] == exact).all())   # every list probed: exact search
    True
    """

    def __init__(self, n_lists=None, metric: str = "l2", random_state=None, memory_limit: int = 1 << 30,
                 n_iter: int = N_ITER, max_points_per_list: int = MAX_POINTS_PER_CLUSTER):
        self.n_lists = n_lists
        self.metric = metric
        self.random_state = random_state
        self.memory_limit = memory_limit
        self.n_iter = n_iter
        self.max_points_per_list = max_points_per_list

    @on_device(lambda self, X, *rest: device_of(X))
    def fit(self, X, centroids=None) -> "IVFIndex":
        """Build the index of the rows of X.

        Parameters
        ----------
        X : array (N, D)
            C-contiguous, finite float32/float64 matrix on its device.
        centroids : array (n_lists, D) or None, default None
            The lists' centroids, X's dtype and device; None: k-means places ``n_lists`` of them.

        Returns
        -------
        IVFIndex
            ``self``.

        Raises
        ------
        ValueError
            For a bad metric, X or centroids, or ``n_lists`` beyond the rows; the index is then unchanged.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((60, 4)).astype(np.float32)
        >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
        >>> index.n_lists_, index.n_rows_, int(index.list_sizes_.sum())
        (6, 60, 60)
        >>> same = gn.knn.IVFIndex().fit(X, centroids=index.centroids_)   # lists around given centroids
        >>> same.list_sizes_
        array([16,  6,  4,  6, 11, 17])
        """
        check_choice("metric", self.metric, exact.METRICS)
        _check_rows("X", X)
        n = X.shape[0]
        limit = int(self.memory_limit)
        if centroids is None:
            n_lists = default_n_lists(n) if self.n_lists is None else check_int("n_lists", self.n_lists, low=1)
            if n_lists > n:
                raise ValueError(f"n_lists={n_lists} is more than the number of training rows, n_samples={n}: "
                                 "each list needs rows")
            centroids = kmeans(X, n_lists, self.metric, check_int("n_iter", self.n_iter, low=0),
                               check_int("max_points_per_list", self.max_points_per_list, low=1), self.random_state,
                               limit)
        else:
            _check_rows("centroids", centroids)
            if centroids.shape[1] != X.shape[1] or centroids.dtype != X.dtype or device_of(centroids) != device_of(X):
                raise ValueError(f"centroids must be (n_lists, {X.shape[1]}) {X.dtype} on {device_of(X)}, got "
                                 f"{centroids.dtype} {tuple(centroids.shape)} on {device_of(centroids)}")
        lists, sizes = build_lists(X, centroids, self.metric, limit)
        positions = knn_ivf.row_positions(lists, n) if near_ties.wanted(self.metric, X.dtype) else None
        self.lists_, self.centroids_, self.list_sizes_, self.n_rows_ = lists, centroids, sizes, n
        self.positions_ = positions
        return self

    @property
    def n_lists_(self) -> int:
        """The number of lists (centroids) of the fitted index."""
        return self.centroids_.shape[0]

    def probes(self, Xq, n_probe: int, k: int = 1, memory_limit: int | None = None):
        """(Q, width) int64: the lists each query scans, nearest first, on the queries' device (:func:`probe_lists`).

        Parameters
        ----------
        Xq : array of shape (Q, D)
            Finite queries of the index's dtype, device and width (not checked here).
        n_probe : int
            The nearest lists each query scans at least, 1 <= n_probe <= ``n_lists_``.
        k : int, default=1
            The rows a query's lists must hold between them.
        memory_limit : int or None, default=None
            Bytes of temporaries for the ranking; None: the index's ``memory_limit``.

        Returns
        -------
        array of shape (Q, width), int64
            Each query's lists, nearest first. width is n_probe, or more where a query's n_probe nearest
            lists hold fewer than k rows; -1 pads the rows shorter than the widest.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((60, 4)).astype(np.float32)
        >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
        >>> index.probes(X[:3], 2)
        array([[4, 3],
               [3, 5],
               [0, 1]])
        >>> index.probes(X[:3], 1, k=15)     # lists 4 and 3 hold fewer than 15 rows: one more list each
        array([[ 4,  3],
               [ 3,  5],
               [ 0, -1]])
        """
        limit = int(self.memory_limit if memory_limit is None else memory_limit)
        return probe_lists(Xq, self.centroids_, self.list_sizes_, n_probe, k, self.metric, limit)

    @on_device(lambda self, Xq, *rest: device_of(Xq))
    def search(self, Xq, k: int, n_probe: int, memory_limit: int | None = None):
        """Each query's k best rows among its n_probe (or more) nearest lists.

        Parameters
        ----------
        Xq : array (Q, D)
            C-contiguous, finite queries of the index's dtype and device.
        k : int
            Neighbours per query, at most the rows indexed.
        n_probe : int
            Lists scanned per query, at least: a query whose n_probe nearest lists hold fewer than k rows
            goes on to the next-nearest until they hold k.
        memory_limit : int or None, default None
            Bytes of temporaries for this search; None: the index's.

        Returns
        -------
        distances : array of shape (Q, k), the index's dtype
            Each query's k smallest distances among the rows of its probed lists, ascending.
        indices : array of shape (Q, k), int64
            Rows of X, sorted by (distance, row).

        Raises
        ------
        ValueError
            n_probe > n_lists, k > rows indexed, or queries of another dtype, device or width, or not finite.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((60, 4)).astype(np.float32)
        >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
        >>> d, i = index.search(X[:3], 3, n_probe=2)
        >>> i
        array([[ 0, 35, 28],
               [ 1,  9,  4],
               [ 2, 32, 49]])
        >>> gn.knn.kneighbors(X[:3], X, 3, "l2", 1 << 20)[1]   # exact search: row 8 is in a list not probed
        array([[ 0, 35,  8],
               [ 1,  9,  4],
               [ 2, 32, 49]])
        """
        limit = int(self.memory_limit if memory_limit is None else memory_limit)
        k, n_probe = check_search(k, n_probe, self.n_lists_, self.n_rows_)
        check_queries(Xq, self.centroids_)
        refining = near_ties.wanted(self.metric, Xq.dtype)
        kept = min(k + 1, self.n_rows_) if refining else k  # one more, for near-ties (gpunn.knn.near_ties)
        probes = self.probes(Xq, n_probe, kept, limit)
        d, i = scan_blocks(Xq, self.lists_, probes, kept, self.metric, limit)
        if refining:
            def rows(ids):
                return knn_ivf.gather_rows(self.lists_, self.positions_, ids), array_module(ids).arange(ids.shape[0])

            d, i = near_ties.refine(Xq, d, i, rows, self.metric == "l2", k)
        return d, i


def check_search(k, n_probe, n_lists: int, n_rows: int):
    """(k, n_probe) checked against an index of n_lists lists and n_rows rows (a ValueError naming the one at fault)."""
    n_probe = check_int("n_probe", n_probe, low=1)
    k = check_int("k", k, low=1)
    if n_probe > n_lists:
        raise ValueError(f"n_probe={n_probe} is more than n_lists={n_lists}: a query cannot probe more lists than "
                         "the index has")
    if k > n_rows:
        raise ValueError(f"k={k} is more than the {n_rows} rows indexed")
    return k, n_probe


def check_queries(Xq, centroids) -> None:
    """Xq: finite (Q, D) queries of the centroids' dtype, device and width (a ValueError naming Xq)."""
    _check_rows("Xq", Xq)
    if Xq.dtype != centroids.dtype or device_of(Xq) != device_of(centroids):
        raise ValueError(f"the queries ({Xq.dtype} on {device_of(Xq)}) must have the index's dtype and device "
                         f"({centroids.dtype} on {device_of(centroids)})")
    if Xq.shape[1] != centroids.shape[1]:
        raise ValueError(f"Xq has {Xq.shape[1]} features, the index {centroids.shape[1]}")


def build_lists(X, centroids, metric: str, limit: int, ids=None):
    """(lists, list_sizes): the rows of X (N, D) stored list by list for kernels/knn_ivf.py's scan, and rows per list.

    Each row joins its nearest centroid's list. ``ids`` (N,) int64: the rows' numbers (default 0 .. N - 1; a Dask
    worker's chunk gives its global rows). ``list_sizes`` is a host int64 array (n_lists,).
    """
    xp = array_module(X)
    n_lists = centroids.shape[0]
    labels = assign(X, centroids, metric, limit)
    order = xp.argsort(labels, kind="stable") if xp is np else xp.argsort(labels)
    sizes = to_numpy(xp.bincount(labels, minlength=n_lists)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = xp.ascontiguousarray(X[order])
    row_sq = exact.squared_norms(rows) if metric != "l1" else None
    ids = order.astype(np.int64) if ids is None else xp.asarray(ids)[order]
    if xp is np:
        return knn_ivf.pack_lists(rows, row_sq, ids, starts), sizes
    return (rows, row_sq, ids, xp.asarray(starts), int(sizes.max())), sizes


def scan_blocks(Xq, lists, probes, k: int, metric: str, limit: int):
    """(distances, ids), each (Q, k): the queries' k best in their probed lists (-1: none), in blocks within ``limit``.

    Where the probed lists hold fewer than k rows the rest is (inf, NO_INDEX) (a Dask worker's share of a list).
    """
    xp = array_module(Xq)
    q = Xq.shape[0]
    block = _query_block(Xq, lists, q, k, probes.shape[1], limit)
    out_d, out_i = xp.empty((q, k), Xq.dtype), xp.empty((q, k), np.int64)
    for q0 in range(0, q, block):
        A = Xq[q0:q0 + block]
        a_sq = exact.squared_norms(A) if metric != "l1" else None
        out_d[q0:q0 + block], out_i[q0:q0 + block] = knn_ivf.scan(A, a_sq, lists, probes[q0:q0 + block], k, metric)
    return out_d, out_i


def _query_block(Xq, lists, q: int, k: int, width: int, limit: int) -> int:
    """Queries per scan within memory_limit: CPU, the tasks' heaps; CUDA, the candidate block and its lists."""
    size = Xq.dtype.itemsize
    if device_of(Xq).type == "cpu":  # a heap per (task, query) pair, at most one per probed list; the output
        import numba

        heaps = min(knn_ivf.TASKS_PER_THREAD * numba.get_num_threads(), width)
        per_query = (heaps + 1) * k * (2 * 8 + 8)
    else:
        per_query = width * lists[4] * (size + 8) + k * (size + 8)
    return max(1, min(q, limit * 3 // 4 // max(1, per_query)))
