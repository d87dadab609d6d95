"""Approximate nearest neighbours: recall@10 and queries per second against n_probe, exact search the reference.

When exact k-NN is too slow, an inverted-file index (IVF) answers from a few lists of rows instead of
all of them: k-means splits the training rows into ``n_lists`` lists around centroids, and a query
scans only the ``n_probe`` lists whose centroids are nearest. Each extra probe finds more of the true
neighbours (recall@10: the share of exact search's 10 neighbours found) and costs time; probing every
list is exact search again. The data are synthetic embeddings: a Gaussian mixture of 200 centres in 64
dimensions whose clusters overlap (spread 1.5), so that one list holds only about half of a query's
neighbours. Where FAISS is installed its ``IndexIVFFlat`` with the same n_lists is drawn beside gpunn's
index, on as many threads; the star on gpunn's curve is ``n_probe="auto"`` aiming at recall 0.95.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from ..knn.ivf import default_n_lists
from ..neighbors import KNeighborsClassifier

ROWS, QUERIES, DIMS, CENTRES, K = 100_000, 2_000, 64, 200, 10
SPREAD = 1.5  # around each centre: the clusters overlap, so neighbours often sit in other lists
REPEATS = 5  # timings: the best of a few runs (the first one also compiles; a busy machine slows some)
TARGET = 0.95  # the recall n_probe="auto" aims at


def embeddings(seed: int = 0):
    """(rows, queries): float32 points around the same CENTRES unit-normal centres, spread 1.5 around each."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIMS))
    X = centres[rng.integers(0, CENTRES, ROWS)] + SPREAD * rng.standard_normal((ROWS, DIMS))
    Q = centres[rng.integers(0, CENTRES, QUERIES)] + SPREAD * rng.standard_normal((QUERIES, DIMS))
    return X.astype(np.float32), Q.astype(np.float32)


def _queries_per_second(search, Q) -> float:
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        search(Q)
        best = min(best, time.perf_counter() - start)
    return len(Q) / best


def _faiss_curve(X, Q, probes, n_lists, exact_i):
    """FAISS's IndexIVFFlat at the same n_lists and n_probes, on gpunn's thread count: (recall, qps), or None."""
    if importlib.util.find_spec("faiss") is None:
        return None
    import faiss
    import numba

    from ..knn.recall import recall_at_k

    faiss.omp_set_num_threads(numba.get_num_threads())
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIMS), DIMS, n_lists, faiss.METRIC_L2)
    index.train(X)
    index.add(X)
    recall, qps = [], []
    for p in probes:
        index.nprobe = p
        recall.append(recall_at_k(index.search(Q, K)[1], exact_i))
        qps.append(_queries_per_second(lambda q: index.search(q, K), Q))
    return recall, qps


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """recall@10 and queries per second for each n_probe, and for exact search. ``data_dir`` is not used."""
    X, Q = embeddings(seed)
    y = np.zeros(len(X), int)  # the lesson is about the search: the labels play no part
    n_lists = default_n_lists(ROWS)
    probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128) if p < n_lists] + [n_lists]
    exact = KNeighborsClassifier(K, device=device).fit(X, y)
    exact_qps = _queries_per_second(exact.kneighbors, Q)
    start = time.perf_counter()
    ivf = KNeighborsClassifier(K, device=device, algorithm="ivf", n_lists=n_lists, n_probe=1, random_state=seed)
    ivf.fit(X, y)
    build_seconds = time.perf_counter() - start
    recall, qps = [], []
    for p in probes:
        ivf.set_params(n_probe=p)
        recall.append(ivf.recall_at_k(Q, n_queries=QUERIES, random_state=seed))
        qps.append(_queries_per_second(ivf.kneighbors, Q))
    auto = KNeighborsClassifier(K, device=device, algorithm="ivf", n_lists=n_lists, n_probe="auto",
                                target_recall=TARGET, random_state=seed).fit(X, y)
    auto_recall = auto.recall_at_k(Q, n_queries=QUERIES, random_state=seed)
    auto_qps = _queries_per_second(auto.kneighbors, Q)
    theirs = _faiss_curve(X, Q, probes, n_lists, exact.kneighbors(Q)[1]) if exact.device_.type == "cpu" else None
    files = [_draw(Path(out_dir), probes, recall, qps, exact_qps, n_lists, (auto.n_probe_, auto_recall, auto_qps),
                   theirs)]
    lines = [f"IVF index of {ROWS:,} rows x {DIMS} (n_lists={n_lists}, built in {build_seconds:.2f} s), "
             f"{QUERIES:,} queries, k={K}; exact search: {exact_qps:,.0f} queries/s"]
    lines += [f"n_probe={p:>4}: recall@10 {r:.3f}, {s:,.0f} queries/s ({s / exact_qps:.1f}x exact)"
              for p, r, s in zip(probes, recall, qps)]
    lines.append(f"n_probe='auto' (target_recall={TARGET}): n_probe={auto.n_probe_}, recall@10 "
                 f"{auto.n_probe_recall_:.3f} on held-out training rows, {auto_recall:.3f} on the queries")
    if theirs is not None:
        lines += [f"FAISS IndexIVFFlat n_probe={p:>4}: recall@10 {r:.3f}, {s:,.0f} queries/s"
                  for p, r, s in zip(probes, *theirs)]
    return {"files": files, "summary": "\n".join(lines), "n_probe": probes, "recall": recall, "qps": qps,
            "exact_qps": exact_qps, "n_lists": n_lists, "build_seconds": build_seconds, "auto_n_probe": auto.n_probe_,
            "auto_recall": auto_recall, "faiss": None if theirs is None else {"recall": theirs[0], "qps": theirs[1]}}


