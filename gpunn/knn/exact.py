"""Exact k-nearest-neighbour search in bounded memory, each query's k best kept as the distances are made.

Distances: "l1" (sum of absolute differences), "l2" (Euclidean), "sqeuclidean". The queries and the
training rows are taken in blocks (:func:`plan`); for each pair of blocks

- L2: the product of the blocks on BLAS / cuBLAS (:func:`gpunn.ops.matmul`), then one pass that turns it
  into distances and keeps each query's k best (kernels/knn_l2.py); in float32, k + 1 of them, whose
  near-ties are measured again in float64 at the end (``gpunn/knn/near_ties.py``);
- L1: one kernel that computes the distances in registers (float32 terms summed into float64 totals)
  and keeps the k best (kernels/knn_l1.py); on CUDA a distance block, then the selection kernel
  (kernels/topk.py).

A block's distances are made and consumed while they are in cache (CPU) and never sorted. Neighbours
come sorted by distance, ties broken by the lower training index. What a search holds besides its input
and output (a product block, the packed rows of a training block, the running k best) stays within
``memory_limit``. The estimator (:mod:`gpunn.neighbors`), the IVF index (:mod:`gpunn.knn.ivf`), k-means
and the Dask path (:mod:`gpunn.distributed.dask_knn`) all search through :func:`kneighbors`.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numba
import numpy as np

from .. import ops
from ..devices import PRECISIONS, array_module, device_of, on_device
from ..devices import device as make_device
from ..kernels import blas_pool, knn_l1, knn_l2
from ..kernels.knn_l2 import squared_norms
from ..kernels.launch import PARALLEL_MIN_SIZE, cpu_threads
from ..kernels.topk import Best, Buffers, capacity_for
from ..validation import check_array, check_choice, check_finite
from . import near_ties

METRICS = ("l1", "l2", "sqeuclidean")


def _product(A, B, out=None):
    """A @ B.T for the L2 distances; on the CPU, OpenBLAS's jobs run on Numba's threads (kernels/blas_pool.py).

    The selection that follows each product runs on Numba's threads: OpenBLAS's own would spin beside it
    for about 0.1 s after the product, taking a core from it. Measured on a 2-core Xeon (medians of 7
    interleaved rounds), 500 x 5,000 x 3,072: k = 100 67 ms shared against 76 on OpenBLAS's own threads,
    k = 1 and 10 within 2% of each other; narrower rows gain more (2,000 x 100,000 x 128: 228 against 520 ms).
    """
    if type(A) is np.ndarray:
        with blas_pool.shared_threads():
            return ops.matmul(A, B.T, out=out)
    return ops.matmul(A, B.T, out=out)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

# L2 block sizes, measured on 2 cores against FAISS in one interleaved run (k=5, float32): a product block
# of 1024 x 4096 took 236 ms at 2000 x 100000 x 128 (1024 x 2048: 257, 512 x 2048: 282; FAISS 356) and
# 385 ms at 10000 x 50000 x 64 (1024 x 2048: 438; FAISS 597). With many features one product block of up to
# CPU_PRODUCT_ELEMENTS: at 500 x 5000 x 3072 (k = 1, 10, 100; fastest of 11-15 interleaved rounds, 2 threads)
# one 500 x 5000 block took 58.8, 53-54, 66.1 ms, 500 x 1000 blocks 62.4, 57-58, 68.7 ms (FAISS, whose blocks
# are 1024 rows: 65.8, 58-62, 65.7): fewer GEMM calls pack the queries fewer times and wake the threads less.
CPU_QUERY_BLOCK = 1024
CPU_PRODUCT_ELEMENTS = 1 << 22
CPU_ROW_BLOCK_BYTES = 64 << 20  # L2: training rows per block at most this many bytes (or 1024 rows)
CPU_PACK_BYTES = 8 << 20  # L1: training rows packed per kernel call
CUDA_QUERY_BLOCK = 8192
CUDA_BLOCK_ELEMENTS = 1 << 26  # a CUDA distance block: 256 MB of float32 at most
MIN_COLUMNS_PER_PART = 256  # a query's columns are split into parts no narrower than this
SMALL_TILE = 1 << 14  # distances per block below which the per-block overhead dominates
# Products (q n d multiply-adds) below which a search runs its kernels on the calling thread: an IVF index's
# ranking of its lists, k-means' assignments. Such a search takes a millisecond or two; waking a thread pool
# costs tens of microseconds on a quiet machine and up to a scheduler tick (4 ms) on a busy one.
SERIAL_WORK = 1 << 27


def parse_memory(limit) -> int:
    """Bytes from ``"512MB"``, ``"2GiB"``, ``"1.5 GB"`` or a plain number of bytes.

    Parameters
    ----------
    limit : int or str
        A positive integer number of bytes, or a string: a positive number with an optional unit, case
        ignored: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).

    Returns
    -------
    int
        The number of bytes (a fractional count is truncated).

    Raises
    ------
    ValueError
        If ``limit`` is neither a positive int nor such a string (a float or a bool is refused).

    Examples
    --------
    >>> gn.knn.parse_memory("512MB"), gn.knn.parse_memory("2GiB"), gn.knn.parse_memory("1.5 GB")
    (512000000, 2147483648, 1500000000)
    >>> gn.knn.parse_memory(4096)
    4096
    """
    if isinstance(limit, (int, np.integer)) and not isinstance(limit, bool) and limit > 0:
        return int(limit)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", str(limit).lower()) if isinstance(limit, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"memory_limit: cannot read {limit!r}; use e.g. '512MB', '2GiB' or a positive number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])


# --------------------------------------------------------------------------- distance matrices



def _matrix(X, name: str, dev, dtype):
    """X as a finite, C-contiguous (N, D) float matrix on ``dev``."""
    X = check_array(name, X)
    if X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(X.shape)})")
    X = dev.xp.ascontiguousarray(dev.asarray(X, dtype=dtype))
    check_finite(name, X)
    return X


def distances(A, B, metric: str, b_sq=None):
    """The (len(A), len(B)) distance matrix of two C-contiguous matrices on one device. ``b_sq``: B's squared norms."""
    if metric == "l1":
        return knn_l1.l1_distances(A, B)
    a_sq = squared_norms(A)
    b_sq = squared_norms(B) if b_sq is None else b_sq
    return knn_l2.l2_distances(_product(A, B), a_sq, b_sq, metric == "l2")


