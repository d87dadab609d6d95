"""k-nearest neighbours on a Dask cluster: each training chunk searched where it lives, the results merged exactly.

The training rows are a row-chunked dask array kept on the workers (``persist``). A query set is
taken in tiles; for each tile every chunk's task finds the chunk's k best rows with gpunn's own
blocked exact search (:func:`gpunn.knn.exact.kneighbors`) on the worker's device (its GPU under
``dask-cuda``), within ``memory_limit``, and returns k distances and k global row indices per
query. The client merges the chunks' answers.

Exact, with one process's order: each chunk's answer is sorted by (distance, index), the same
rule as one process; the chunks are concatenated in row order, so among equal distances lower
global rows come first, and a stable sort keeps them first. Float32 L2 keeps one neighbour more and
measures the merged answer's near-ties again in float64 (:mod:`gpunn.knn.near_ties`), fetching just
those rows. What travels per query tile: the
tile (q x D values) to each worker holding a chunk, and 2 k values per query and chunk back.
"""

from __future__ import annotations

import sys

import numpy as np

from ..devices import device as make_device
from ..devices import to_numpy
from ..knn import exact, near_ties

QUERY_TILE_BYTES = 64 << 20  # a query tile sent to the workers: at most this many bytes of queries


def is_dask_array(a) -> bool:
    """True for a ``dask.array.Array`` (without importing Dask when it is not in use)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(a, da.Array)


def training_rows(X, y, dtype: str = "float32"):
    """(X, y, offsets) checked for the cluster: X a 2-D dask array of finite numbers, y's row chunks the same as X's.

    Returns X (as ``dtype``, one chunk across the columns, persisted on the cluster), y as a
    NumPy array (the labels are small and every vote needs them), and each chunk's first row.
    """
    X = _dask_matrix(X, "X")
    if is_dask_array(y) and y.chunks[0] != X.chunks[0]:
        raise ValueError(f"X and y must be chunked alike along the rows: X has row chunks {X.chunks[0]}, "
                         f"y has {y.chunks[0]} (rechunk one to the other's)")
    y = to_numpy(y.compute() if is_dask_array(y) else y)
    if y.shape[:1] != (X.shape[0],):
        raise ValueError(f"y must have one label per row of X ({X.shape[0]}), got shape {tuple(y.shape)}")
    X = X.astype(dtype).persist()
    _check_finite(X, "X")
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
    return X, y, offsets


def queries(X, n_features: int):
    """Query rows for a classifier fitted on the cluster: a NumPy-like or dask (n_queries, n_features) matrix."""
    if is_dask_array(X):
        X = _dask_matrix(X, "X")
    else:
        X = to_numpy(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D matrix of numbers, got {X.dtype} of shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the classifier was fitted with {n_features}")
    _check_finite(X, "X")
    return X


def _dask_matrix(X, name: str):
    """A 2-D dask array of numbers, chunked by rows only (rechunked across the columns when needed)."""
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D dask array (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    return X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X  # a task needs whole rows


def _check_finite(X, name: str) -> None:
    import dask.array as da

    finite = da.isfinite(X).all() if is_dask_array(X) else np.isfinite(X).all()
    if not bool(finite.compute() if is_dask_array(finite) else finite):
        raise ValueError(f"{name} contains NaN or infinite values")


def _chunk_best(queries, rows, k: int, metric: str, limit: int, device: str, dtype: str, offset: int):
    """On a worker: the k best of one training chunk for each query, as host arrays (distances, global indices)."""
    dev = make_device(device)
    with dev:  # the worker's GPU is current while its chunk is searched
        A, B = dev.asarray(queries, dtype=dtype), dev.asarray(rows, dtype=dtype)
        x_sq = None if metric == "l1" else exact.squared_norms(B)
        limit = min(limit, dev.free_memory() // 2)
        d, i = exact.kneighbors(A, B, min(k, B.shape[0]), metric, limit, x_sq)
        return to_numpy(d), to_numpy(i) + offset


def kneighbors(X, offsets, queries, k: int, metric: str, limit: int, device: str, dtype: str):
    """(distances, indices), each (len(queries), k) NumPy, of the k nearest rows of the dask array X.

    ``queries``: NumPy or a dask array (its row blocks are fetched one tile at a time).
    """
    import dask

    blocks = X.to_delayed().ravel()
    tile = max(1, min(QUERY_TILE_BYTES, limit) // (8 * X.shape[1]))  # a query tile within each worker's limit
    refining = near_ties.wanted(metric, dtype)
    kept = min(k + 1, X.shape[0]) if refining else k  # one more for near-ties, measured again here from X's rows
    out_d, out_i = [], []
    for part in _query_tiles(queries, tile):
        shared = dask.delayed(part, pure=True)  # one key: sent once to each worker that needs it
        tasks = [dask.delayed(_chunk_best, pure=True)(shared, block, kept, metric, limit, device, dtype, int(offset))
                 for block, offset in zip(blocks, offsets)]
        d, i = exact.merge_best(dask.compute(*tasks), kept)
        if refining:
            d, i = near_ties.refine(np.asarray(part, dtype=dtype), d, i, rows_of(X), metric == "l2", k)
        out_d.append(d)
        out_i.append(i)
    return np.concatenate(out_d), np.concatenate(out_i)


def rows_of(X):
    """``rows(ids)`` for :func:`gpunn.knn.near_ties.refine`: the rows of the dask array X numbered ``ids``, each
    fetched once from the workers (host NumPy), and where each id's row is among them."""

    def rows(ids):
        wanted, back = np.unique(to_numpy(ids), return_inverse=True)
        return np.asarray(X[wanted].compute()), back.astype(np.int64)

    return rows


def _query_tiles(queries, rows: int):
    """The query set in tiles of at most ``rows`` rows, as NumPy arrays (a dask array's blocks computed in turn)."""
    if is_dask_array(queries):
        for block in queries.rechunk({0: rows, 1: -1}).to_delayed().ravel():
            yield to_numpy(block.compute())
        return
    for lo in range(0, queries.shape[0], rows):
        yield queries[lo:lo + rows]