def _draw(out_dir: Path, probes, recall, qps, exact_qps, n_lists, auto, theirs) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    left.plot(probes, recall, "o-", color="C0", label="gpunn IVF (approximate)")
    if theirs is not None:
        left.plot(probes, theirs[0], "s--", color="C1", label="FAISS IndexIVFFlat, same n_lists")
    left.axhline(1.0, color="k", ls="--", lw=1, label="exact search")
    low = min(recall + ([] if theirs is None else theirs[0]))
    left.set(xscale="log", xlabel="n_probe: lists scanned per query (log scale)", ylabel="recall@10",
             title="More probes find more of the true neighbours", ylim=(low - 0.05, 1.02))
    left.set_xticks(probes, [str(p) for p in probes])
    left.minorticks_off()
    left.legend(loc="lower right")
    right.plot(recall, qps, "o-", color="C0", label="gpunn IVF, one point per n_probe (the number beside it)")
    for p, r, s in zip(probes, recall, qps):
        right.annotate(f"{p}", (r, s), textcoords="offset points", xytext=(6, 4), fontsize=9)
    if theirs is not None:
        right.plot(theirs[0], theirs[1], "s--", color="C1", label="FAISS IndexIVFFlat, the same n_probes")
    n_probe, auto_recall, auto_qps = auto
    right.plot([auto_recall], [auto_qps], "P", color="C2", ms=13, mec="k",
               label=f"gpunn n_probe=\"auto\" (target recall {TARGET}): chose {n_probe}")
    right.plot([1.0], [exact_qps], "*", color="C3", ms=16, mec="k", label="exact search")
    right.axhline(exact_qps, color="C3", ls="--", lw=1)
    right.set(yscale="log", xlabel="recall@10", ylabel="queries per second (log scale)",
              title="...and cost time: the speed/accuracy trade-off")
    right.legend(loc="lower left", fontsize=9)
    fig.suptitle(f"Approximate nearest neighbours: an IVF index with n_lists={n_lists} on {ROWS:,} rows x {DIMS}, "
                 f"{QUERIES:,} queries")
    fig.tight_layout()
    return save_figure(fig, out_dir / "ann.png")
