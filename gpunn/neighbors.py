"""k-nearest neighbours: the classifier and cross-validation of k, on NumPy, CuPy, or a Dask cluster.

The search itself is in :mod:`gpunn.knn`: exact (blocked, bounded memory, each query's k best kept as
the distances are made) or approximate (an inverted-file index, ``algorithm="ivf"``); for training rows
given as a dask array the exact search runs on the cluster (``gpunn.distributed.dask_knn``), each
chunk where it lives. Neighbours come sorted by distance, ties broken by the lower training index; vote
ties go to the smallest label, as ``np.bincount(...).argmax()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from .devices import array_module, to_numpy
from .devices import device as make_device
from .distributed.dask_knn import is_dask_array
from .estimator import (DeviceClassifier, as_input_type, check_X, encode_labels, keeps_state_on_failure, labels_of,
                        on_fitted_device)
from .devices import Device, on_device
from .knn import recall as knn_recall
from .knn.exact import METRICS, PRECISIONS, kneighbors as kneighbors_of, pairwise_distances, parse_memory  # noqa: F401
from .knn.ivf import IVFIndex, default_n_lists
from .validation import check_choice, check_int

__all__ = ["CrossValidation", "KNeighborsClassifier", "cross_validate_k", "pairwise_distances"]

WEIGHTS = ("uniform", "distance")
ALGORITHMS = ("brute", "ivf")


class KNeighborsClassifier(DeviceClassifier):
    """k-nearest-neighbour classifier, a scikit-learn classifier on NumPy or CuPy.

    ``fit`` stores the training rows on ``device`` (in ``precision``); ``kneighbors``
    returns distances and indices sorted by distance (ties by lower training index);
    ``predict`` votes (ties to the smallest label). ``memory_limit`` bounds the temporary
    memory of a query ("1GB", "512MiB", bytes); it is lowered to half the device's free
    memory when that is less. Results come back in the input's array type (NumPy in, NumPy
    out; CuPy in, CuPy out). Fitted: ``classes_``, ``n_features_in_``, ``feature_names_in_``
    (DataFrames), ``device_``, and the training rows ``X_`` on the device.

    On a Dask cluster: ``fit`` with X (and y) as dask arrays chunked by rows keeps the rows on
    the workers; queries (NumPy or dask) are then answered there, each worker searching its
    chunks on its own device (``device`` is resolved on the worker: its GPU under dask-cuda)
    within ``memory_limit``, and the answers merge exactly, in one process's order. Results
    come back as NumPy arrays.

    ``algorithm="ivf"``: approximate search with an inverted-file index (:class:`gpunn.knn.IVFIndex`),
    built by ``fit`` on the device: ``n_lists`` k-means centroids (None: about sqrt(n_samples), at least
    ``n_probe``), seeded by ``random_state``. A query scans the training rows of its ``n_probe`` nearest
    lists only: faster, and it may miss neighbours (:meth:`recall_at_k` measures how many, to choose
    ``n_probe`` by); ``n_probe = n_lists`` scans every row and answers as ``"brute"`` does. A query whose
    probed lists hold fewer than k rows raises a ``ValueError`` (raise ``n_probe`` or lower k).
    ``algorithm``, ``n_lists`` and ``random_state`` take effect at ``fit``; ``k`` and ``n_probe`` at each
    query. Fitted: ``n_lists_`` and the index ``index_`` (None for ``"brute"``). Dask arrays are searched
    exactly (``"brute"`` only).
    """

    def __init__(self, k=5, metric="l2", weights="uniform", device="auto", memory_limit="1GB", precision="float32",
                 algorithm="brute", n_lists=None, n_probe=8, random_state=None):
        self.k = k
        self.metric = metric
        self.weights = weights
        self.device = device
        self.memory_limit = memory_limit
        self.precision = precision
        self.algorithm = algorithm
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.random_state = random_state

    def _settings(self):
        """(device, memory limit in bytes), with every hyperparameter checked."""
        check_int("k", self.k, low=1)
        check_choice("metric", self.metric, METRICS)
        check_choice("weights", self.weights, WEIGHTS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        check_int("n_probe", self.n_probe, low=1)
        if self.n_lists is not None:
            check_int("n_lists", self.n_lists, low=1)
        if not (self.random_state is None or isinstance(self.random_state, np.random.Generator)):
            check_int("random_state", self.random_state, low=0)
        dev = make_device(self.device)
        return dev, min(parse_memory(self.memory_limit), dev.free_memory() // 2)

    @keeps_state_on_failure
    @on_device(lambda self, X, *rest: Device("cpu") if is_dask_array(X) else make_device(self.device))
    def fit(self, X, y) -> "KNeighborsClassifier":
        """Store X (n_samples, n_features) and class labels y (n_samples,) on the device; returns ``self``."""
        dev, _ = self._settings()
        if is_dask_array(X):
            return self._fit_on_cluster(X, y)
        X = check_X(self, X, reset=True, dtype=self.precision)
        classes, y_index = encode_labels(self, y, X.shape[0])
        if self.k > X.shape[0]:
            raise ValueError(f"k={self.k} is more than the number of training rows, n_samples={X.shape[0]}")
        X_dev = dev.xp.ascontiguousarray(dev.asarray(X))
        index = self._index(X_dev) if self.algorithm == "ivf" else None
        self.X_, self.classes_, self.y_index_ = X_dev, classes, y_index
        self.x_sq_ = (X_dev * X_dev).sum(axis=1) if self.metric != "l1" else None
        self.device_, self.offsets_ = dev, None
        self.index_, self.n_lists_ = index, None if index is None else index.n_lists_
        return self

    def _index(self, X):
        """The IVF index of the training rows X (on the device), its lists checked against n_probe."""
        n = X.shape[0]
        n_lists = self.n_lists
        if n_lists is None:
            n_lists = min(n, max(self.n_probe, default_n_lists(n)))
        elif n_lists > n:
            raise ValueError(f"n_lists={n_lists} is more than the number of training rows, n_samples={n}: "
                             "each list needs rows")
        if self.n_probe > n_lists:
            raise ValueError(f"n_probe={self.n_probe} is more than n_lists={n_lists}: a query cannot probe more "
                             "lists than the index has")
        return IVFIndex(n_lists, self.metric, self.random_state, self._settings()[1]).fit(X)

    def _fit_on_cluster(self, X, y):
        """fit for dask arrays: rows checked and kept on the workers, labels on the client."""
        from .distributed import dask_knn

        X, y, offsets = dask_knn.training_rows(X, y, self.precision)
        classes, y_index = encode_labels(self, y, X.shape[0])
        if self.k > X.shape[0]:
            raise ValueError(f"k={self.k} is more than the number of training rows, n_samples={X.shape[0]}")
        if self.algorithm != "brute":
            raise ValueError(f"algorithm={self.algorithm!r} is not available for dask arrays: the cluster searches "
                             "exactly, use algorithm='brute'")
        self.n_features_in_ = X.shape[1]
        self.X_, self.classes_, self.y_index_, self.x_sq_ = X, classes, y_index, None
        self.device_, self.offsets_ = self.device, offsets  # the device is resolved on each worker
        self.index_, self.n_lists_ = None, None
        return self

    def _neighbors(self, X, k):
        """(checked X, distances, indices) of each query's k nearest training rows, on the fitted device."""
        check_is_fitted(self)
        k = check_int("k", k, low=1)
        n = self.X_.shape[0]
        if k > n:
            raise ValueError(f"k={k} is more than the number of training rows, n_samples={n}")
        _, limit = self._settings()
        if self.offsets_ is not None:  # fitted on a Dask cluster
            from .distributed import dask_knn

            X = dask_knn.queries(X, self.n_features_in_)
            return X, *dask_knn.kneighbors(self.X_, self.offsets_, X, k, self.metric, parse_memory(self.memory_limit),
                                           self.device, self.precision)
        X = check_X(self, X, reset=False, dtype=self.precision)
        A = self.device_.xp.ascontiguousarray(self.device_.asarray(X))
        if getattr(self, "index_", None) is not None:
            d, i = self.index_.search(A, k, self.n_probe, limit)
        else:
            d, i = kneighbors_of(A, self.X_, k, self.metric, limit, self.x_sq_)
        return X, d, i

    @on_fitted_device
    def kneighbors(self, X, k: int | None = None):
        """(distances float64, indices int64), each (n_queries, k), in the input's array type."""
        X, d, i = self._neighbors(X, self.k if k is None else k)
        xp = array_module(d)
        return as_input_type(d.astype(xp.float64), X), as_input_type(i.astype(xp.int64), X)

    @on_fitted_device
    def recall_at_k(self, X, k: int | None = None, n_queries: int = 1000, random_state=None) -> float:
        """recall@k of this classifier's search against exact search, on up to ``n_queries`` rows of X (sampled).

        The share of the exact k nearest training rows that :meth:`kneighbors` finds, averaged over
        the queries: 1.0 for ``algorithm="brute"``; for ``"ivf"`` it grows with ``n_probe``.
        """
        check_is_fitted(self)
        if self.offsets_ is not None:
            raise ValueError("recall_at_k: a classifier fitted on a Dask cluster searches exactly (recall 1.0)")
        k = self.k if k is None else check_int("k", k, low=1)
        X = check_X(self, X, reset=False, dtype=self.precision)
        rows = knn_recall.sample_rows(X.shape[0], check_int("n_queries", n_queries, low=1), random_state)
        sample = X[array_module(X).asarray(rows)]
        _, _, found = self._neighbors(sample, k)
        A = self.device_.xp.ascontiguousarray(self.device_.asarray(sample))
        _, expected = kneighbors_of(A, self.X_, k, self.metric, self._settings()[1], self.x_sq_)
        return knn_recall.recall_at_k(found, expected)

    @on_fitted_device
    def predict_proba(self, X):
        """Vote shares (n_queries, n_classes), columns in ``classes_`` order."""
        X, totals = self._votes(X)
        return as_input_type(totals / totals.sum(axis=1, keepdims=True), X)

    @on_fitted_device
    def predict(self, X):
        """The label with the most votes (the smallest label on ties)."""
        X, totals = self._votes(X)
        return labels_of(self.classes_, as_input_type(totals.argmax(axis=1), X))

    def _votes(self, X):
        X, d, i = self._neighbors(X, self.k)
        d, i = to_numpy(d).astype(np.float64), to_numpy(i)
        return X, vote(self.y_index_[i], d, len(self.classes_), self.weights)


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


