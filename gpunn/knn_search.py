"""The k-nearest-neighbour search core: distance blocks, bounded-memory tiles, and exact top-k merges.

Distances: "l1" (sum of absolute differences), "l2" (Euclidean), "sqeuclidean".
L2 uses ||a||^2 + ||b||^2 - 2 a.b with the product on BLAS/cuBLAS and a fused
epilogue; L1 uses a tiled kernel (see gpunn.kernels.distances). Both go through
:mod:`gpunn.ops`, which picks the kernel for the data's device.

Top-k never holds the whole Q x N matrix when it would not fit ``memory_limit``:
queries and training rows are taken in tiles, and each tile's k best merge into a
running k best (:func:`merge_best`). Neighbours come sorted by distance, ties broken
by the lower training index. The estimator (:mod:`gpunn.neighbors`) and the Dask path
(:mod:`gpunn.distributed.dask_knn`) both build on this module.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from . import ops
from .devices import PRECISIONS, array_module, device_of, on_device
from .devices import device as make_device
from .validation import check_array, check_choice, check_finite

METRICS = ("l1", "l2", "sqeuclidean")
WEIGHTS = ("uniform", "distance")
TILE_BYTES_PER_ELEMENT = 32  # a tile's distances plus the selection's temporaries (indices, masks, sums)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(limit) -> int:
    """Bytes from ``"512MB"``, ``"2GiB"``, ``"1.5 GB"`` or a plain number of bytes."""
    if isinstance(limit, (int, np.integer)) and not isinstance(limit, bool) and limit > 0:
        return int(limit)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", str(limit).lower()) if isinstance(limit, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"memory_limit: cannot read {limit!r}; use e.g. '512MB', '2GiB' or a positive number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])


def _matrix(X, name: str, dev, dtype):
    """X as a finite (N, D) float matrix on ``dev``."""
    X = check_array(name, X)
    if X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(X.shape)})")
    X = dev.asarray(X, dtype=dtype)
    check_finite(name, X)
    return X


def _distances(A, B, metric: str, b_sq=None):
    """The (len(A), len(B)) distance block on A's device. ``b_sq``: B's squared row norms, if known."""
    if metric == "l1":
        return ops.l1_distances(A, B)
    a_sq = (A * A).sum(axis=1)
    b_sq = (B * B).sum(axis=1) if b_sq is None else b_sq
    return ops.l2_epilogue(ops.matmul(A, B.T), a_sq, b_sq, metric == "l2")


def pairwise_distances(A, B, metric: str = "l2", device="auto", precision: str = "float32"):
    """Distance matrix (len(A), len(B)) between the rows of A and B, on ``device`` (NumPy or CuPy array).

    ``precision="float64"`` computes in float64, for users who need exact ties.
    """
    check_choice("metric", metric, METRICS)
    dev = make_device(device)
    dtype = check_choice("precision", precision, PRECISIONS)
    with dev:
        A, B = _matrix(A, "A", dev, dtype), _matrix(B, "B", dev, dtype)
        if A.shape[1] != B.shape[1]:
            raise ValueError(f"A has {A.shape[1]} features, B has {B.shape[1]}")
        return _distances(A, B, metric)


# --------------------------------------------------------------------------- top-k selection


def _stable_argsort(xp, a):
    """Row-wise argsort keeping equal values in their original order (CuPy's sort is always stable)."""
    return xp.argsort(a, axis=1, kind="stable") if xp is np else xp.argsort(a, axis=1)


def _smallest_k(d, k: int, offset: int):
    """The k smallest of each row of the block ``d``: (distances, indices + offset), sorted by (distance, index)."""
    xp = array_module(d)
    n = d.shape[1]
    if k >= n:
        order = _stable_argsort(xp, d)
        return xp.take_along_axis(d, order, axis=1), order + offset
    part = xp.argpartition(d, k - 1, axis=1)[:, :k]
    kth = xp.take_along_axis(d, part, axis=1).max(axis=1, keepdims=True)
    below = d < kth
    at = d == kth
    room = k - below.sum(axis=1, keepdims=True)  # how many of the values equal to the k-th fit
    chosen = below | (at & (xp.cumsum(at, axis=1) <= room))  # exactly k per row, ties by lower index
    cols = xp.nonzero(chosen)[1].reshape(d.shape[0], k)
    vals = xp.take_along_axis(d, cols, axis=1)
    order = _stable_argsort(xp, vals)
    return xp.take_along_axis(vals, order, axis=1), xp.take_along_axis(cols, order, axis=1) + offset


SMALL_TILE = 1 << 14  # distances per tile below which per-tile overhead dominates (measured: 10 bytes took 61 s, 1GB 0.3 s)


def _tiles(q: int, n: int, limit: int) -> tuple[int, int]:
    """(query rows, training rows) per tile so that a tile's work stays within ``limit`` bytes.

    Warns when the limit leaves tiles too small to be efficient (each tile costs a few kernel calls).
    """
    elements = max(1, limit // TILE_BYTES_PER_ELEMENT)
    if q * n <= elements:
        return q, n
    n_tile = n if n <= elements else max(1, elements)
    q_tile = max(1, min(q, elements // n_tile))
    if q_tile * n_tile < SMALL_TILE:
        warnings.warn(f"memory_limit of {limit} bytes allows only {q_tile} x {n_tile} distances per tile: this query "
                      f"runs {-(-q // q_tile) * -(-n // n_tile)} tiles and will be slow; allow at least "
                      f"{SMALL_TILE * TILE_BYTES_PER_ELEMENT // 1024} KiB", stacklevel=3)
    return q_tile, n_tile


@on_device(lambda Xq, *rest: device_of(Xq))
def kneighbors_of(Xq, X, k: int, metric: str, limit: int, x_sq=None):
    """(distances, indices) of the k nearest rows of X for each row of Xq, both (len(Xq), k), on their device."""
    xp = array_module(Xq)
    q, n = Xq.shape[0], X.shape[0]
    q_tile, n_tile = _tiles(q, n, limit)
    out_d, out_i = [], []
    for q0 in range(0, q, q_tile):
        A = Xq[q0:q0 + q_tile]
        best_d = best_i = None
        for n0 in range(0, n, n_tile):
            sq = None if x_sq is None else x_sq[n0:n0 + n_tile]
            d, i = _smallest_k(_distances(A, X[n0:n0 + n_tile], metric, sq), k, n0)
            best_d, best_i = (d, i) if best_d is None else merge_best([(best_d, best_i), (d, i)], k)
        out_d.append(best_d)
        out_i.append(best_i)
    return xp.concatenate(out_d), xp.concatenate(out_i)


def merge_best(parts, k: int):
    """The k best of several answers for the same queries: ``parts`` is [(distances, indices), ...].

    Each part sorted by (distance, index), the parts in ascending order of their indices: then
    a stable sort of the concatenation keeps lower indices first among equal distances, the
    tie rule of one search over all rows.
    """
    xp = array_module(parts[0][0])
    cat_d = xp.concatenate([d for d, _ in parts], axis=1)
    cat_i = xp.concatenate([i for _, i in parts], axis=1)
    order = _stable_argsort(xp, cat_d)[:, :k]
    return xp.take_along_axis(cat_d, order, axis=1), xp.take_along_axis(cat_i, order, axis=1)


# --------------------------------------------------------------------------- voting


def vote(neighbor_labels: np.ndarray, distances: np.ndarray, n_classes: int, weights: str) -> np.ndarray:
    """(Q, n_classes) vote totals from the neighbours' class indices and distances (host arrays).

    "uniform": one vote each. "distance": 1/d each, and where a row has exact matches
    (d == 0) only those vote.
    """
    if weights == "uniform":
        w = np.ones(distances.shape)
    else:
        exact = distances == 0
        with np.errstate(divide="ignore"):
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), 1.0 / distances)
    totals = np.zeros((neighbor_labels.shape[0], n_classes))
    np.add.at(totals, (np.arange(neighbor_labels.shape[0])[:, None], neighbor_labels), w)
    return totals
