"""Scanning an inverted-file index: each query's k best among the rows of the lists it probes.

The index (gpunn/knn/ivf.py) keeps its rows list by list. :func:`reference` is the definition: for each
query, the distances to the rows of its probed lists, and the k smallest by (distance, row id).

CPU: list-major. The probing queries are sorted by list (a counting sort), and the lists shared out
between tasks by their work (rows x probing queries); a task takes each of its lists in turn with the
queries that probe it, four at a time, over the list's rows packed in panels (kernels/knn_l1.py's
layout, each list padded to whole register blocks), and pushes the distances that beat a heap's worst
into the heap of that (task, query) pair (kernels/topk.py): a query whose lists fell to one task (every
query at n_probe = 1) has one heap and needs no merge; the others' heaps are merged at the end; a full
heap's worst, shared between a query's tasks, filters its other tasks' rows. L2 is the dot-product form of
kernels/knn_l2.py (||a||^2 + ||b||^2 - 2 a.b
with the same rounding floor), its dot products in 4 x 2 register blocks of fused multiply-adds; L1 is
kernels/knn_l1.py's register block. Row ids do not come in increasing order here, so a distance equal to
a heap's worst is tested exactly (it enters when its row id is lower).

CUDA: a thread block per (query, probed list, tile of 128 of the list's rows) stages the tile in shared
memory 32 features at a time, consecutive threads reading consecutive features of a row (coalesced),
then each thread adds up one row's distance; distances and row ids go into a candidate block (queries x
n_probe x the longest list), padded with (inf, no row); the selection kernel (kernels/topk.py) then
keeps the k best of each row of the block.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from . import blas_pool
from .arrays import array_module, device_of
from .knn_l1 import PANELS, QUERIES
from . import knn_l1
from .knn_l1 import block as l1_block
from .launch import clamped_grid as grid
from .launch import PARALLEL_MIN_SIZE, cpu_threads, run_cuda
from .simd import lanes, vabove, vadd, vbroadcast, vfma, vlane, vload, vmask_le, vmul, vsplat, vsub, vzeros
from .topk import NO_INDEX, Best, push, select_cuda, sort_heap

L2_FLOOR_ULPS = 16  # as kernels/knn_l2.py


def reference(A, rows, ids, starts, probes, k: int, metric: str):
    """The definition (xp, slow): (distances, row ids), each (Q, k), of each query's k best in its probed lists.

    ``rows`` (N, D) are stored list by list, list c at rows[starts[c]:starts[c + 1]], with original row ids
    ``ids``; ``probes`` (Q, n_probe) the lists each query scans (-1: none). Sorted by (distance, row id);
    where the probed lists hold fewer than k rows, the rest is (inf, -1).
    """
    xp = array_module(A)
    out_d = xp.full((A.shape[0], k), np.inf, A.dtype)
    out_i = xp.full((A.shape[0], k), -1, np.int64)
    for i in range(A.shape[0]):
        members = xp.concatenate([xp.arange(int(starts[c]), int(starts[c + 1])) for c in probes[i].tolist() if c >= 0])
        B = rows[members]
        if metric == "l1":
            d = xp.abs(A[i][None, :] - B).sum(axis=1)
        else:
            total = (A[i] * A[i]).sum() + (B * B).sum(axis=1)
            d = total - 2 * (B @ A[i])
            d = xp.where(d > total * A.dtype.type(L2_FLOOR_ULPS * np.finfo(A.dtype).eps), d, 0).astype(A.dtype)
            d = xp.sqrt(d) if metric == "l2" else d
        found = ids[members]
        order = xp.lexsort(xp.stack([found, d]))[:k]
        out_d[i, :len(order)], out_i[i, :len(order)] = d[order], found[order]
    return out_d, out_i


# --------------------------------------------------------------------------- CPU


@numba.njit(inline="always")
def _dot_block(a0, a1, a2, a3, d, pa, pb, L):
    """The 4 x 2 register block of dot products of the queries a0 .. a3 (D,) with the rows of panels pa, pb."""
    s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = vzeros(a0)
    for k in range(d):
        b = vload(pa, k * L)
        e = vload(pb, k * L)
        x = vbroadcast(a0, k)
        s00 = vfma(x, b, s00)
        s01 = vfma(x, e, s01)
        x = vbroadcast(a1, k)
        s10 = vfma(x, b, s10)
        s11 = vfma(x, e, s11)
        x = vbroadcast(a2, k)
        s20 = vfma(x, b, s20)
        s21 = vfma(x, e, s21)
        x = vbroadcast(a3, k)
        s30 = vfma(x, b, s30)
        s31 = vfma(x, e, s31)
    return s00, s01, s10, s11, s20, s21, s30, s31


@numba.njit(inline="always")
def _take(v, at, ids, kb, rb, ib, take_sqrt, bound, i):
    """Push the lanes of v (raw distances of packed rows at .. at + lanes - 1) that may beat the heap's worst.

    ``bound[i]``: the least raw worst of query i's full heaps so far (its other tasks'): a row above it has k
    better rows elsewhere. L1's v holds float64 totals (kernels/knn_l1.py's block), its heaps float64 keys.
    """
    mask = vmask_le(v, min(rb[0], bound[i]))  # <=: row ids are not in increasing order here, push decides a tie
    if mask == 0:
        return
    while mask:
        lane = trailing_zeros(mask)
        mask &= mask - 1
        j = ids[at + lane]
        if j != NO_INDEX:
            r = vlane(v, lane)
            push(kb, rb, ib, np.sqrt(r) if take_sqrt else r, r, j)
    if ib[0] != NO_INDEX and rb[0] < bound[i]:  # full: its worst bounds the query's k-th (a stale read only loosens)
        bound[i] = rb[0]


@numba.njit(parallel=True, cache=True)
def scan_cpu(A, a_sq, P, p_sq, ids, panel_starts, query_starts, queries, slots, task_starts, metric, floor, keys,
             raws, idx, bound):
    """Push each probing query's distances to the rows of each list into its heap slot's keys/raws/idx (slots, k).

    P (panels, D L): the lists' rows packed, list c in panels panel_starts[c] .. panel_starts[c + 1];
    p_sq and ids: each packed row's squared norm and row id (NO_INDEX for padding). The queries that
    probe list c are queries[query_starts[c]:query_starts[c + 1]], and slots[j] is the heap of the pair
    queries[j]: one per (task, query), so that no two tasks share a heap. Task t scans lists
    task_starts[t] .. task_starts[t + 1] - 1. ``metric``: 0 L1, 1 L2, 2 squared L2. ``bound`` (Q,): each
    query's least full-heap worst (raw), shared by the tasks as a filter (inf to start).
    """
    d = A.shape[1]
    L = lanes(A)
    lanes_like = vzeros(A)
    vfloor = vsplat(lanes_like, floor)
    take_sqrt = metric == 1
    for t in prange(task_starts.shape[0] - 1):
        chosen = np.empty(QUERIES, np.int64)
        heap = np.empty(QUERIES, np.int64)
        for c in range(task_starts[t], task_starts[t + 1]):
            q0, q1 = query_starts[c], query_starts[c + 1]
            for g in range(q0, q1, QUERIES):
                count = min(QUERIES, q1 - g)
                for r in range(QUERIES):
                    chosen[r] = queries[g + min(r, count - 1)]
                    heap[r] = slots[g + min(r, count - 1)]
                for pn in range(panel_starts[c], panel_starts[c + 1], PANELS):
                    at = pn * L
                    a0, a1, a2, a3 = A[chosen[0]], A[chosen[1]], A[chosen[2]], A[chosen[3]]
                    if metric == 0:
                        s = l1_block(a0, a1, a2, a3, d, P[pn], P[pn + 1], L)
                        for r in range(count):
                            h = heap[r]
                            _take(s[2 * r], at, ids, keys[h], raws[h], idx[h], False, bound, chosen[r])
                            _take(s[2 * r + 1], at + L, ids, keys[h], raws[h], idx[h], False, bound, chosen[r])
                    else:
                        s = _dot_block(a0, a1, a2, a3, d, P[pn], P[pn + 1], L)
                        sq0, sq1 = vload(p_sq, at), vload(p_sq, at + L)
                        for r in range(count):
                            h = heap[r]
                            vq = vsplat(lanes_like, a_sq[chosen[r]])
                            t0, t1 = vadd(vq, sq0), vadd(vq, sq1)
                            d0 = vabove(vsub(t0, vadd(s[2 * r], s[2 * r])), vmul(t0, vfloor))
                            d1 = vabove(vsub(t1, vadd(s[2 * r + 1], s[2 * r + 1])), vmul(t1, vfloor))
                            _take(d0, at, ids, keys[h], raws[h], idx[h], take_sqrt, bound, chosen[r])
                            _take(d1, at + L, ids, keys[h], raws[h], idx[h], take_sqrt, bound, chosen[r])


@numba.njit(cache=True)
def by_list(probes, n_lists):
    """(queries, query_starts): the probing queries list by list (a counting sort of probes (Q, width), -1 skipped),
    each list's in increasing order, list c's at queries[query_starts[c]:query_starts[c + 1]]."""
    q, width = probes.shape
    query_starts = np.zeros(n_lists + 1, np.int64)
    for i in range(q):
        for p in range(width):
            if probes[i, p] >= 0:
                query_starts[probes[i, p] + 1] += 1
    for c in range(n_lists):
        query_starts[c + 1] += query_starts[c]
    fill = query_starts[:-1].copy()
    queries = np.empty(query_starts[n_lists], np.int64)
    for i in range(q):
        for p in range(width):
            c = probes[i, p]
            if c >= 0:
                queries[fill[c]] = i
                fill[c] += 1
    return queries, query_starts


@numba.njit(cache=True)
def heap_slots(queries, query_starts, task_starts, n_queries):
    """(slots, slot_starts, slot_heaps): a heap per (task, query) pair that occurs.

    slots[j]: the heap of the probing pair queries[j]; query i's heaps are slot_heaps[slot_starts[i]:
    slot_starts[i + 1]] (a query probing lists of one task has one heap, and needs no merge).
    """
    seen = np.full(n_queries, -1, np.int64)
    here = np.empty(n_queries, np.int64)
    owner = np.empty(queries.shape[0], np.int64)
    slots = np.empty(queries.shape[0], np.int64)
    n = 0
    for t in range(task_starts.shape[0] - 1):
        for j in range(query_starts[task_starts[t]], query_starts[task_starts[t + 1]]):
            i = queries[j]
            if seen[i] != t:
                seen[i] = t
                here[i] = n
                owner[n] = i
                n += 1
            slots[j] = here[i]
    slot_starts = np.zeros(n_queries + 1, np.int64)
    for s in range(n):
        slot_starts[owner[s] + 1] += 1
    for i in range(n_queries):
        slot_starts[i + 1] += slot_starts[i]
    fill = slot_starts[:-1].copy()
    slot_heaps = np.empty(n, np.int64)
    for s in range(n):
        slot_heaps[fill[owner[s]]] = s
        fill[owner[s]] += 1
    return slots, slot_starts, slot_heaps


@numba.njit(parallel=True, cache=True)
def merge_slots(keys, raws, idx, slot_starts, slot_heaps, out_keys, out_idx):
    """out (Q, k): each query's heaps merged and sorted by (key, row id); (inf, NO_INDEX) for a query with none."""
    for i in prange(out_keys.shape[0]):
        s0, s1 = slot_starts[i], slot_starts[i + 1]
        if s0 == s1:
            continue
        h = slot_heaps[s0]
        kb, rb, ib = keys[h], raws[h], idx[h]
        for s in range(s0 + 1, s1):
            o = slot_heaps[s]
            for e in range(kb.shape[0]):
                push(kb, rb, ib, keys[o, e], raws[o, e], idx[o, e])
        sort_heap(kb, rb, ib)
        out_keys[i] = kb
        out_idx[i] = ib