def pairwise_distances(A, B, metric: str = "l2", device="auto", precision: str = "float32"):
    """Distance matrix (len(A), len(B)) between the rows of A and B, on ``device`` (NumPy or CuPy array).

    Parameters
    ----------
    A : array_like of shape (M, D)
        Rows of numbers (NumPy, CuPy, or anything ``numpy.asarray`` takes), finite; copied to ``device``
        in ``precision``.
    B : array_like of shape (N, D)
        The same, with as many features as ``A``.
    metric : {"l2", "l1", "sqeuclidean"}, default="l2"
        Euclidean distance, sum of absolute differences, or squared Euclidean distance.
    device : str or Device, default="auto"
        Where to compute: "cpu", "cuda", "cuda:N", or "auto" (CUDA device 0 where usable, else the CPU).
    precision : {"float32", "float64"}, default="float32"
        The dtype of the computation and of the result; "float64" for users who need exact ties.

    Returns
    -------
    array of shape (M, N), float32 or float64
        Entry (a, b) is the distance between ``A[a]`` and ``B[b]``: a NumPy array on the CPU, a CuPy
        array on a GPU.

    Raises
    ------
    ValueError
        If ``metric``, ``device`` or ``precision`` is unknown, if ``A`` or ``B`` is not a finite matrix
        with at least one row and one column, or if their numbers of features differ.

    Examples
    --------
    >>> A = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> B = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
    >>> gn.neighbors.pairwise_distances(A, B, device="cpu")
    array([[0.    , 1.4142, 3.    ],
           [5.    , 3.6056, 4.    ]], dtype=float32)
    >>> gn.neighbors.pairwise_distances(A, B, "l1", device="cpu", precision="float64")
    array([[0., 2., 3.],
           [7., 5., 4.]])
    """
    check_choice("metric", metric, METRICS)
    dev = make_device(device)
    dtype = check_choice("precision", precision, PRECISIONS)
    with dev:
        A, B = _matrix(A, "A", dev, dtype), _matrix(B, "B", dev, dtype)
        if A.shape[1] != B.shape[1]:
            raise ValueError(f"A has {A.shape[1]} features, B has {B.shape[1]}")
        return distances(A, B, metric)


# --------------------------------------------------------------------------- the block plan


