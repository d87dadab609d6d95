"""recall@k: how much of exact search's answer an approximate search found, to choose n_probe by.

recall@k of one query = |approximate k neighbours ∩ exact k neighbours| / k, averaged over queries.
Exact search breaks ties by the lower row; an approximate search that finds a tied row other than
exact search's counts it as a miss, so on data with many exact ties recall reads a little low.
"""

from __future__ import annotations

import numpy as np

from ..devices import array_module, to_numpy
from . import exact


def recall_at_k(found, expected) -> float:
    """Mean over queries of the share of ``expected``'s row indices (Q, k) that ``found`` (Q, k') holds.

    Parameters
    ----------
    found : array of shape (Q, k'), integer (NumPy or CuPy)
        The row indices an approximate search found for each query (distinct within a row).
    expected : array of shape (Q, k), integer (NumPy or CuPy)
        The exact search's row indices for the same queries (distinct within a row), k >= 1.

    Returns
    -------
    float
        The number of indices of ``expected`` that the same row of ``found`` holds, over Q k: in [0, 1].

    Raises
    ------
    ValueError
        If either is not 2-D, their numbers of rows differ, or ``expected`` has no columns.

    Examples
    --------
    >>> found = np.array([[0, 1, 2], [3, 4, 9]])
    >>> expected = np.array([[0, 1, 2], [3, 4, 5]])
    >>> round(gn.knn.recall_at_k(found, expected), 4)      # 5 of 6 found
    0.8333
    """
    found, expected = to_numpy(found), to_numpy(expected)
    if found.ndim != 2 or expected.ndim != 2 or found.shape[0] != expected.shape[0] or expected.shape[1] == 0:
        raise ValueError(f"recall_at_k: found and expected must be (Q, k) index arrays for the same queries, got "
                         f"shapes {found.shape} and {expected.shape}")
    hits = sum(len(np.intersect1d(f, e, assume_unique=True)) for f, e in zip(found, expected))
    return hits / expected.size


def sample_rows(n: int, n_queries: int, random_state=None) -> np.ndarray:
    """Sorted indices of min(n, n_queries) distinct rows out of n, seeded."""
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, min(n, n_queries), replace=False))


def index_recall(index, X, queries, k: int, n_probe: int, n_queries: int = 1000, random_state=None,
                 memory_limit: int = 1 << 30) -> float:
    """recall@k of ``index`` (an :class:`~gpunn.knn.ivf.IVFIndex` of the rows X) at ``n_probe``, on a sample of queries.

    Parameters
    ----------
    index : IVFIndex
        A fitted index of the rows ``X``.
    X : array of shape (N, D)
        The rows the index holds, on its device and in its dtype: exact search over them is the truth.
    queries : array of shape (Q, D)
        Queries on the index's device and in its dtype.
    k : int
        Neighbours per query, at most N.
    n_probe : int
        Lists each query scans (at least; see :meth:`IVFIndex.search`).
    n_queries : int, default=1000
        How many of the queries, drawn at random without replacement, are searched both ways (all, if Q
        is no more).
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the draw of the queries.
    memory_limit : int, default=1 << 30
        Bytes of temporaries the exact search may hold.

    Returns
    -------
    float
        recall@k (:func:`recall_at_k`) of the index's answers against exact search's, in [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32)
    >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
    >>> [gn.knn.index_recall(index, X, X, 5, p, n_queries=20, random_state=0) for p in (1, 2, 6)]
    [0.73, 0.93, 1.0]
    """
    rows = sample_rows(queries.shape[0], n_queries, random_state)
    A = array_module(queries).ascontiguousarray(queries[array_module(queries).asarray(rows)])
    approx = index.search(A, k, n_probe)[1]
    truth = exact.kneighbors(A, X, k, index.metric, int(memory_limit))[1]
    return recall_at_k(approx, truth)