def pack_lists(rows, row_sq, ids, starts):
    """The CPU layout of lists stored row by row: (P, p_sq, p_ids, panel_starts), each list in whole register blocks.

    rows (N, D) list by list (list c at starts[c] .. starts[c + 1]), row_sq (N,) their squared norms (or
    None), ids (N,) their row ids. Padding rows are zeros with the id NO_INDEX.
    """
    L = 64 // rows.itemsize
    unit = L * PANELS
    sizes = np.diff(starts)
    panels = -(-sizes // unit) * PANELS
    panel_starts = np.concatenate([[0], np.cumsum(panels)]).astype(np.int64)
    padded = np.zeros((int(panel_starts[-1]) * L, rows.shape[1]), rows.dtype)
    p_sq = np.zeros(padded.shape[0], rows.dtype)
    p_ids = np.full(padded.shape[0], NO_INDEX, np.int64)
    at = panel_starts[:-1] * L
    for c in np.flatnonzero(sizes):  # one copy per list: lists are few (about sqrt(N))
        a, b, n = int(at[c]), int(starts[c]), int(sizes[c])
        padded[a:a + n] = rows[b:b + n]
        p_ids[a:a + n] = ids[b:b + n]
        if row_sq is not None:
            p_sq[a:a + n] = row_sq[b:b + n]
    from .knn_l1 import pack

    return pack(padded), p_sq, p_ids, panel_starts


def row_positions(lists, n_rows: int):
    """(N,) int64: where each row id sits in a layout (:func:`pack_lists`'s padded rows, or CUDA's rows), for
    :func:`gather_rows`."""
    if len(lists) == 4:  # the CPU layout (P, p_sq, p_ids, panel_starts)
        p_ids = lists[2]
        at = np.flatnonzero(p_ids != NO_INDEX)
        positions = np.empty(n_rows, np.int64)
        positions[p_ids[at]] = at
        return positions
    xp = array_module(lists[0])
    positions = xp.empty(n_rows, np.int64)
    positions[lists[2]] = xp.arange(lists[2].shape[0], dtype=np.int64)
    return positions


def gather_rows(lists, positions, ids):
    """The rows (M, D) numbered ``ids`` (M,) from a layout, by their :func:`row_positions`."""
    at = positions[ids]
    if len(lists) == 4:  # CPU: panel at // L holds the row's features L apart, in lane at % L
        P = lists[0]
        L = 64 // P.itemsize
        return P.reshape(P.shape[0], P.shape[1] // L, L)[at // L, :, at % L]
    return lists[0][at]


METRIC_CODES = {"l1": 0, "l2": 1, "sqeuclidean": 2}
TASKS_PER_THREAD = 4  # list groups per thread: enough for a slow thread to hold the others up little
# Multiply-adds below which a scan runs on the calling thread (gpunn/knn/exact.py's reason: waking the pool costs
# up to a scheduler tick). Measured on 2 cores, 2,000 queries into 200,000 x 64 rows in 447 lists (9 interleaved
# rounds): n_probe = 1 took 18.4 ms alone against 10.1 on both threads at this threshold, n_probe = 2 22.7 against 17.5;
# 2^22 no faster.
SERIAL_WORK = 1 << 24


def lanes_of(A) -> int:
    """Rows of a panel for A's dtype (the packed layout's unit)."""
    return 64 // A.itemsize


def _tasks(work, tasks: int):
    """task_starts: the lists cut into at most ``tasks`` consecutive groups of about equal ``work``."""
    total = np.cumsum(work)
    if total[-1] == 0:
        return np.array([0, len(work)], np.int64)
    cuts = np.searchsorted(total, total[-1] * np.arange(1, tasks) / tasks, side="left") + 1
    return np.unique(np.concatenate([[0], cuts, [len(work)]])).astype(np.int64)


def _scan_cpu(A, a_sq, lists, probes, k: int, metric: str):
    P, p_sq, p_ids, panel_starts = lists
    n_lists = panel_starts.shape[0] - 1
    queries, query_starts = by_list(probes, n_lists)
    work = np.diff(query_starts) * np.diff(panel_starts)
    serial = int(work.sum()) * A.shape[1] * lanes_of(A) < SERIAL_WORK  # a small scan: the calling thread alone
    task_starts = _tasks(work, TASKS_PER_THREAD * (1 if serial else numba.get_num_threads()))
    slots, slot_starts, slot_heaps = heap_slots(queries, query_starts, task_starts, A.shape[0])
    key_dtype = knn_l1.key_dtype(A) if metric == "l1" else A.dtype
    best = Best(np, 1, slot_heaps.shape[0], k, key_dtype)
    keys, raws, idx = best.keys[0], best.raws[0], best.idx[0]
    floor = A.dtype.type(L2_FLOOR_ULPS * np.finfo(A.dtype).eps)
    a_sq = a_sq if a_sq is not None else np.zeros(A.shape[0], A.dtype)
    bound = np.full(A.shape[0], np.inf, key_dtype)
    with cpu_threads(0 if serial else PARALLEL_MIN_SIZE), numba.parallel_chunksize(1):  # tasks as threads free up
        scan_cpu(A, a_sq, P, p_sq, p_ids, panel_starts, query_starts, queries, slots, task_starts,
                 METRIC_CODES[metric], floor, keys, raws, idx, bound)
    out_keys = np.full((A.shape[0], k), np.inf, key_dtype)
    out_idx = np.full((A.shape[0], k), NO_INDEX, np.int64)
    with cpu_threads(keys.size):  # little work: a pool's wake-up would cost more than it saves
        merge_slots(keys, raws, idx, slot_starts, slot_heaps, out_keys, out_idx)
    blas_pool.parallel_kernel_ran()
    return out_keys, out_idx


# --------------------------------------------------------------------------- CUDA

CANDIDATE_ROWS = 128  # rows of a list per thread block, one per thread
CANDIDATE_STEP = 32  # features staged in shared memory per step: one warp reads one row's 32 in one transaction
CANDIDATE_PADDED = 33  # a shared row of 33: the rows a warp reads at one feature sit in 32 banks


def _candidates_kernel(dtype):
    """The CUDA candidate kernel for Numba float type ``dtype`` (its shared tile is of that type)."""

    @cuda.jit(cache=True)
    def candidates(A, a_sq, rows, row_sq, ids, starts, probes, width, metric, floor, zero, inf, out, out_ids):
        """out[i, p width + r], out_ids[...]: distance and row id of row r of query i's p-th probed list
        ((inf, NO_INDEX) past the list's end, or for no list, -1). Grid: x over tiles of CANDIDATE_ROWS rows, y over
        p, z over queries, each grid-stride.

        A tile of rows is staged CANDIDATE_STEP features at a time, consecutive threads reading consecutive
        features of one row (coalesced), then each thread adds up its row's terms from shared memory.
        """
        tile = cuda.shared.array((CANDIDATE_ROWS, CANDIDATE_PADDED), dtype)
        query = cuda.shared.array(CANDIDATE_STEP, dtype)
        tid = cuda.threadIdx.x
        q, d = A.shape
        n_probe = probes.shape[1]
        i = cuda.blockIdx.z
        while i < q:  # grid-stride on every axis (while loops: range with a variable step divides)
            p = cuda.blockIdx.y
            while p < n_probe:
                c = probes[i, p]
                first = starts[c] if c >= 0 else 0
                length = starts[c + 1] - first if c >= 0 else 0
                r0 = cuda.blockIdx.x * CANDIDATE_ROWS
                while r0 < width:
                    acc = zero
                    if r0 < length:  # the same for the whole block: its barriers are reached by all
                        k0 = 0
                        while k0 < d:
                            e = tid
                            while e < CANDIDATE_ROWS * CANDIDATE_STEP:
                                rr = e >> 5  # e // CANDIDATE_STEP, e % CANDIDATE_STEP without a division
                                kk = e & (CANDIDATE_STEP - 1)
                                ok = r0 + rr < length and k0 + kk < d
                                tile[rr, kk] = rows[first + r0 + rr, k0 + kk] if ok else zero
                                e += CANDIDATE_ROWS
                            if tid < CANDIDATE_STEP:
                                query[tid] = A[i, k0 + tid] if k0 + tid < d else zero
                            cuda.syncthreads()
                            if metric == 0:
                                for kk in range(CANDIDATE_STEP):
                                    acc += abs(query[kk] - tile[tid, kk])
                            else:
                                for kk in range(CANDIDATE_STEP):
                                    acc += query[kk] * tile[tid, kk]
                            cuda.syncthreads()
                            k0 += CANDIDATE_STEP
                    r = r0 + tid
                    if r < width:
                        col = p * width + r
                        if r < length:
                            j = first + r
                            if metric != 0:
                                total = a_sq[i] + row_sq[j]
                                acc = total - (acc + acc)
                                acc = acc if acc > total * floor else zero
                                if metric == 1:
                                    acc = math.sqrt(acc)
                            out[i, col] = acc
                            out_ids[i, col] = ids[j]
                        else:
                            out[i, col] = inf
                            out_ids[i, col] = NO_INDEX
                    r0 += cuda.gridDim.x * CANDIDATE_ROWS
                p += cuda.gridDim.y
            i += cuda.gridDim.z

    return candidates


CANDIDATES_CUDA = {np.dtype(np.float32): _candidates_kernel(numba.float32),
                   np.dtype(np.float64): _candidates_kernel(numba.float64)}


def _scan_cuda(A, a_sq, lists, probes, k: int, metric: str):
    rows, row_sq, ids, starts, width = lists
    xp = array_module(A)
    q, n_probe = probes.shape
    best = Best(xp, 1, q, k, A.dtype)
    if q == 0 or width == 0:
        return best.result()
    out = xp.empty((q, n_probe * width), A.dtype)
    out_ids = xp.empty((q, n_probe * width), np.int64)
    dt = A.dtype.type
    a_sq = a_sq if a_sq is not None else xp.zeros(q, A.dtype)
    row_sq = row_sq if row_sq is not None else xp.zeros(rows.shape[0], A.dtype)
    run_cuda(CANDIDATES_CUDA[np.dtype(A.dtype)], grid(-(-width // CANDIDATE_ROWS), n_probe, q), (CANDIDATE_ROWS,), A,
             a_sq, rows, row_sq, ids, starts, probes, np.int64(width), METRIC_CODES[metric],
             dt(L2_FLOOR_ULPS * np.finfo(A.dtype).eps), dt(0), dt(np.inf), out, out_ids)
    select_cuda(out, best, ids=out_ids)
    return best.result()


# --------------------------------------------------------------------------- launch


def scan(A, a_sq, lists, probes, k: int, metric: str):
    """(distances, row ids), each (Q, k) sorted by (distance, row id): each query's k best in its probed lists.

    A (Q, D) C-contiguous queries; a_sq (Q,) their squared norms (L2; None for L1); probes (Q, n_probe)
    int64 list numbers, -1 for none (a query that scans fewer lists than the widest); ``lists``: the CPU
    layout of :func:`pack_lists`, or on CUDA (rows, row_sq, ids, starts, longest list). Where the probed
    lists hold fewer than k rows the rest is (inf, NO_INDEX).
    """
    if metric not in METRIC_CODES:
        raise ValueError(f"scan: unknown metric {metric!r}; expected one of {', '.join(map(repr, METRIC_CODES))}")
    if getattr(A, "ndim", 0) != 2 or A.dtype not in (np.float32, np.float64) or not A.flags.c_contiguous:
        raise ValueError(f"scan: A must be a C-contiguous float32 or float64 matrix, got "
                         f"{getattr(A, 'dtype', type(A).__name__)} of shape {getattr(A, 'shape', None)}")
    if getattr(probes, "ndim", 0) != 2 or probes.shape[0] != A.shape[0] or probes.dtype != np.int64:
        raise ValueError(f"scan: probes must be int64 (Q, n_probe) with Q={A.shape[0]}, got "
                         f"{getattr(probes, 'dtype', None)} of shape {getattr(probes, 'shape', None)}")
    if lists[0].dtype != A.dtype or device_of(lists[0]) != device_of(A):
        raise ValueError(f"scan: the lists ({lists[0].dtype} on {device_of(lists[0])}) and the queries ({A.dtype} "
                         f"on {device_of(A)}) must share a dtype and a device")
    if device_of(A).type == "cuda":
        return _scan_cuda(A, a_sq, lists, probes, k, metric)
    return _scan_cpu(A, a_sq, lists, probes, k, metric)
