"""k-nearest neighbours: distance matrices, bounded-memory top-k, voting, and cross-validation of k.

Distances: "l1" (sum of absolute differences), "l2" (Euclidean), "sqeuclidean".
L2 uses ||a||^2 + ||b||^2 - 2 a.b with the product on BLAS/cuBLAS and a fused
epilogue; L1 uses a tiled kernel (see gpunn.kernels.distances). Both go through
:mod:`gpunn.ops`, which picks the kernel for the data's device.

Top-k never holds the whole Q x N matrix when it would not fit ``memory_limit``:
queries and training rows are taken in tiles, each tile's k best merged into a
running k best. Neighbours come sorted by distance, ties broken by the lower
training index; vote ties go to the smallest label, as ``np.bincount(...).argmax()``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from . import ops
from .devices import array_module, to_numpy
from .devices import device as make_device
from .estimator import DeviceClassifier, as_input_type, check_X, encode_labels, keeps_state_on_failure, labels_of
from .validation import check_array, check_choice, check_finite, check_int

METRICS = ("l1", "l2", "sqeuclidean")
WEIGHTS = ("uniform", "distance")
PRECISIONS = ("float32", "float64")
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
    return ops.l2_epilogue(A @ B.T, a_sq, b_sq, metric == "l2")


def pairwise_distances(A, B, metric: str = "l2", device="auto", precision: str = "float32"):
    """Distance matrix (len(A), len(B)) between the rows of A and B, on ``device`` (NumPy or CuPy array).

    ``precision="float64"`` computes in float64, for users who need exact ties.
    """
    check_choice("metric", metric, METRICS)
    dev = make_device(device)
    dtype = check_choice("precision", precision, PRECISIONS)
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
            if best_d is None:
                best_d, best_i = d, i
            else:  # the running best come first and have the lower indices: a stable sort keeps that order on ties
                cat_d, cat_i = xp.concatenate([best_d, d], axis=1), xp.concatenate([best_i, i], axis=1)
                order = _stable_argsort(xp, cat_d)[:, :k]
                best_d, best_i = xp.take_along_axis(cat_d, order, axis=1), xp.take_along_axis(cat_i, order, axis=1)
        out_d.append(best_d)
        out_i.append(best_i)
    return xp.concatenate(out_d), xp.concatenate(out_i)


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


class KNeighborsClassifier(DeviceClassifier):
    """k-nearest-neighbour classifier, a scikit-learn classifier on NumPy or CuPy.

    ``fit`` stores the training rows on ``device`` (in ``precision``); ``kneighbors``
    returns distances and indices sorted by distance (ties by lower training index);
    ``predict`` votes (ties to the smallest label). ``memory_limit`` bounds the temporary
    memory of a query ("1GB", "512MiB", bytes); it is lowered to half the device's free
    memory when that is less. Results come back in the input's array type (NumPy in, NumPy
    out; CuPy in, CuPy out). Fitted: ``classes_``, ``n_features_in_``, ``feature_names_in_``
    (DataFrames), ``device_``, and the training rows ``X_`` on the device.
    """

    def __init__(self, k=5, metric="l2", weights="uniform", device="auto", memory_limit="1GB", precision="float32"):
        self.k = k
        self.metric = metric
        self.weights = weights
        self.device = device
        self.memory_limit = memory_limit
        self.precision = precision

    def _settings(self):
        """(device, memory limit in bytes), with every hyperparameter checked."""
        check_int("k", self.k, low=1)
        check_choice("metric", self.metric, METRICS)
        check_choice("weights", self.weights, WEIGHTS)
        check_choice("precision", self.precision, PRECISIONS)
        dev = make_device(self.device)
        return dev, min(parse_memory(self.memory_limit), dev.free_memory() // 2)

    @keeps_state_on_failure
    def fit(self, X, y) -> "KNeighborsClassifier":
        """Store X (n_samples, n_features) and class labels y (n_samples,) on the device; returns ``self``."""
        dev, _ = self._settings()
        X = check_X(self, X, reset=True, dtype=self.precision)
        classes, y_index = encode_labels(self, y, X.shape[0])
        if self.k > X.shape[0]:
            raise ValueError(f"k={self.k} is more than the number of training rows, n_samples={X.shape[0]}")
        X_dev = dev.asarray(X)
        self.X_, self.classes_, self.y_index_ = X_dev, classes, y_index
        self.x_sq_ = (X_dev * X_dev).sum(axis=1) if self.metric != "l1" else None
        self.device_ = dev
        return self

    def _neighbors(self, X, k):
        """(checked X, distances, indices) of each query's k nearest training rows, on the fitted device."""
        check_is_fitted(self)
        k = check_int("k", k, low=1)
        n = self.X_.shape[0]
        if k > n:
            raise ValueError(f"k={k} is more than the number of training rows, n_samples={n}")
        _, limit = self._settings()
        X = check_X(self, X, reset=False, dtype=self.precision)
        d, i = kneighbors_of(self.device_.asarray(X), self.X_, k, self.metric, limit, self.x_sq_)
        return X, d, i

    def kneighbors(self, X, k: int | None = None):
        """(distances float64, indices int64), each (n_queries, k), in the input's array type."""
        X, d, i = self._neighbors(X, self.k if k is None else k)
        xp = array_module(d)
        return as_input_type(d.astype(xp.float64), X), as_input_type(i.astype(xp.int64), X)

    def predict_proba(self, X):
        """Vote shares (n_queries, n_classes), columns in ``classes_`` order."""
        X, totals = self._votes(X)
        return as_input_type(totals / totals.sum(axis=1, keepdims=True), X)

    def predict(self, X):
        """The label with the most votes (the smallest label on ties)."""
        X, totals = self._votes(X)
        return labels_of(self.classes_, as_input_type(totals.argmax(axis=1), X))

    def _votes(self, X):
        X, d, i = self._neighbors(X, self.k)
        d, i = to_numpy(d).astype(np.float64), to_numpy(i)
        return X, vote(self.y_index_[i], d, len(self.classes_), self.weights)


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
    columns. The best k has the highest mean accuracy (the smaller k on ties).
    """
    probe = KNeighborsClassifier(1, metric, weights, device, memory_limit)
    X = check_X(probe, X, reset=True)  # the folds' fits check X again: this one reads any array-like once
    y = to_numpy(y)
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
    xp = array_module(X)
    acc = np.zeros((len(ks), folds))
    for f, (train, val) in enumerate(splitter.split(np.zeros((n, 1)))):
        knn = KNeighborsClassifier(ks[-1], metric, weights, device, memory_limit)
        knn.fit(X[xp.asarray(train)], y[train])
        d, i = (to_numpy(a) for a in knn.kneighbors(X[xp.asarray(val)]))
        labels = knn.y_index_[i]
        for row, k in enumerate(ks):
            winners = vote(labels[:, :k], d[:, :k], len(knn.classes_), weights).argmax(axis=1)
            acc[row, f] = accuracy_score(y[val], knn.classes_[winners])
    mean, std = acc.mean(axis=1), acc.std(axis=1)
    return CrossValidation(ks, acc, mean, std, ks[int(np.argmax(mean))])
