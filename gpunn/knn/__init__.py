"""k-nearest-neighbour search: exact (blocked, bounded memory) and approximate (an inverted-file index)::

    from gpunn import knn
    d, i = knn.kneighbors(queries, rows, 10, "l2", limit)     # exact: sorted, ties by the lower row
    index = knn.IVFIndex(n_lists=1024, random_state=0).fit(rows)
    d, i = index.search(queries, 10, n_probe=8)               # approximate
    knn.recall_at_k(i, exact_i)                               # the share of the exact answer it found

The arrays are C-contiguous float matrices on one device (NumPy or CuPy); the scikit-learn estimator
:class:`gpunn.neighbors.KNeighborsClassifier` checks and converts any input, and is the easier door.
Rooms: ``exact.py`` (the blocked exact search and ``memory_limit``), ``ivf.py`` (the index),
``kmeans.py`` (its coarse centroids), ``recall.py`` (recall@k).
The kernels are gpunn.kernels' knn_l2, knn_l1, knn_ivf and topk.
"""

from .exact import METRICS, PRECISIONS, kneighbors, merge_best, pairwise_distances, parse_memory
from .ivf import IVFIndex, default_n_lists
from .kmeans import kmeans
from .recall import index_recall, recall_at_k

__all__ = ["IVFIndex", "METRICS", "PRECISIONS", "default_n_lists", "index_recall", "kmeans", "kneighbors",
           "merge_best", "pairwise_distances", "parse_memory", "recall_at_k"]
