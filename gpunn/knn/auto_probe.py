"""Choosing n_probe by measurement: the smallest n_probe whose recall@k on held-out training rows reaches a target.

Held out, leave-one-out: up to ``n_queries`` training rows, drawn at random, are searched as queries for
k + 1 neighbours and each is removed from its own answer (:func:`gpunn.knn.leave_one_out.drop_self`),
so a row is a query against all the other rows, as a new point from the same data would be. Their exact
neighbours (exact search, the row left out) are the truth.

How: the truth rows' lists and each query's ranking of the lists give, in one pass, the recall every
n_probe would reach if a query found every true neighbour in the lists it probes (:func:`predicted_recall`).
The smallest n_probe predicted to reach the target is then searched for real, and stepped up (or down)
until the measured recall@k is the smallest n_probe at or above the target; that measured recall is
what is reported. An index that cannot reach the target (near-ties that float rounding orders another
way, a target of 1.0) stops at n_probe = n_lists with the recall measured there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..devices import array_module, to_numpy
from ..validation import check_number
from . import exact
from .kmeans import assign
from .leave_one_out import drop_self
from .recall import recall_at_k, sample_rows

N_QUERIES = 1000  # held-out rows measured: recall to about +-0.01 at 0.95 (binomial, k = 10)
MIN_QUERIES = 10  # fewer held-out rows measure nothing


@dataclass(frozen=True)
class ProbeChoice:
    """What :func:`tune_n_probe` chose: ``n_probe`` and its ``recall`` (recall@k) on ``n_queries`` held-out rows.

    Parameters
    ----------
    n_probe : int
        The smallest n_probe whose measured recall reached the target, or n_lists where none did.
    recall : float
        recall@k measured at ``n_probe``, in [0, 1].
    n_queries : int
        The held-out rows it was measured on.

    Examples
    --------
    >>> choice = gn.knn.ProbeChoice(n_probe=3, recall=0.96, n_queries=20)
    >>> choice
    ProbeChoice(n_probe=3, recall=0.96, n_queries=20)
    >>> choice.n_probe
    3
    """

    n_probe: int
    recall: float
    n_queries: int


def check_target(target_recall) -> float:
    """target_recall as a float in (0, 1] (a ValueError or TypeError naming it)."""
    return check_number("target_recall", target_recall, low=0.0, high=1.0, low_open=True)


def held_out(n: int, k: int, n_queries: int, random_state=None) -> np.ndarray:
    """Sorted numbers of up to ``n_queries`` of n training rows to measure recall@k on (a ValueError naming n_probe).

    Each one is a query against the other n - 1 rows, which must hold k neighbours.
    """
    if n < max(MIN_QUERIES, k + 1):
        raise ValueError(f"n_probe='auto' measures recall@{k} on held-out training rows, each searched against the "
                         f"others: it needs at least {max(MIN_QUERIES, k + 1)} rows, got n_samples={n}; give n_probe "
                         "as a number")
    return sample_rows(n, n_queries, random_state)


def predicted_recall(ranking, truth_lists) -> np.ndarray:
    """(n_lists,) recall@k at n_probe = 1 .. n_lists, were every true neighbour in a probed list found.

    ``ranking`` (Q, n_lists): each query's lists, nearest first; ``truth_lists`` (Q, k): the list of each of
    its exact neighbours (host arrays).
    """
    q, n_lists = ranking.shape
    rank_of = np.empty_like(ranking)
    np.put_along_axis(rank_of, ranking, np.arange(n_lists)[None, :].repeat(q, axis=0), axis=1)
    needed = np.take_along_axis(rank_of, truth_lists, axis=1)  # probes before each neighbour's list: rank + 1
    return np.cumsum(np.bincount(needed.ravel(), minlength=n_lists)) / truth_lists.size


def tune_n_probe(index, queries, self_rows, truth, truth_vectors, k: int, target_recall: float,
                 limit: int = 1 << 30) -> ProbeChoice:
    """The smallest n_probe whose recall@k on held-out rows reaches ``target_recall``, with that recall.

    Parameters
    ----------
    index : IVFIndex or DaskIVFIndex
        Fitted; ``search(Xq, k, n_probe)``, ``centroids_``, ``metric`` and ``n_lists_`` are used.
    queries : array (Q, D)
        The held-out rows, on the index's device (host NumPy for a Dask index).
    self_rows : array (Q,) int64
        Their row numbers, on the same device.
    truth : numpy.ndarray (Q, k) int64
        Their exact k nearest rows, each row left out.
    truth_vectors : array (Q k, D)
        The rows ``truth.ravel()`` names, on the centroids' device.
    k : int
        Neighbours per query that recall@k counts (the searches ask for k + 1 and drop the query's own row).
    target_recall : float in (0, 1]
        The recall@k to reach (not checked here; the estimator checks it).
    limit : int, default 1 << 30
        Bytes of temporaries for the ranking of the lists.

    Returns
    -------
    ProbeChoice
        The smallest n_probe whose measured recall@k is at least ``target_recall``, that recall and the
        number of held-out rows; where even n_lists falls short, n_lists and the recall measured there.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32)
    >>> index = gn.knn.IVFIndex(n_lists=6, random_state=0).fit(X)
    >>> rows = np.arange(0, 60, 3)                              # 20 held-out rows
    >>> answer = gn.knn.kneighbors(X[rows], X, 6, "l2", 1 << 20)
    >>> truth = gn.knn.drop_self(*answer, rows)[1]              # their 5 nearest other rows
    >>> gn.knn.tune_n_probe(index, X[rows], rows, truth, X[truth.ravel()], 5, 0.9)
    ProbeChoice(n_probe=3, recall=0.94, n_queries=20)
    """
    centroids = index.centroids_
    xp = array_module(centroids)
    n_lists = index.n_lists_
    truth = to_numpy(truth)
    truth_lists = to_numpy(assign(xp.ascontiguousarray(truth_vectors), centroids, index.metric, limit))
    ranking = to_numpy(exact.kneighbors(xp.asarray(queries), centroids, n_lists, index.metric, limit, refine=False)[1])
    curve = predicted_recall(ranking, truth_lists.reshape(truth.shape))
    measured = {}

    def recall(p: int) -> float:
        if p not in measured:
            found = drop_self(*index.search(queries, k + 1, p), self_rows)[1]
            measured[p] = recall_at_k(found, truth)
        return measured[p]

    # Recall grows with n_probe (more lists, a superset of candidates), so the smallest n_probe that reaches
    # the target is found by bisection, starting from the prediction: usually the prediction and the one below.
    guess = min(n_lists, int(np.searchsorted(curve, target_recall - 1e-12)) + 1)
    if recall(guess) >= target_recall:
        low, high = 0, guess  # recall(low) < target (n_probe 0 finds nothing), recall(high) >= target
        if guess > 1 and recall(guess - 1) < target_recall:
            low = guess - 1
    else:
        low, step = guess, 1  # gallop up: near ties and rounding put a few neighbours later than predicted
        while low + step < n_lists and recall(low + step) < target_recall:
            low, step = low + step, 2 * step
        high = min(n_lists, low + step)
        if recall(high) < target_recall:  # the target is out of reach: all lists give what they can
            return ProbeChoice(n_lists, recall(n_lists), int(truth.shape[0]))
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if recall(mid) >= target_recall else (mid, high)
    return ProbeChoice(high, recall(high), int(truth.shape[0]))
