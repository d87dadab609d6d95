"""The indexed rows' own neighbours, each row left out of its own list: scikit-learn's ``kneighbors(X=None)``.

A search of the training rows for k + 1 neighbours finds each row itself (at distance 0, unless k + 1
duplicates of it come before it by index); :func:`drop_self` removes it. Where the row is not in its own
list, the first neighbour goes instead, as scikit-learn does: one of the duplicates at distance 0 stands
for the row.
"""

from __future__ import annotations

import numpy as np

from ..devices import array_module


def drop_self(distances, indices, rows):
    """(distances, indices), each (Q, k): the (Q, k + 1) answer for the indexed rows ``rows`` (Q,), each row removed.

    Parameters
    ----------
    distances : array (Q, k + 1)
        A search's distances for those queries, each row ascending.
    indices : array (Q, k + 1) int64
        A search's answer for the queries that are the indexed rows ``rows``, sorted.
    rows : array (Q,) int64
        Each query's own row number, on the answer's device.

    Returns
    -------
    distances, indices : arrays (Q, k)
        The answer without each query's own row (or without its first neighbour where the row is absent).

    Examples
    --------
    >>> d = np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 3.0]])
    >>> i = np.array([[3, 0, 5], [1, 4, 2]])
    >>> gn.knn.drop_self(d, i, np.array([0, 1]))[1]
    array([[3, 5],
           [4, 2]])
    """
    xp = array_module(indices)
    q, width = indices.shape
    hit = indices == rows[:, None]
    at = xp.where(hit.any(axis=1), hit.argmax(axis=1), 0)  # the column that goes
    cols = xp.arange(width - 1, dtype=np.int64)[None, :]
    cols = cols + (cols >= at[:, None]).astype(np.int64)
    return xp.take_along_axis(distances, cols, axis=1), xp.take_along_axis(indices, cols, axis=1)
