"""k-selection: each query's k smallest distances, ties by the lower training index.

The reference (:func:`smallest_k`) is a stable sort of each row. The kernels never sort a row: they keep
each query's k best so far (:class:`Best`) and let a new distance in only when it beats the worst of them.

CPU: one max-heap per query under the order (distance, index), its worst at the root. The distance
kernels (kernels/knn_l1.py, knn_l2.py, knn_ivf.py) compare a whole vector of distances with the root
and :func:`push` only the few lanes below it (replace the root, sift down). A heap also keeps each
entry's *raw* value, what the distance kernel compares before its last monotone step (L2's square root):
the vector compare works on raw values and the order on final ones, so that two distances whose square
roots round to the same value still tie by index. A query's columns may be split into parts (with few
queries, to keep every thread busy; in an IVF scan, one per task), each with its own heap;
:func:`finish_cpu` merges them and sorts.

CUDA: :func:`select_cuda` merges a block of distances into the running k best, kept sorted: one thread
block per query row, each thread reading several columns per round (coalesced). Candidates that beat
the list's k-th are appended to a shared-memory waiting area; when it could overflow, or at the row's
end, list and candidates are sorted together (a bitonic sort in shared memory, no larger than they need)
and the first k kept. Up to :data:`CUDA_MAX_K` neighbours; beyond, a stable sort of the
lists and the block together (CuPy's sort), slower but exact.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module
from .launch import clamped_grid as grid
from .launch import cpu_threads, run_cuda

NO_INDEX = np.iinfo(np.int64).max  # the index of an empty slot: any real row beats it, even at an equal distance
FINISH_PARALLEL_ENTRIES = 1 << 16  # buffer entries from which finishing them is worth every thread


def smallest_k(d, k: int, offset: int = 0):
    """The reference: (distances, indices + offset), each (Q, k), of the k smallest of each row of d (Q, N).

    Sorted by (distance, index): a stable sort keeps equal distances in column order.
    """
    order = _stable_argsort(array_module(d), d)[:, :k]
    return array_module(d).take_along_axis(d, order, axis=1), order + offset


def _stable_argsort(xp, a):
    """Row-wise argsort keeping equal values in their column order (CuPy's sort is always stable)."""
    return xp.argsort(a, axis=1, kind="stable") if xp is np else xp.argsort(a, axis=1)


class Best:
    """Each query's k best so far, on the queries' device: ``keys`` (parts, Q, k) distances, ``idx`` their rows.

    ``dtype``: the keys', the data's own, or float64 where a kernel sums in float64 (CPU L1,
    kernels/knn_l1.py's :func:`~gpunn.kernels.knn_l1.key_dtype`).

    On the CPU every list is a max-heap under (key, index) (the worst at 0) and ``raws`` holds each entry's
    raw value; on CUDA (one part) a list sorted by (key, index). Empty slots hold (inf, :data:`NO_INDEX`).
    :meth:`result` gives each query's k best sorted, the parts merged.
    """

    def __init__(self, xp, parts: int, queries: int, k: int, dtype):
        self.on_cpu = xp is np
        if not self.on_cpu and parts != 1:
            raise ValueError(f"Best: CUDA lists have one part, got parts={parts}")
        self.keys = xp.full((parts, queries, k), np.inf, dtype)
        self.raws = xp.full((parts, queries, k), np.inf, dtype) if self.on_cpu else None
        self.idx = xp.full((parts, queries, k), NO_INDEX, np.int64)
        self.sorted = False  # set by a kernel that sorted the (single-part) heaps at the end of its last block

    @property
    def k(self) -> int:
        return self.keys.shape[2]

    def result(self):
        """(distances, indices), each (Q, k), sorted by (distance, index)."""
        if self.on_cpu and not self.sorted:
            with cpu_threads(self.keys.size):  # merging and sorting k per query: one thread below launch's threshold
                finish_cpu(self.keys, self.raws, self.idx)
            self.sorted = True
        return self.keys[0], self.idx[0]


# --------------------------------------------------------------------------- CPU: one heap per query


@numba.njit(inline="always")
def before(d1, i1, d2, i2):
    """(d1, i1) comes before (d2, i2): a smaller distance, or an equal one at a lower index."""
    return d1 < d2 or (d1 == d2 and i1 < i2)


@numba.njit(inline="always")
def _sift_down(keys, raws, idx, key, raw, j, p, size):
    """Place (key, raw, j) at heap position p of keys[:size], moving later entries up past it."""
    while True:
        c = 2 * p + 1
        if c >= size:
            break
        if c + 1 < size and before(keys[c], idx[c], keys[c + 1], idx[c + 1]):
            c += 1
        if not before(key, j, keys[c], idx[c]):
            break
        keys[p] = keys[c]
        raws[p] = raws[c]
        idx[p] = idx[c]
        p = c
    keys[p] = key
    raws[p] = raw
    idx[p] = j


@numba.njit(inline="always")
def push(keys, raws, idx, key, raw, j):
    """Put (key, j) into one query's heap (1-D views, the worst at 0) in place of the worst, when it is better.

    ``raw`` is the value before the distance's last monotone step (L2's square root); the heap's
    worst raw value, ``raws[0]``, is what the kernels' vector compares test against.
    """
    if before(key, j, keys[0], idx[0]):
        _sift_down(keys, raws, idx, key, raw, j, 0, keys.shape[0])


@numba.njit(inline="always")
def sort_heap(keys, raws, idx):
    """One query's heap (1-D views) sorted in place by (key, index): the worst left goes to the end, in turn."""
    for end in range(keys.shape[0] - 1, 0, -1):
        key, raw, j = keys[end], raws[end], idx[end]
        keys[end], raws[end], idx[end] = keys[0], raws[0], idx[0]
        _sift_down(keys, raws, idx, key, raw, j, 0, end)


@numba.njit(parallel=True, cache=True)
def finish_cpu(keys, raws, idx):
    """Merge the heaps of parts 1.. into part 0's (arrays (parts, Q, k)), then sort part 0's lists, in place."""
    parts, q, k = keys.shape
    for i in prange(q):
        kb, rb, ib = keys[0, i], raws[0, i], idx[0, i]
        for p in range(1, parts):
            for s in range(k):
                push(kb, rb, ib, keys[p, i, s], raws[p, i, s], idx[p, i, s])
        sort_heap(kb, rb, ib)


# --------------------------------------------------------------------------- CPU: a buffer per query (large k)


def capacity_for(k: int) -> int:
    """Entries a :class:`Buffers` holds per query and part: 4 k + 8, so a compaction (linear in the entries) comes
    every 3 k + 8 candidates or more, O(1) per candidate. Measured at 500 x 5,000, 2 threads: k = 101 4.7 ms with
    4 k + 8 against 6.4 with 2 k + 8 (8 k + 8: 4.6); k = 1 and 11 the same."""
    return 4 * k + 8


class Buffers:
    """Each query's candidates so far, on the CPU, kept in buffers rather than heaps: for large k a candidate is
    appended (a few nanoseconds) instead of sifted through a heap of k (log k moves of three arrays).

    ``keys``/``raws``/``idx`` (parts, Q, capacity), ``fill`` (parts, Q) entries held, ``limit`` (parts, Q) the
    largest raw value among the k best at the last compaction (inf until k are held): a candidate above it
    has k better in the buffer. A full buffer keeps only the entries at or below its k-th smallest raw value
    (a quickselect of the values, :func:`compact`), which becomes ``limit``. :meth:`result` merges the parts,
    keeps the k best by (key, index) and sorts them.
    """

    def __init__(self, parts: int, queries: int, k: int, dtype, take_sqrt: bool = False):
        capacity = capacity_for(k)
        # uninitialised: only the first ``fill`` entries of a buffer are ever read
        self.keys = np.empty((parts, queries, capacity), dtype)
        self.raws = np.empty((parts, queries, capacity), dtype)
        self.idx = np.empty((parts, queries, capacity), np.int64)
        self.fill = np.zeros((parts, queries), np.int64)
        self.limit = np.full((parts, queries), np.inf, dtype)
        self.k, self.take_sqrt = k, take_sqrt

    def result(self):
        """(distances, indices), each (Q, k), sorted by (distance, index)."""
        q = self.keys.shape[1]
        out_keys = np.full((q, self.k), np.inf, self.keys.dtype)
        out_idx = np.full((q, self.k), NO_INDEX, np.int64)
        # every thread only for many entries: below, a woken pool costs more than the work
        with cpu_threads(self.keys.size, at=FINISH_PARALLEL_ENTRIES):
            finish_buffers(self.keys, self.raws, self.idx, self.fill, self.k, self.take_sqrt, out_keys, out_idx)
        return out_keys, out_idx


@numba.njit(inline="always")
def _swap(keys, raws, idx, a, b):
    keys[a], keys[b] = keys[b], keys[a]
    raws[a], raws[b] = raws[b], raws[a]
    idx[a], idx[b] = idx[b], idx[a]


@numba.njit(cache=True)
def compact_exact(keys, raws, idx, n, k):
    """Move the k best of the n entries (1-D views) by (key, index) to the front (a quickselect); returns the
    largest raw value among them (with n <= k, all n stay and inf is returned: no limit yet)."""
    if n <= k:
        return np.inf
    lo, hi, target = 0, n - 1, k - 1
    while lo < hi:
        mid = (lo + hi) >> 1  # median of three as the pivot: sorted order or not, no quadratic case
        if before(keys[mid], idx[mid], keys[lo], idx[lo]):
            _swap(keys, raws, idx, mid, lo)
        if before(keys[hi], idx[hi], keys[lo], idx[lo]):
            _swap(keys, raws, idx, hi, lo)
        if before(keys[hi], idx[hi], keys[mid], idx[mid]):
            _swap(keys, raws, idx, hi, mid)
        pk, pi = keys[mid], idx[mid]
        i, j = lo, hi
        while i <= j:
            while before(keys[i], idx[i], pk, pi):
                i += 1
            while before(pk, pi, keys[j], idx[j]):
                j -= 1
            if i <= j:
                _swap(keys, raws, idx, i, j)
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    worst = raws[0]
    for e in range(1, k):
        worst = max(worst, raws[e])
    return worst


@numba.njit(cache=True)
def kth_raw(raws, n, k):
    """The k-th smallest of raws[:n] (a quickselect on a copy of the values alone)."""
    return select_in_place(raws[:n].copy(), n, k)


@numba.njit(cache=True)
def select_in_place(v, n, k):
    """Reorder v[:n] in place so that v[k - 1] is its k-th smallest, none greater before it and none smaller after
    (a quickselect); returns v[k - 1]."""
    lo, hi, target = 0, n - 1, k - 1
    while lo < hi:
        pivot = v[(lo + hi) >> 1]
        i, j = lo, hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while pivot < v[j]:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return v[target]


@numba.njit(cache=True)
def compact(keys, raws, idx, n, k):
    """Keep the entries (1-D views, n of them) whose raw value is at most the k-th smallest, in front; returns
    (entries kept, that raw value: the new limit). At least k stay, ties at the limit included (the final
    :func:`compact_exact` orders them by (key, index)); where ties would keep most of the buffer, the k best
    by (key, index) are kept exactly instead."""
    limit = kth_raw(raws, n, k)
    kept = 0
    for e in range(n):  # in place, in order: the entries kept move forward
        if raws[e] <= limit:
            keys[kept], raws[kept], idx[kept] = keys[e], raws[e], idx[e]
            kept += 1
    if 2 * kept > n + k:  # many equal distances: one more compaction would free little
        return k, compact_exact(keys, raws, idx, kept, k)
    return kept, limit


@numba.njit(inline="always")
def offer(keys, raws, idx, n, k, key, raw, j):
    """Append (key, raw, j) at n of a buffer (1-D views); returns (entries held, limit or -1 when unchanged)."""
    keys[n] = key
    raws[n] = raw
    idx[n] = j
    n += 1
    if n == keys.shape[0]:
        return compact(keys, raws, idx, n, k)
    return n, -1.0


@numba.njit(parallel=True, cache=True)
def finish_buffers(keys, raws, idx, fill, k, take_sqrt, out_keys, out_idx):
    """out (Q, k): each query's buffers (parts, Q, capacity) merged, compacted to k and sorted by (key, index).

    ``take_sqrt``: the kernels offered raw values as keys (L2's square root is taken here, once per kept entry).
    """
    parts = keys.shape[0]
    for i in prange(keys.shape[1]):
        kb, rb, ib = keys[0, i], raws[0, i], idx[0, i]
        n = fill[0, i]
        for p in range(1, parts):
            for e in range(fill[p, i]):
                n = offer(kb, rb, ib, n, k, keys[p, i, e], raws[p, i, e], idx[p, i, e])[0]
        if rb.itemsize == 4 and _rows_fit_32_bits(ib, n):
            _finish_packed(rb, ib, n, k, take_sqrt, out_keys[i], out_idx[i])
            continue
        if take_sqrt:
            for e in range(n):
                kb[e] = np.sqrt(rb[e])
        if n > k:
            compact_exact(kb, rb, ib, n, k)
            n = k
        for at in range(n // 2 - 1, -1, -1):  # a heap of the k best (the worst at 0), then sorted
            _sift_down(kb, rb, ib, kb[at], rb[at], ib[at], at, n)
        sort_heap(kb[:n], rb[:n], ib[:n])
        out_keys[i, :n] = kb[:n]
        out_idx[i, :n] = ib[:n]


@numba.njit(inline="always")
def _rows_fit_32_bits(ib, n):
    for e in range(n):
        if ib[e] >> 32:
            return False
    return True


@numba.njit(cache=True)
def _finish_packed(rb, ib, n, k, take_sqrt, out_k, out_i):
    """One query's float32 buffer (raw values ``rb``, rows ``ib`` below 2^32, n entries) to its k best, sorted by
    (distance, row), in ``out_k``/``out_i``; the buffer is used up.

    Each entry is packed, in place of its row, into one uint64: the raw value's bits above the row. Raw values
    are >= 0, whose bits order as the values do, so the integers order as (raw, row), and one quickselect and
    one sort of plain integers replace the quickselect and heap sort of three arrays, with nothing allocated.
    The square root keeps that order, except that two raw values may share a root: a last insertion pass puts
    such rows in order.
    """
    packed = ib[:n].view(np.uint64)
    bits = rb[:n].view(np.uint32)
    for e in range(n):
        packed[e] |= np.uint64(bits[e]) << np.uint64(32)
    if n > k:
        select_in_place(packed, n, k)
        n = k
    packed[:n].sort()
    for e in range(n):
        bits[e] = np.uint32(packed[e] >> np.uint64(32))
        out_i[e] = np.int64(packed[e] & np.uint64(0xFFFFFFFF))
    for e in range(n):
        out_k[e] = np.sqrt(rb[e]) if take_sqrt else rb[e]
    if take_sqrt:
        for a in range(1, n):
            key, row = out_k[a], out_i[a]
            b = a - 1
            while b >= 0 and out_k[b] == key and out_i[b] > row:
                out_k[b + 1], out_i[b + 1] = out_k[b], out_i[b]
                b -= 1
            out_k[b + 1], out_i[b + 1] = key, row


# --------------------------------------------------------------------------- CUDA: one thread block per query

CUDA_MAX_K = 128  # neighbours the selection kernel keeps; more go to the sorting fallback
SELECT_THREADS = 128
ITEMS = 4  # columns each thread reads per round: one pair of barriers per 512 columns, not per 128
ROUND = SELECT_THREADS * ITEMS
SORT_SIZE = 1024  # shared-memory entries: the list and the candidates waiting to join it
FLUSH_AT = SORT_SIZE - CUDA_MAX_K - ROUND  # waiting candidates past which one more round could overflow


@cuda.jit(device=True, inline=True, cache=True)
def _before_cuda(d1, i1, d2, i2):
    return d1 < d2 or (d1 == d2 and i1 < i2)


@cuda.jit(device=True, cache=True)
def _bitonic_sort(sd, si, tid, size):
    """Sort the first ``size`` (a power of two) shared entries (sd, si) by (distance, index), all threads together."""
    width = 2
    while width <= size:
        stride = width >> 1
        while stride > 0:
            i = tid
            while i < size:  # a while loop: range with a variable bound and step divides
                other = i ^ stride
                if other > i and _before_cuda(sd[other], si[other], sd[i], si[i]) == ((i & width) == 0):
                    sd[i], sd[other] = sd[other], sd[i]
                    si[i], si[other] = si[other], si[i]
                i += SELECT_THREADS
            cuda.syncthreads()
            stride >>= 1
        width <<= 1


def _select_kernel(dtype, gathered: bool):
    """The selection kernel for distances of Numba type ``dtype``; ``gathered``: column j of row r is row ids[r, j]."""

    @cuda.jit(cache=True)
    def select(d, ids, col0, keys, idx, inf):
        """Merge each row of d (Q, n) into its sorted list keys/idx (Q, k): one block of SELECT_THREADS per row.

        Each round, every thread reads ITEMS columns (consecutive threads, consecutive columns); those that
        beat the list's k-th are appended after the list in shared memory. When one more round could
        overflow the waiting area, or at the row's end, the list and its candidates are sorted together
        (bitonic, over the smallest power of two that holds them) and the first k kept.
        """
        sd = cuda.shared.array(SORT_SIZE, dtype)
        si = cuda.shared.array(SORT_SIZE, numba.int64)
        waiting = cuda.shared.array(1, numba.int32)
        tid = cuda.threadIdx.x
        k = keys.shape[1]
        n = d.shape[1]
        row = cuda.blockIdx.x
        while row < d.shape[0]:  # grid-stride (a while loop: range with a variable step divides)
            s = tid
            while s < SORT_SIZE:  # a while loop: an unrolled range here held every load in a register
                if s < k:
                    sd[s] = keys[row, s]
                    si[s] = idx[row, s]
                else:
                    sd[s] = inf
                    si[s] = NO_INDEX
                s += SELECT_THREADS
            if tid == 0:
                waiting[0] = 0
            cuda.syncthreads()
            worst_d, worst_i = sd[k - 1], si[k - 1]
            base = 0
            while base < n:
                for t in range(ITEMS):
                    j = base + t * SELECT_THREADS + tid
                    if j < n:
                        v = d[row, j]
                        c = ids[row, j] if gathered else col0 + j
                        if _before_cuda(v, c, worst_d, worst_i):
                            at = k + cuda.atomic.add(waiting, 0, 1)
                            sd[at] = v
                            si[at] = c
                base += ROUND
                cuda.syncthreads()
                count = waiting[0]
                cuda.syncthreads()  # everyone has read the count before anyone changes it
                if count > FLUSH_AT or (count > 0 and base >= n):
                    size = 2
                    while size < k + count:
                        size <<= 1
                    _bitonic_sort(sd, si, tid, size)
                    s = k + tid
                    while s < size:  # the waiting area empty again
                        sd[s] = inf
                        si[s] = NO_INDEX
                        s += SELECT_THREADS
                    if tid == 0:
                        waiting[0] = 0
                    cuda.syncthreads()
                    worst_d, worst_i = sd[k - 1], si[k - 1]
            s = tid
            while s < k:
                keys[row, s] = sd[s]
                idx[row, s] = si[s]
                s += SELECT_THREADS
            cuda.syncthreads()
            row += cuda.gridDim.x

    return select


SELECT_CUDA = {(np.dtype(np.float32), False): _select_kernel(numba.float32, False),
               (np.dtype(np.float64), False): _select_kernel(numba.float64, False),
               (np.dtype(np.float32), True): _select_kernel(numba.float32, True),
               (np.dtype(np.float64), True): _select_kernel(numba.float64, True)}


def select_cuda(d, best: Best, col0: int = 0, ids=None) -> None:
    """Merge the CUDA distance block d (Q, n) into ``best``: column j is row col0 + j, or ids[:, j] where given.

    Within ``CUDA_MAX_K`` neighbours the selection kernel runs; beyond, a stable sort of the lists and
    the block together (:func:`_select_by_sorting`). Rows with the index :data:`NO_INDEX` never enter.
    """
    q, n = d.shape
    if q == 0 or n == 0:
        return
    keys, idx = best.keys[0], best.idx[0]
    if d.dtype != keys.dtype or d.shape[0] != keys.shape[0] or (ids is not None and ids.shape != d.shape):
        raise ValueError(f"select_cuda: the block ({d.dtype} {tuple(d.shape)}) does not fit the lists "
                         f"({keys.dtype} {tuple(keys.shape)})" + ("" if ids is None else f" or ids {tuple(ids.shape)}"))
    if best.k > CUDA_MAX_K:
        _select_by_sorting(d, best, col0, ids)
        return
    gathered = ids is not None
    ids = ids if gathered else idx[:1, :1]  # unread: the kernel without ids never touches it
    run_cuda(SELECT_CUDA[(np.dtype(d.dtype), gathered)], grid(q), (SELECT_THREADS,), d, ids, np.int64(col0), keys,
             idx, d.dtype.type(np.inf))


def _select_by_sorting(d, best: Best, col0: int, ids) -> None:
    """The fallback beyond CUDA_MAX_K: lists and block sorted together by (distance, index), two stable sorts."""
    xp = array_module(d)
    keys, idx = best.keys[0], best.idx[0]
    cols = ids if ids is not None else xp.broadcast_to(xp.arange(col0, col0 + d.shape[1], dtype=np.int64), d.shape)
    all_d = xp.concatenate([keys, d], axis=1)
    all_i = xp.concatenate([idx, cols], axis=1)
    by_index = _stable_argsort(xp, all_i)
    all_d, all_i = xp.take_along_axis(all_d, by_index, axis=1), xp.take_along_axis(all_i, by_index, axis=1)
    order = _stable_argsort(xp, all_d)[:, :best.k]
    keys[...] = xp.take_along_axis(all_d, order, axis=1)
    idx[...] = xp.take_along_axis(all_i, order, axis=1)
