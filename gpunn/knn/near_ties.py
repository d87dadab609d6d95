"""Near-ties of L2's product form, measured again in float64: float32 search that orders neighbours like float64.

Exact L2 search computes ||a||^2 + ||b||^2 - 2 a.b (kernels/knn_l2.py), whose float32 rounding error is
about eps (||a||^2 + ||b||^2): two neighbours whose squared distances differ by less than that may come
out in either order, and float32's own resolution ties others. So a search keeps k + 1 neighbours; where
two consecutive ones are within the rounding bound of each other (kernels/knn_l2.py's floor,
``L2_FLOOR_ULPS`` eps (||a||^2 + ||b||^2), with ||b|| at most ||a|| + d), both are measured again as sums
of squared differences in float64, the k + 1 are sorted again by (distance, row), and the first k kept.
Pairs farther apart than the bound are in the right order already, so a query without near-ties is left
as it was; near-ties are a few in a hundred neighbours, so the float64 work is a small fraction of the
search's. Every L2 search refines this way (exact, IVF, on a Dask cluster), so they agree on near-ties.
"""

from __future__ import annotations

import numpy as np

from ..devices import array_module
from ..kernels.knn_l2 import floor_ulps, pair_distances, sort_rows, squared_norms

def wanted(metric: str, dtype) -> bool:
    """Whether a search of this metric and dtype keeps k + 1 neighbours and refines: float32 L2 and squared L2."""
    return metric != "l1" and np.dtype(dtype) == np.float32


def refine(A, d, i, rows, take_sqrt: bool, k: int, a_sq=None, b_sq=None):
    """(distances, indices), each (Q, k): the (Q, k') answer of an L2 search (k' = k + 1, or k where N = k) with its
    near-ties measured again in float64 and put in order.

    Parameters
    ----------
    A : array (Q, D) float32
        The queries.
    d, i : arrays (Q, k')
        The search's distances (square-rooted for L2) and rows, sorted by (distance, row).
    rows : callable
        ``rows(ids)`` for ids (M,) int64: (R, at), a matrix R (., D) on A's device holding row ``ids[m]`` at
        ``R[at[m]]`` (the searched matrix itself and the ids, or the rows gathered).
    take_sqrt : bool
        L2 (True) or squared L2 (False).
    k : int
    a_sq : array (Q,) or None, default None
        The queries' squared norms, where the search has them.
    b_sq : array (Q, k') or None, default None
        The neighbours' squared norms, where known: a tighter bound (else ||b|| <= ||a|| + d bounds it).

    Returns
    -------
    distances, indices : arrays (Q, k)
    """
    xp = array_module(d)
    sq = d * d if take_sqrt else d
    a_sq = squared_norms(A) if a_sq is None else a_sq
    if b_sq is None:
        b_sq = (xp.sqrt(a_sq)[:, None] + (d if take_sqrt else xp.sqrt(d))) ** 2
    bound = floor_ulps(d.dtype) * (a_sq[:, None] + b_sq)
    near_pair = (sq[:, 1:] - sq[:, :-1]) <= xp.maximum(bound[:, 1:], bound[:, :-1])
    near = xp.zeros(d.shape, bool)
    near[:, 1:] |= near_pair
    near[:, :-1] |= near_pair
    queries = xp.flatnonzero(near.any(axis=1))
    if queries.size == 0:
        return d[:, :k], i[:, :k]
    sub_near = near[queries]
    at, cols = xp.nonzero(sub_near)
    R, where = rows(i[queries[at], cols])
    exact = pair_distances(A, queries[at], R, where)
    sub_sq = sq[queries].astype(np.float64)
    sub_sq[at, cols] = exact
    sub_d = d[queries]
    sub_d[at, cols] = (xp.sqrt(exact) if take_sqrt else exact).astype(d.dtype)
    _, sub_d, sub_i = sort_rows(sub_sq, sub_d, i[queries])  # by (float64 distance, row)
    d, i = d.copy(), i.copy()
    d[queries], i[queries] = sub_d, sub_i
    return d[:, :k], i[:, :k]
