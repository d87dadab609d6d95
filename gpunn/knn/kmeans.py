"""k-means on the rows' device, with gpunn's own exact search for the assignments: an IVF index's coarse centroids.

Lloyd's iterations, seeded (``random_state``): at most ``max_points_per_cluster`` x n_clusters rows are
sampled (as FAISS does, 256 per centroid by default), the first centroids are distinct sampled rows, and
each iteration assigns every sampled row to its nearest centroid (:func:`gpunn.knn.exact.kneighbors`,
k = 1, ties to the lower centroid) and moves each centroid to its rows' centre: the mean for L2, the
coordinate-wise median for L1 (the point that minimises the sum of L1 distances). A centroid left with
no rows restarts at a random row of the largest cluster, so every list gets rows.
"""

from __future__ import annotations

import numpy as np

from ..devices import array_module, to_numpy
from ..kernels.cluster_sums import cluster_sums
from . import exact

N_ITER = 10  # FAISS's IVF training runs 10 iterations as well
MAX_POINTS_PER_CLUSTER = 256


def assign(X, centroids, metric: str, limit: int):
    """(N,) int64: the nearest centroid of each row of X (ties to the lower centroid), on X's device."""
    xp = array_module(X)
    if xp is np:
        return exact.kneighbors(X, centroids, 1, metric, limit, refine=False)[1][:, 0]
    # CUDA: an argmin over each block of distances (a reduction; its first minimum is the lower centroid).
    # The selection kernel would give each row a block of threads to keep a list of one.
    rows = max(1, limit // max(1, 2 * centroids.shape[0] * X.itemsize))
    c_sq = None if metric == "l1" else (centroids * centroids).sum(axis=1)
    labels = xp.empty(X.shape[0], np.int64)
    for r0 in range(0, X.shape[0], rows):
        labels[r0:r0 + rows] = xp.argmin(exact.distances(X[r0:r0 + rows], centroids, metric, c_sq), axis=1)
    return labels


def training_rows(n: int, n_clusters: int, max_points_per_cluster: int, rng: np.random.Generator):
    """Sorted indices of the rows k-means trains on: ``max_points_per_cluster * n_clusters`` of n drawn by ``rng``,
    or None when n is no more than that (all rows train).

    Separate from :func:`lloyd` so that a sample gathered elsewhere (a Dask cluster's rows,
    :mod:`gpunn.distributed.dask_ivf`) is the sample one process would draw from the same generator.
    """
    if n <= max_points_per_cluster * n_clusters:
        return None
    return np.sort(rng.choice(n, max_points_per_cluster * n_clusters, replace=False))


def kmeans(X, n_clusters: int, metric: str = "l2", n_iter: int = N_ITER, max_points_per_cluster: int = MAX_POINTS_PER_CLUSTER,
           random_state=None, limit: int = 1 << 30, init=None):
    """(n_clusters, D) centroids of the rows of X (N, D), C-contiguous, on X's device and in its dtype.

    Lloyd's iterations on a sample of the rows: each sampled row is assigned to its nearest centroid, and
    each centroid moves to its rows' mean (L2, sqeuclidean) or coordinate-wise median (L1). A centroid
    left with no rows restarts at a random row of the largest cluster. The arguments are not checked
    (the IVF index checks its own).

    Parameters
    ----------
    X : array of shape (N, D), float32 or float64 (NumPy or CuPy)
        The rows, finite.
    n_clusters : int
        The number of centroids, 1 <= n_clusters <= N.
    metric : {"l2", "l1", "sqeuclidean"}, default="l2"
        The distance rows are assigned by; "l1" also moves the centroids to medians.
    n_iter : int, default=10
        Lloyd's iterations (0: the first centroids are returned).
    max_points_per_cluster : int, default=256
        At most ``max_points_per_cluster * n_clusters`` rows, drawn at random, train (FAISS's rule); all
        rows where N is no more than that.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the sample and the first centroids: the same seed gives the same centroids.
    limit : int, default=1 << 30
        Bytes of temporaries each assignment's search may hold.
    init : array of shape (n_clusters, D) or None, default=None
        The first centroids; None: distinct sampled rows drawn at random (as FAISS does; k-means++ would
        spread them better, at the cost of n_clusters passes over the rows).

    Returns
    -------
    array of shape (n_clusters, D)
        The centroids, C-contiguous, in X's dtype and on its device.

    Examples
    --------
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], np.float64)
    >>> gn.knn.kmeans(X, 2, random_state=0)
    array([[ 0.3333,  0.3333],
           [10.3333, 10.3333]])
    >>> gn.knn.kmeans(X, 2, "l1", random_state=0)          # medians
    array([[ 0.,  0.],
           [10., 10.]])
    """
    xp = array_module(X)
    rng = np.random.default_rng(random_state)
    rows = training_rows(X.shape[0], n_clusters, max_points_per_cluster, rng)
    return lloyd(X if rows is None else X[xp.asarray(rows)], n_clusters, metric, n_iter, rng, limit, init)


def lloyd(X, n_clusters: int, metric: str, n_iter: int, rng: np.random.Generator, limit: int, init=None):
    """Lloyd's iterations on all rows of X (N, D), from ``init`` or from n_clusters distinct rows drawn by ``rng``."""
    xp = array_module(X)
    if init is None:
        init = X[xp.asarray(np.sort(rng.choice(X.shape[0], n_clusters, replace=False)))]
    centroids = xp.ascontiguousarray(xp.asarray(init, dtype=X.dtype))
    for _ in range(n_iter):
        labels = assign(X, centroids, metric, limit)
        counts = xp.bincount(labels, minlength=n_clusters)
        centroids = _centres(X, labels, counts, centroids, metric)
        _restart_empty(X, labels, counts, centroids, rng)
    return centroids


def _centres(X, labels, counts, previous, metric: str):
    """Each cluster's centre (mean for L2, median for L1); a cluster with no rows keeps its previous centroid."""
    xp = array_module(X)
    if metric != "l1":
        sums = cluster_sums(X, labels, previous.shape[0])
        filled = counts > 0
        return xp.ascontiguousarray(xp.where(filled[:, None], sums / xp.maximum(counts, 1)[:, None].astype(X.dtype),
                                             previous).astype(X.dtype))
    order = xp.argsort(labels, kind="stable") if xp is np else xp.argsort(labels)
    rows = X[order]
    ends = np.cumsum(to_numpy(counts))
    out = previous.copy()
    start = 0
    for c, end in enumerate(ends.tolist()):
        if end > start:
            out[c] = xp.median(rows[start:end], axis=0)
        start = end
    return out


def _restart_empty(X, labels, counts, centroids, rng) -> None:
    """In place: each centroid with no rows moves to a random row of the largest cluster."""
    empty = np.flatnonzero(to_numpy(counts) == 0)
    if len(empty) == 0:
        return
    host_labels = to_numpy(labels).copy()
    sizes = np.bincount(host_labels, minlength=centroids.shape[0])
    for c in empty.tolist():
        largest = int(np.argmax(sizes))
        members = np.flatnonzero(host_labels == largest)
        pick = int(rng.choice(members))
        centroids[c] = X[pick]
        host_labels[pick] = c  # the row moves with it, so the next empty centroid picks another
        sizes[largest] -= 1
        sizes[c] += 1
