"""k-nearest-neighbour search: exact (blocked, bounded memory) and approximate (an inverted-file index)::

    from gpunn import knn
    d, i = knn.kneighbors(queries, rows, 10, "l2", limit)     # exact: sorted, ties by the lower row
    index = knn.IVFIndex(n_lists=1024, random_state=0).fit(rows)
    d, i = index.search(queries, 10, n_probe=8)               # approximate
    knn.recall_at_k(i, exact_i)                               # the share of the exact answer it found

The arrays are C-contiguous float matrices on one device (NumPy or CuPy); the scikit-learn estimator
:class:`gpunn.neighbors.KNeighborsClassifier` checks and converts any input, and is the easier door.
Rooms: ``exact.py`` (the blocked exact search and ``memory_limit``), ``ivf.py`` (the index),
``kmeans.py`` (its coarse centroids), ``recall.py`` (recall@k), ``auto_probe.py`` (n_probe chosen by
measured recall), ``leave_one_out.py`` (the indexed rows' own neighbours, each row left out).
The kernels are gpunn.kernels' knn_l2, knn_l1, knn_ivf and topk.
"""

from .auto_probe import ProbeChoice, tune_n_probe
from .exact import METRICS, PRECISIONS, kneighbors, merge_best, pairwise_distances, parse_memory
from .ivf import IVFIndex, default_n_lists, probe_lists
from .leave_one_out import drop_self
from .kmeans import kmeans
from .recall import index_recall, recall_at_k

__all__ = ["IVFIndex", "METRICS", "PRECISIONS", "ProbeChoice", "default_n_lists", "drop_self", "index_recall", "kmeans",
           "kneighbors", "merge_best", "pairwise_distances", "parse_memory", "probe_lists", "recall_at_k",
           "tune_n_probe"]
