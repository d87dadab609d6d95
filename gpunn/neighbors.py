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
from .knn.auto_probe import N_QUERIES, check_target, held_out, tune_n_probe
from .knn.exact import METRICS, PRECISIONS, kneighbors as kneighbors_of, pairwise_distances, parse_memory  # noqa: F401
from .knn.exact import squared_norms
from .knn.ivf import IVFIndex, default_n_lists
from .knn.leave_one_out import drop_self
from .validation import check_choice, check_int

__all__ = ["CrossValidation", "KNeighborsClassifier", "cross_validate_k", "pairwise_distances"]

WEIGHTS = ("uniform", "distance")
ALGORITHMS = ("brute", "ivf")


class KNeighborsClassifier(DeviceClassifier):
    """k-nearest-neighbour classifier, a scikit-learn classifier on NumPy, CuPy or a Dask cluster.

    ``fit`` stores the training rows on ``device`` (in ``precision``); ``kneighbors`` returns distances and
    indices sorted by distance (ties by lower training index), and without X the training rows' own
    neighbours, each row left out (scikit-learn's rule); ``kneighbors_graph`` the same as a sparse matrix;
    ``predict`` votes (ties to the smallest label). Results come back in the input's array type (NumPy in,
    NumPy out; CuPy in, CuPy out).

    Parameters
    ----------
    k : int, default 5
        Neighbours per query.
    metric : {"l2", "l1", "sqeuclidean"}, default "l2"
        The distance: Euclidean, Manhattan (sum of absolute differences), or Euclidean squared (the same
        neighbours as "l2", distances returned squared); "brute" and "ivf" alike.
    weights : {"uniform", "distance"}, default "uniform"
        "distance": each neighbour votes 1/d, and exact matches (d = 0) alone where a query has any.
    device : str or Device, default "auto"
        Where the training rows are kept and searched: "cpu", "cuda", "cuda:N", or "auto" (CUDA device 0
        where usable, else the CPU). On a Dask cluster it is resolved on each worker.
    memory_limit : str or int, default "1GB"
        Temporary memory of a query ("1GB", "512MiB", bytes); lowered to half the device's free memory.
    precision : {"float32", "float64"}, default "float32"
        The dtype the rows are kept and searched in. float32 neighbours are ordered as float64's would be
        (L1 sums in float64, L2 near-ties measured again in float64); distances come back in this dtype.
    algorithm : {"brute", "ivf"}, default "brute"
        "brute": exact search. "ivf": an inverted-file index (:class:`gpunn.knn.IVFIndex`) built by ``fit``:
        ``n_lists`` k-means centroids, and a query scans the rows of its ``n_probe`` nearest lists only.
    n_lists : int or None, default None
        IVF lists; None: about sqrt(n_samples) (at least ``n_probe``).
    n_probe : int or "auto", default 8
        IVF lists a query scans, at least: a query whose n_probe nearest lists hold fewer than k rows goes
        on to the next-nearest until they hold k, so no valid query is refused. ``n_probe = n_lists`` answers
        as "brute" does. "auto": ``fit`` chooses the smallest n_probe whose recall@k, measured on up to 1,000
        held-out training rows (each searched against the others), reaches ``target_recall``.
    target_recall : float in (0, 1], default 0.95
        The recall@k ``n_probe="auto"`` aims at.
    random_state : int, np.random.Generator or None, default None
        Seeds k-means and the held-out rows: the same seed, the same index.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (DataFrames), device_
        As scikit-learn's; ``device_`` is the device the rows live on.
    X_ : array (n_samples, n_features)
        The training rows on the device (a dask array on a cluster).
    index_ : IVFIndex, DaskIVFIndex or None
        The IVF index (None for "brute").
    n_lists_ : int or None
    n_probe_ : int or None
        The n_probe ``fit`` chose ("auto") or was given; None for "brute".
    n_probe_recall_ : float or None
        recall@k measured at ``n_probe_`` on the held-out training rows ("auto" only).

    Notes
    -----
    On a Dask cluster: ``fit`` with X (and y) as dask arrays chunked by rows keeps the rows on the workers;
    queries (NumPy or dask) are answered there, each worker searching its chunks on its own device
    (``device`` is resolved on the worker: its GPU under dask-cuda) within ``memory_limit``, and the answers
    merge exactly, in one process's order; results come back as NumPy arrays. With ``algorithm="ivf"``
    k-means trains on a sample of the rows and each worker keeps the lists of its own rows
    (``gpunn.distributed.dask_ivf.DaskIVFIndex``): the answers equal one process's IVF index.

    ``algorithm``, ``n_lists``, ``target_recall`` and ``random_state`` take effect at ``fit``; ``k`` and an
    integer ``n_probe`` at each query.

    Examples
    --------
    >>> s = gn.data.load_digits()
    >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(s.X_train, s.y_train)
    >>> d, i = knn.kneighbors(s.X_test[:2])
    >>> i.shape
    (2, 3)
    >>> d, i = knn.kneighbors()                       # the training rows' neighbours, each row left out
    >>> bool((i != np.arange(len(s.X_train))[:, None]).all())
    True
    >>> knn.kneighbors_graph(s.X_test[:2]).toarray().sum(axis=1)
    array([3., 3.])
    >>> ann = gn.KNeighborsClassifier(k=5, algorithm="ivf", n_probe="auto", target_recall=0.9, random_state=0)
    >>> ann = ann.fit(s.X_train, s.y_train)
    >>> ann.n_probe_recall_ >= 0.9
    True
    """

    def __init__(self, k=5, metric="l2", weights="uniform", device="auto", memory_limit="1GB", precision="float32",
                 algorithm="brute", n_lists=None, n_probe=8, target_recall=0.95, random_state=None):
        self.k = k
        self.metric = metric
        self.weights = weights
        self.device = device
        self.memory_limit = memory_limit
        self.precision = precision
        self.algorithm = algorithm
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.target_recall = target_recall
        self.random_state = random_state

    def _settings(self):
        """(device, memory limit in bytes), with every hyperparameter checked."""
        check_int("k", self.k, low=1)
        check_choice("metric", self.metric, METRICS)
        check_choice("weights", self.weights, WEIGHTS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        if isinstance(self.n_probe, str):
            check_choice("n_probe", self.n_probe, ("auto",))
        else:
            check_int("n_probe", self.n_probe, low=1)
        check_target(self.target_recall)
        if self.n_lists is not None:
            check_int("n_lists", self.n_lists, low=1)
        if not (self.random_state is None or isinstance(self.random_state, np.random.Generator)):
            check_int("random_state", self.random_state, low=0)
        dev = make_device(self.device)
        return dev, min(parse_memory(self.memory_limit), dev.free_memory() // 2)

    @keeps_state_on_failure
    @on_device(lambda self, X, *rest: Device("cpu") if is_dask_array(X) else make_device(self.device))
    def fit(self, X, y) -> "KNeighborsClassifier":
        """Store X (n_samples, n_features) and class labels y (n_samples,) on the device; returns ``self``.

        With ``algorithm="ivf"``, builds the index (and with ``n_probe="auto"`` chooses n_probe). A fit that
        raises leaves the classifier as it was.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            The training rows: NumPy, CuPy, a DataFrame, anything scikit-learn takes, or a dask array
            chunked by rows (the rows then stay on the cluster's workers). Finite; stored in ``precision``.
        y : array_like of shape (n_samples,)
            Class labels: integers, strings, booleans or whole-number floats (a column vector is accepted
            with scikit-learn's warning).

        Returns
        -------
        KNeighborsClassifier
            ``self``, fitted.

        Raises
        ------
        ValueError
            If a hyperparameter is out of range, X or y is malformed or not finite, ``k`` is more than the
            training rows, or (for "ivf") ``n_lists`` is more than the rows or ``n_probe`` more than ``n_lists``.
        TypeError
            If an integer hyperparameter (``k``, ``n_lists``, a numeric ``n_probe``) is not an integer.

        Examples
        --------
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]])
        >>> y = np.array(["a", "a", "a", "b", "b", "b"])
        >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, y)
        >>> knn.classes_, knn.X_.dtype
        (array(['a', 'b'], dtype='<U1'), dtype('float32'))
        >>> gn.KNeighborsClassifier(k=10, device="cpu").fit(X, y)
        Traceback (most recent call last):
        ...
        ValueError: k=10 is more than the number of training rows, n_samples=6
        """
        dev, limit = self._settings()
        if is_dask_array(X):
            return self._fit_on_cluster(X, y)
        X = check_X(self, X, reset=True, dtype=self.precision)
        classes, y_index = encode_labels(self, y, X.shape[0])
        if self.k > X.shape[0]:
            raise ValueError(f"k={self.k} is more than the number of training rows, n_samples={X.shape[0]}")
        X_dev = dev.xp.ascontiguousarray(dev.asarray(X))
        rows = self._held_out(X.shape[0])
        x_sq = squared_norms(X_dev) if self.metric != "l1" else None
        index = IVFIndex(self._n_lists(X.shape[0]), self.metric, self.random_state, limit).fit(X_dev) \
            if self.algorithm == "ivf" else None
        choice = None
        if rows is not None:
            H = X_dev[dev.xp.asarray(rows)]
            self_rows = dev.xp.asarray(rows)
            truth = drop_self(*kneighbors_of(H, X_dev, self.k + 1, self.metric, limit, x_sq), self_rows)[1]
            choice = tune_n_probe(index, H, self_rows, truth, X_dev[truth.ravel()], self.k, self.target_recall, limit)
        self.X_, self.classes_, self.y_index_, self.x_sq_ = X_dev, classes, y_index, x_sq
        self.device_, self.offsets_ = dev, None
        self._keep_index(index, choice)
        return self

    def _n_lists(self, n: int) -> int:
        """The IVF lists for n training rows, checked against n and an integer n_probe."""
        n_lists = self.n_lists
        if n_lists is None:
            n_lists = default_n_lists(n) if self.n_probe == "auto" else min(n, max(self.n_probe, default_n_lists(n)))
        elif n_lists > n:
            raise ValueError(f"n_lists={n_lists} is more than the number of training rows, n_samples={n}: "
                             "each list needs rows")
        if self.n_probe != "auto" and self.n_probe > n_lists:
            raise ValueError(f"n_probe={self.n_probe} is more than n_lists={n_lists}: a query cannot probe more "
                             "lists than the index has")
        return n_lists

    def _held_out(self, n: int):
        """The training rows n_probe="auto" measures recall on (sorted, seeded), or None when it is not asked for."""
        if self.algorithm != "ivf" or self.n_probe != "auto":
            return None
        return held_out(n, self.k, N_QUERIES, self.random_state)

    def _keep_index(self, index, choice) -> None:
        self.index_, self.n_lists_ = index, None if index is None else index.n_lists_
        self.n_probe_ = None if index is None else choice.n_probe if choice is not None else self.n_probe
        self.n_probe_recall_ = None if choice is None else choice.recall

    def _fit_on_cluster(self, X, y):
        """fit for dask arrays: rows checked and kept on the workers (with their IVF lists), labels on the client."""
        from .distributed import dask_ivf, dask_knn

        X, y, offsets = dask_knn.training_rows(X, y, self.precision)
        classes, y_index = encode_labels(self, y, X.shape[0])
        n = X.shape[0]
        if self.k > n:
            raise ValueError(f"k={self.k} is more than the number of training rows, n_samples={n}")
        rows = self._held_out(n)
        index, choice = None, None
        if self.algorithm == "ivf":
            limit = parse_memory(self.memory_limit)
            index = dask_ivf.DaskIVFIndex(self._n_lists(n), self.metric, self.random_state, limit, self.device,
                                          self.precision).fit(X, offsets)
            if rows is not None:
                H = np.ascontiguousarray(X[rows].compute())
                truth = drop_self(*dask_knn.kneighbors(X, offsets, H, self.k + 1, self.metric, limit, self.device,
                                                       self.precision), rows)[1]
                choice = tune_n_probe(index, H, rows, truth, X[truth.ravel()].compute(), self.k, self.target_recall)
        self.n_features_in_ = X.shape[1]
        self.X_, self.classes_, self.y_index_, self.x_sq_ = X, classes, y_index, None
        self.device_, self.offsets_ = self.device, offsets  # the device is resolved on each worker
        self._keep_index(index, choice)
        return self

    def _probe_count(self) -> int:
        return self.n_probe_ if self.n_probe == "auto" else self.n_probe

    def _neighbors(self, X, k):
        """(checked X, distances, indices) of each query's k nearest training rows, on the fitted device.

        X None: the training rows themselves, each left out of its own list (k + 1 searched, then the row dropped).
        """
        check_is_fitted(self)
        k = check_int("k", k, low=1)
        n = self.X_.shape[0]
        own = X is None
        if k + own > n:
            raise ValueError(f"k={k} is more than the number of training rows{' besides the query row' * own}, "
                             f"n_samples={n}")
        _, limit = self._settings()
        if self.offsets_ is not None:  # fitted on a Dask cluster
            from .distributed import dask_knn

            X = self.X_ if own else dask_knn.queries(X, self.n_features_in_)
            if self.index_ is not None:
                d, i = self.index_.search(X, k + own, self._probe_count())
            else:
                d, i = dask_knn.kneighbors(self.X_, self.offsets_, X, k + own, self.metric,
                                           parse_memory(self.memory_limit), self.device, self.precision)
            if own:
                d, i = drop_self(d, i, np.arange(n))
            return (d if own else X), d, i  # results on the host: NumPy in, NumPy out
        if own:
            A = self.X_
        else:
            X = check_X(self, X, reset=False, dtype=self.precision)
            A = self.device_.xp.ascontiguousarray(self.device_.asarray(X))
        if getattr(self, "index_", None) is not None:
            d, i = self.index_.search(A, k + own, self._probe_count(), limit)
        else:
            d, i = kneighbors_of(A, self.X_, k + own, self.metric, limit, self.x_sq_)
        if own:
            d, i = drop_self(d, i, self.device_.xp.arange(n, dtype=np.int64))
        return (self.X_ if own else X), d, i

    @on_fitted_device
    def kneighbors(self, X=None, k: int | None = None, return_distance: bool = True):
        """The k nearest training rows of each query, sorted by distance (ties by the lower training row).

        Parameters
        ----------
        X : array (n_queries, n_features) or None, default None
            The queries; None: the training rows, each left out of its own neighbours (scikit-learn's rule:
            where k + 1 duplicates of a row come before it, its first neighbour is left out instead).
        k : int or None, default None
            Neighbours per query; None: the classifier's ``k``.
        return_distance : bool, default True
            Return the distances with the indices; False: the indices alone.

        Returns
        -------
        distances : array (n_queries, k) float64
            Only when ``return_distance``.
        indices : array (n_queries, k) int64
            In the input's array type (the device's for X None; NumPy on a Dask cluster).

        Examples
        --------
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]])
        >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, [0, 0, 0, 1, 1, 1])
        >>> d, i = knn.kneighbors(np.array([[0.2, 0.1]]))
        >>> d
        array([[0.2236, 0.8062, 0.922 ]])
        >>> i
        array([[0, 2, 1]])
        >>> knn.kneighbors(np.array([[0.2, 0.1]]), k=2, return_distance=False)
        array([[0, 2]])
        >>> knn.kneighbors(k=1, return_distance=False).ravel()   # the training rows, each left out
        array([1, 0, 0, 4, 3, 3])
        """
        X, d, i = self._neighbors(X, self.k if k is None else k)
        xp = array_module(d)
        i = as_input_type(i.astype(xp.int64), X)
        return (as_input_type(d.astype(xp.float64), X), i) if return_distance else i

    @on_fitted_device
    def kneighbors_graph(self, X=None, k: int | None = None, mode: str = "connectivity"):
        """The neighbours as a sparse (n_queries, n_samples) matrix, as scikit-learn's ``kneighbors_graph``.

        Parameters
        ----------
        X : array (n_queries, n_features) or None, default None
            As :meth:`kneighbors`; None: the training rows, each left out of its own row of the graph.
        k : int or None, default None
            Neighbours per query; None: the classifier's ``k``.
        mode : {"connectivity", "distance"}, default "connectivity"
            The entries: 1.0 for each neighbour, or its distance.

        Returns
        -------
        scipy.sparse.csr_matrix (n_queries, n_samples) float64
            Row q holds query q's k neighbours (on the host whatever the device).

        Examples
        --------
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]])
        >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, [0, 0, 0, 1, 1, 1])
        >>> knn.kneighbors_graph(np.array([[0.2, 0.1]])).toarray()
        array([[1., 1., 1., 0., 0., 0.]])
        >>> knn.kneighbors_graph(np.array([[0.2, 0.1]]), k=2, mode="distance").toarray()
        array([[0.2236, 0.    , 0.8062, 0.    , 0.    , 0.    ]])
        """
        from scipy.sparse import csr_matrix

        check_choice("mode", mode, ("connectivity", "distance"))
        _, d, i = self._neighbors(X, self.k if k is None else k)
        d, i = to_numpy(d).astype(np.float64), to_numpy(i)
        q, width = i.shape
        data = np.ones(q * width) if mode == "connectivity" else d.ravel()
        return csr_matrix((data, i.ravel(), np.arange(0, q * width + 1, width)), shape=(q, self.X_.shape[0]))

    @on_fitted_device
    def recall_at_k(self, X, k: int | None = None, n_queries: int = 1000, random_state=None) -> float:
        """recall@k of this classifier's search against exact search, on up to ``n_queries`` rows of X (sampled).

        The share of the exact k nearest training rows that :meth:`kneighbors` finds, averaged over
        the queries: 1.0 for ``algorithm="brute"``; for ``"ivf"`` it grows with ``n_probe``.

        Parameters
        ----------
        X : array_like of shape (n_rows, n_features)
            Queries (NumPy, CuPy, anything scikit-learn takes; NumPy or dask on a Dask cluster).
        k : int or None, default=None
            Neighbours per query; None: the classifier's ``k``.
        n_queries : int, default=1000
            How many rows of X, drawn at random without replacement, are searched both ways (all, if X
            has no more).
        random_state : int, numpy.random.Generator or None, default=None
            Seeds the draw of the rows.

        Returns
        -------
        float
            recall@k (:func:`gpunn.knn.recall_at_k`), in [0, 1].

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((60, 4)).astype(np.float32)
        >>> y = (X[:, 0] > 0).astype(int)
        >>> ivf = gn.KNeighborsClassifier(k=5, algorithm="ivf", n_lists=6, n_probe=1, random_state=0, device="cpu")
        >>> ivf.fit(X, y).recall_at_k(X, n_queries=20, random_state=0)
        0.73
        >>> gn.KNeighborsClassifier(k=5, device="cpu").fit(X, y).recall_at_k(X, n_queries=20, random_state=0)
        1.0
        """
        check_is_fitted(self)
        k = self.k if k is None else check_int("k", k, low=1)
        rows = knn_recall.sample_rows(X.shape[0] if hasattr(X, "shape") else len(X),
                                      check_int("n_queries", n_queries, low=1), random_state)
        if self.offsets_ is not None:
            from .distributed import dask_knn

            sample = dask_knn.queries(X, self.n_features_in_)[rows]
            sample = np.asarray(sample.compute() if is_dask_array(sample) else sample)
            _, _, found = self._neighbors(sample, k)
            expected = dask_knn.kneighbors(self.X_, self.offsets_, sample, k, self.metric,
                                           parse_memory(self.memory_limit), self.device, self.precision)[1]
            return knn_recall.recall_at_k(found, expected)
        X = check_X(self, X, reset=False, dtype=self.precision)
        sample = X[array_module(X).asarray(rows)]
        _, _, found = self._neighbors(sample, k)
        A = self.device_.xp.ascontiguousarray(self.device_.asarray(sample))
        _, expected = kneighbors_of(A, self.X_, k, self.metric, self._settings()[1], self.x_sq_)
        return knn_recall.recall_at_k(found, expected)

    @on_fitted_device
    def predict_proba(self, X):
        """Vote shares (n_queries, n_classes), columns in ``classes_`` order.

        Parameters
        ----------
        X : array_like of shape (n_queries, n_features)
            Queries (NumPy, CuPy, anything scikit-learn takes; NumPy or dask on a Dask cluster).

        Returns
        -------
        array of shape (n_queries, n_classes), float64
            Each class's share of the query's votes (one vote per neighbour, or 1/d with
            ``weights="distance"``), rows summing to 1; in the input's array type (NumPy on a Dask cluster).

        Examples
        --------
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]])
        >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, ["a", "a", "a", "b", "b", "b"])
        >>> knn.predict_proba(np.array([[0.2, 0.1], [3.0, 3.0]]))
        array([[1.    , 0.    ],
               [0.6667, 0.3333]])
        """
        X, totals = self._votes(X)
        return as_input_type(totals / totals.sum(axis=1, keepdims=True), X)

    @on_fitted_device
    def predict(self, X):
        """The label with the most votes (the smallest label on ties).

        Parameters
        ----------
        X : array_like of shape (n_queries, n_features)
            Queries (NumPy, CuPy, anything scikit-learn takes; NumPy or dask on a Dask cluster).

        Returns
        -------
        array of shape (n_queries,)
            Labels from ``classes_``: in the input's array type where it can hold them (CuPy holds numbers
            and booleans only: string labels come back as NumPy).

        Examples
        --------
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]])
        >>> knn = gn.KNeighborsClassifier(k=3, device="cpu").fit(X, ["a", "a", "a", "b", "b", "b"])
        >>> knn.predict(np.array([[0.2, 0.1], [4.0, 4.0]]))
        array(['a', 'b'], dtype='<U1')
        """
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
    """Accuracy of each k on each fold (``fold_accuracies``: len(ks) x folds), with mean, std and the best k.

    What :func:`cross_validate_k` returns.

    Parameters
    ----------
    ks : list of int
        The values of k compared, ascending.
    fold_accuracies : numpy.ndarray of shape (len(ks), folds)
        The accuracy of each k on each fold's held-out rows.
    mean : numpy.ndarray of shape (len(ks),)
        Each k's mean accuracy over the folds.
    std : numpy.ndarray of shape (len(ks),)
        Its standard deviation over the folds (population, ``ddof=0``).
    best_k : int
        The k with the highest mean accuracy (the smaller k on ties).

    Examples
    --------
    >>> cv = gn.neighbors.CrossValidation([1, 3], np.array([[0.9, 0.8], [1.0, 0.9]]), np.array([0.85, 0.95]),
    ...                                   np.array([0.05, 0.05]), 3)
    >>> print(cv.table())
        k     mean      std
        1   0.8500   0.0500
        3   0.9500   0.0500  <- best
    """

    ks: list
    fold_accuracies: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    best_k: int

    def table(self) -> str:
        """The results as text: a header, then one row per k (mean and std to 4 places), the best marked.

        Returns
        -------
        str
            The lines of the table, joined by newlines (no trailing newline).

        Examples
        --------
        >>> cv = gn.neighbors.CrossValidation([1, 5], np.zeros((2, 3)), np.array([0.8, 0.7]), np.zeros(2), 1)
        >>> print(cv.table())
            k     mean      std
            1   0.8000   0.0000  <- best
            5   0.7000   0.0000
        """
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

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        The rows: NumPy, CuPy, anything scikit-learn takes, or a dask array chunked by rows.
    y : array_like of shape (n_samples,)
        Their class labels (as :meth:`KNeighborsClassifier.fit` takes them).
    ks : sequence of int, default=(1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
        The values of k to compare, each >= 1 and no more than a fold's training rows; duplicates are
        dropped and the rest sorted.
    folds : int, default=5
        The number of folds, 2 <= folds <= n_samples.
    metric : {"l2", "l1", "sqeuclidean"}, default="l2"
        As :class:`KNeighborsClassifier`'s.
    weights : {"uniform", "distance"}, default="uniform"
        As :class:`KNeighborsClassifier`'s.
    device : str or Device, default="auto"
        As :class:`KNeighborsClassifier`'s.
    memory_limit : str or int, default="1GB"
        As :class:`KNeighborsClassifier`'s.
    shuffle : bool, default=False
        Shuffle the rows before they are split into folds (else the folds are consecutive rows).
    seed : int or None, default=None
        Seeds the shuffle (ignored without ``shuffle``).

    Returns
    -------
    CrossValidation
        Each k's accuracy on each fold, their mean and std, and the best k.

    Raises
    ------
    ValueError
        If ``folds`` is more than the rows, ``ks`` is empty, the largest k is more than a fold's
        training rows, or X, y or another argument is malformed.
    TypeError
        If ``folds`` or a value of ``ks`` is not an integer.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(int)
    >>> cv = gn.neighbors.cross_validate_k(X, y, ks=(1, 5, 15), folds=4, device="cpu")
    >>> cv.best_k, cv.fold_accuracies.shape
    (5, (3, 4))
    >>> print(cv.table())
        k     mean      std
        1   0.8000   0.0000
        5   0.8667   0.1054  <- best
       15   0.8333   0.0745
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