# --------------------------------------------------------------------------- cross-validation of k


@dataclass
class CrossValidation:
    """Accuracy of each k on each fold (``fold_accuracies``: len(ks) x folds), with mean, std and the best k."""

    ks: list
    fold_accuracies: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    best_k: int

    def table(self) -> str:
        rows = [f"{'k':>5}  {'mean':>7}  {'std':>7}"]
        rows += [f"{k:>5}  {m:7.4f}  {s:7.4f}{'  <- best' if k == self.best_k else ''}"
                 for k, m, s in zip(self.ks, self.mean, self.std)]
        return "\n".join(rows)


def cross_validate_k(X, y, ks=(1, 3, 5, 8, 10, 12, 15, 20, 50, 100), folds: int = 5, metric: str = "l2",
                     weights: str = "uniform", device="auto", memory_limit="1GB", shuffle: bool = False,
                     seed=None) -> CrossValidation:
    """Accuracy of k-NN for every k in ``ks`` over ``folds`` folds of scikit-learn's ``KFold``.

    Each fold's neighbours are found once, for the largest k; smaller k use the first
    columns. The best k has the highest mean accuracy (the smaller k on ties). X may be a
    dask array: each fold is then searched on the cluster.
    """
    probe = KNeighborsClassifier(1, metric, weights, device, memory_limit)
    if is_dask_array(X):  # the folds are searched on the cluster
        from .distributed import dask_knn

        X, y, _ = dask_knn.training_rows(X, y)
        rows = X.__getitem__
    else:
        X = check_X(probe, X, reset=True)  # the folds' fits check X again: this one reads any array-like once
        y = to_numpy(y)
        rows = lambda index: X[array_module(X).asarray(index)]  # noqa: E731
    encode_labels(probe, y, X.shape[0])
    y = y.reshape(-1)  # a column vector is accepted (with a warning) like in fit
    n = X.shape[0]
    folds = check_int("folds", folds, low=2)
    if folds > n:
        raise ValueError(f"folds={folds} is more than the {n} rows")
    ks = sorted({check_int("ks[]", k, low=1) for k in ks}) if len(ks) else []
    if not ks:
        raise ValueError("ks is empty: give the values of k to compare")
    smallest_train = n - -(-n // folds)
    if ks[-1] > smallest_train:
        raise ValueError(f"k={ks[-1]} is more than the {smallest_train} training rows of a fold")
    splitter = KFold(folds, shuffle=bool(shuffle), random_state=seed if shuffle else None)
    acc = np.zeros((len(ks), folds))
    for f, (train, val) in enumerate(splitter.split(np.zeros((n, 1)))):
        knn = KNeighborsClassifier(ks[-1], metric, weights, device, memory_limit)
        knn.fit(rows(train), y[train])
        d, i = (to_numpy(a) for a in knn.kneighbors(rows(val)))
        labels = knn.y_index_[i]
        for row, k in enumerate(ks):
            winners = vote(labels[:, :k], d[:, :k], len(knn.classes_), weights).argmax(axis=1)
            acc[row, f] = accuracy_score(y[val], knn.classes_[winners])
    mean, std = acc.mean(axis=1), acc.std(axis=1)
    return CrossValidation(ks, acc, mean, std, ks[int(np.argmax(mean))])
