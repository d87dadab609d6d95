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
    """Mean over queries of the share of ``expected``'s row indices (Q, k) that ``found`` (Q, k') holds."""
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

    ``queries`` (Q, D) on the index's device; ``n_queries`` of them (all, if fewer) are searched both ways.
    """
    rows = sample_rows(queries.shape[0], n_queries, random_state)
    A = array_module(queries).ascontiguousarray(queries[array_module(queries).asarray(rows)])
    approx = index.search(A, k, n_probe)[1]
    truth = exact.kneighbors(A, X, k, index.metric, int(memory_limit))[1]
    return recall_at_k(approx, truth)