@dataclass(frozen=True)
class Plan:
    """How one search is cut: ``queries`` per query block, ``rows`` per training block, ``parts`` per query."""

    queries: int
    rows: int
    parts: int

    def blocks(self, q: int, n: int) -> int:
        return -(-q // self.queries) * -(-n // self.rows)


def plan(q: int, n: int, d: int, k: int, dtype, metric: str, limit: int, on_cpu: bool) -> Plan:
    """The block sizes for ``q`` queries against ``n`` rows of ``d`` features, k best, within ``limit`` bytes.

    Counted against the limit: the product block (L2) or distance block (CUDA L1) or packed rows (CPU L1),
    and the running k best. Warns when the limit leaves blocks too small to be efficient.
    """
    size = np.dtype(dtype).itemsize
    key = 8 if on_cpu and metric == "l1" else size  # CPU L1 keeps float64 keys (kernels/knn_l1.py)
    # one query's k best: keys, raws (CPU), indices; CPU L2 buffers hold more (kernels/topk.py's Buffers)
    held = capacity_for(k) if on_cpu and metric != "l1" else k
    entry = held * (2 * key + 8) if on_cpu else k * (size + 8)
    threads = numba.get_num_threads() if on_cpu else 1
    packed_l1 = on_cpu and metric == "l1"
    if on_cpu:  # few rows (k-means' centroids): more queries per block, fewer blocks
        qb = min(q, max(CPU_QUERY_BLOCK, CPU_PRODUCT_ELEMENTS // max(n, 1))) if not packed_l1 else q
        nb = min(n, max(256, CPU_PRODUCT_ELEMENTS // max(qb, 1)), max(1024, CPU_ROW_BLOCK_BYTES // (d * size))) \
            if not packed_l1 else min(n, max(knn_l1.PANELS * 64 // size, CPU_PACK_BYTES // (d * size)))
    else:
        qb = min(q, CUDA_QUERY_BLOCK)
        nb = min(n, max(1024, CUDA_BLOCK_ELEMENTS // max(qb, 1)))

    def parts_of(qb, nb):
        if not on_cpu:
            return 1
        tasks = -(-qb // knn_l1.QUERIES) if packed_l1 else qb  # the kernels' parallel units per part
        return max(1, min(-(-4 * threads // tasks), nb // MIN_COLUMNS_PER_PART))

    def need(qb, nb):
        block = nb * d * size if packed_l1 else qb * nb * size
        return (block + parts_of(qb, nb) * qb * entry) * 4 // 3

    def evened(qb, nb):  # the same count of blocks, of even sizes
        return -(-q // -(-q // qb)), -(-n // -(-n // nb))

    wanted = math.prod(evened(qb, nb))
    budget = limit * 3 // 4  # the rest for the output and small temporaries (norms, index arrays)
    while qb > 1 and parts_of(qb, nb) * qb * entry > budget // 2:  # the k best take at most half
        qb = max(1, qb // 2)
    room = budget - parts_of(qb, nb) * qb * entry
    nb = max(1, min(nb, room // (d * size if packed_l1 else qb * size)))
    qb, nb = evened(qb, nb)
    result = Plan(qb, nb, parts_of(qb, nb))
    if qb * nb < min(SMALL_TILE, wanted):  # the limit, not the data, made the blocks this small
        warnings.warn(f"memory_limit of {limit} bytes allows only {qb} x {nb} distances per tile: this query runs "
                      f"{result.blocks(q, n)} tiles and will be slow; allow at least "
                      f"{math.ceil(need(min(q, 128), min(n, 128)) / 1024)} KiB", stacklevel=3)
    return result


# --------------------------------------------------------------------------- the search


@on_device(lambda Xq, *rest: device_of(Xq))
def kneighbors(Xq, X, k: int, metric: str, limit: int, x_sq=None, refine: bool = True):
    """(distances, indices) of the k nearest rows of X (N, D) for each row of Xq (Q, D), each (Q, k), on their device.

    The low-level exact search: its arguments are not checked (the estimator and the IVF index check
    theirs before they call it).

    Parameters
    ----------
    Xq : array of shape (Q, D), float32 or float64 (NumPy or CuPy)
        The queries: finite, C-contiguous (or they are copied).
    X : array of shape (N, D)
        The rows searched: finite, of ``Xq``'s dtype and on its device, N >= k.
    k : int
        Neighbours per query, 1 <= k <= N.
    metric : {"l2", "l1", "sqeuclidean"}
        Euclidean distance, sum of absolute differences, or squared Euclidean distance.
    limit : int
        Bytes of temporaries the search may hold (product blocks, the running k best); a limit that
        leaves very small blocks warns that the search will be slow.
    x_sq : array of shape (N,) or None, default=None
        The squared row norms of X, in its dtype and on its device, where already known (L2 and
        sqeuclidean; ignored for L1); None: computed here.
    refine : bool, default=True
        float32 L2 measures its near-ties again in float64 (``gpunn/knn/near_ties.py``). False where only
        the product form's own order matters (ranking an IVF index's lists, k-means' assignments), which
        is faster.

    Returns
    -------
    distances : array of shape (Q, k), ``Xq``'s dtype
        Each query's k smallest distances, ascending.
    indices : array of shape (Q, k), int64
        The rows of X they belong to; equal distances are ordered by the lower row.

    Examples
    --------
    >>> X = np.array([[0, 0], [1, 0], [0, 2], [5, 5]], np.float32)
    >>> d, i = gn.knn.kneighbors(X[:2], X, 2, "l2", 1 << 20)
    >>> d
    array([[0., 1.],
           [0., 1.]], dtype=float32)
    >>> i
    array([[0, 1],
           [1, 0]])
    >>> gn.knn.kneighbors(np.array([[0.9, 0.0]], np.float32), X, 3, "l1", 1 << 20)[1]
    array([[1, 0, 2]])
    """
    xp = array_module(Xq)
    Xq, X = xp.ascontiguousarray(Xq), xp.ascontiguousarray(X)  # no copy when they are (the estimator's are)
    q, n = Xq.shape[0], X.shape[0]
    dtype = Xq.dtype
    # float32 L2 keeps one neighbour more, for its near-ties to be measured again in float64 (near_ties.py)
    refining = refine and near_ties.wanted(metric, dtype)
    kept = min(k + 1, n) if refining else k
    p = plan(q, n, X.shape[1], kept, dtype, metric, limit, xp is np)
    out_d, out_i = xp.empty((q, k), dtype), xp.empty((q, k), np.int64)
    if metric != "l1":
        x_sq = squared_norms(X) if x_sq is None else x_sq
    with cpu_threads(0 if xp is np and q * n * X.shape[1] < SERIAL_WORK else PARALLEL_MIN_SIZE):
        _search(Xq, X, k, kept, metric, p, x_sq, refining, out_d, out_i)
    return out_d, out_i


def _search(Xq, X, k: int, kept: int, metric: str, p: Plan, x_sq, refining: bool, out_d, out_i) -> None:
    """kneighbors' blocks: out_d, out_i (Q, k) filled with each query's k best (``kept`` searched)."""
    xp = array_module(Xq)
    q, n = Xq.shape[0], X.shape[0]
    dtype = Xq.dtype
    product = xp.empty(p.queries * p.rows, dtype) if metric != "l1" else None
    for q0 in range(0, q, p.queries):
        A = Xq[q0:q0 + p.queries]
        if metric == "l1" or xp is not np:
            best = Best(xp, p.parts, A.shape[0], kept, knn_l1.key_dtype(A) if metric == "l1" else dtype)
        else:
            best = Buffers(p.parts, A.shape[0], kept, dtype, metric == "l2")
        a_sq = squared_norms(A) if metric != "l1" else None
        for n0 in range(0, n, p.rows):
            B = X[n0:n0 + p.rows]
            last = n0 + p.rows >= n
            if metric == "l1":
                knn_l1.l1_select(A, B, n0, best, last)
            else:
                G = product[:A.shape[0] * B.shape[0]].reshape(A.shape[0], B.shape[0])
                _product(A, B, out=G)
                knn_l2.l2_select(G, a_sq, x_sq[n0:n0 + p.rows], n0, metric == "l2", best, last)
        d, i = best.result()
        if refining:
            d, i = near_ties.refine(A, d, i, lambda ids: (X, ids), metric == "l2", k, a_sq, x_sq[i])
        out_d[q0:q0 + p.queries], out_i[q0:q0 + p.queries] = d, i


def merge_best(parts, k: int):
    """The k best of several answers for the same queries: ``parts`` is [(distances, indices), ...].

    Each part sorted by (distance, index), the parts in ascending order of their indices: then
    a stable sort of the concatenation keeps lower indices first among equal distances, the
    tie rule of one search over all rows.

    Parameters
    ----------
    parts : list of (distances, indices)
        Answers for the same Q queries (searches of different row ranges, say): distances (Q, k_p) and
        int64 indices (Q, k_p), all on one device (NumPy or CuPy).
    k : int
        Neighbours to keep per query, at most the parts' total width.

    Returns
    -------
    distances : array of shape (Q, k)
        Each query's k smallest distances over all parts, ascending.
    indices : array of shape (Q, k)
        The indices that go with them.

    Examples
    --------
    >>> first = (np.array([[0.5, 2.0]]), np.array([[1, 3]]))     # rows 0..3 searched
    >>> second = (np.array([[0.5, 1.0]]), np.array([[4, 6]]))    # rows 4..7 searched
    >>> d, i = gn.knn.merge_best([first, second], 3)
    >>> d, i
    (array([[0.5, 0.5, 1. ]]), array([[1, 4, 6]]))
    """
    xp = array_module(parts[0][0])
    cat_d = xp.concatenate([d for d, _ in parts], axis=1)
    cat_i = xp.concatenate([i for _, i in parts], axis=1)
    order = (xp.argsort(cat_d, axis=1, kind="stable") if xp is np else xp.argsort(cat_d, axis=1))[:, :k]
    return xp.take_along_axis(cat_d, order, axis=1), xp.take_along_axis(cat_i, order, axis=1)
