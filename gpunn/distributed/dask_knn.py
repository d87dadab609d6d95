"""k-nearest neighbours on a Dask cluster: each training chunk searched where it lives, the results merged exactly.

The training rows are a row-chunked dask array kept on the workers (``persist``). A query set is
taken in tiles; for each tile every chunk's task finds the chunk's k best rows with gpunn's own
tiled kernels (:func:`gpunn.knn_search.kneighbors_of`) on the worker's device (its GPU under
``dask-cuda``), within ``memory_limit``, and returns k distances and k global row indices per
query. The client merges the chunks' answers.

Exact, with one process's order: each chunk's answer is sorted by (distance, index), the same
rule as one process; the chunks are concatenated in row order, so among equal distances lower
global rows come first, and a stable sort keeps them first. What travels per query tile: the
tile (q x D values) to each worker holding a chunk, and 2 k values per query and chunk back.
"""

from __future__ import annotations

import sys

import numpy as np

from ..devices import device as make_device
from ..devices import to_numpy
from ..knn_search import kneighbors_of, merge_best

QUERY_TILE_BYTES = 64 << 20  # a query tile sent to the workers: at most this many bytes of queries


def is_dask_array(a) -> bool:
    """True for a ``dask.array.Array`` (without importing Dask when it is not in use)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(a, da.Array)


def training_rows(X, y):
    """(X, y) checked for the cluster: X a 2-D dask array chunked by rows only, y's row chunks the same as X's.

    Returns X (persisted on the cluster, one chunk across the columns), y as a NumPy array
    (the labels are small and every vote needs them), and each chunk's first global row.
    """
    import dask.array as da

    if not is_dask_array(X):
        raise TypeError(f"X must be a dask array here, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array (samples, features), got {X.ndim}-D with shape {X.shape}")
    if is_dask_array(y) and y.chunks[0] != X.chunks[0]:
        raise ValueError(f"X and y must be chunked alike along the rows: X has row chunks {X.chunks[0]}, "
                         f"y has {y.chunks[0]} (rechunk one to the other's)")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # a task needs whole rows
    y = np.asarray(y.compute() if is_dask_array(y) else y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
    return X.persist(), y, offsets


def _chunk_best(queries, rows, k: int, metric: str, limit: int, device: str, dtype: str, offset: int):
    """On a worker: the k best of one training chunk for each query, as host arrays (distances, global indices)."""
    dev = make_device(device)
    A, B = dev.asarray(queries, dtype=dtype), dev.asarray(rows, dtype=dtype)
    x_sq = None if metric == "l1" else (B * B).sum(axis=1)
    limit = min(limit, dev.free_memory() // 2)
    d, i = kneighbors_of(A, B, min(k, B.shape[0]), metric, limit, x_sq)
    return to_numpy(d), to_numpy(i) + offset


def kneighbors(X, offsets, queries, k: int, metric: str, limit: int, device: str, dtype: str):
    """(distances, indices), each (len(queries), k) NumPy, of the k nearest rows of the dask array X.

    ``queries``: NumPy or a dask array (its row blocks are fetched one tile at a time).
    """
    import dask

    blocks = X.to_delayed().ravel()
    tile = max(1, QUERY_TILE_BYTES // (8 * X.shape[1]))
    out_d, out_i = [], []
    for part in _query_tiles(queries, tile):
        shared = dask.delayed(part, pure=True)  # one key: sent once to each worker that needs it
        tasks = [dask.delayed(_chunk_best, pure=True)(shared, block, k, metric, limit, device, dtype, int(offset))
                 for block, offset in zip(blocks, offsets)]
        d, i = merge_best(dask.compute(*tasks), k)
        out_d.append(d)
        out_i.append(i)
    return np.concatenate(out_d), np.concatenate(out_i)


def _query_tiles(queries, rows: int):
    """The query set in tiles of at most ``rows`` rows, as NumPy arrays (a dask array's blocks computed in turn)."""
    if is_dask_array(queries):
        for block in queries.rechunk({0: rows, 1: -1}).to_delayed().ravel():
            yield np.asarray(block.compute())
        return
    for lo in range(0, queries.shape[0], rows):
        yield queries[lo:lo + rows]
