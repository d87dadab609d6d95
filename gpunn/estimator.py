"""scikit-learn's estimator conventions on gpunn's devices.

gpunn's estimators are scikit-learn estimators: they derive from ``BaseEstimator`` and its
mixins (parameters, ``clone``, repr, tags, ``score``), validate host input with
``validate_data`` (``n_features_in_``, ``feature_names_in_``), refuse to predict before
``fit`` with ``check_is_fitted`` (``NotFittedError``) and encode class labels with
``LabelEncoder``. What stays here is what scikit-learn cannot do on a GPU:

- :func:`check_X` checks a CuPy array on its device (no copy to the host), with the same
  rules and messages as the NumPy path;
- :func:`as_input_type`: results come back in the array type of the input (NumPy in,
  NumPy out; CuPy in, CuPy out on the same device), scikit-learn's array-API rule;
- :func:`keeps_state_on_failure`: a ``fit`` that raises leaves the estimator as it was.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from .devices import FLOAT_DTYPES, Device, device_of, on_device, to_numpy
from .devices import device as make_device
from .validation import check_finite


def is_device_array(a) -> bool:
    """True for arrays that live on a GPU (CuPy)."""
    return device_of(a).type == "cuda"


def as_input_type(result, X):
    """``result`` in the array type and on the device of the input ``X``."""
    return device_of(X).asarray(result)


def onto(dev, X):
    """``X`` for computing on ``dev``: a GPU array living elsewhere is moved there; host arrays stay on the host.

    NumPy input is left for the Trainer and the model's forward pass, which move it in batches (or
    whole, when it fits in the GPU's memory).
    """
    return dev.asarray(X) if is_device_array(X) and device_of(X) != dev else X


# An estimator's fit runs on the device its ``device`` parameter names; its predictions on the device it was
# fitted on (``device_``; the CPU before a fit, or for a classifier fitted on a Dask cluster).
on_fit_device = on_device(lambda self, *args: make_device(self.device))
on_fitted_device = on_device(
    lambda self, *args: self.device_ if isinstance(getattr(self, "device_", None), Device) else Device("cpu"))
# A transformer computes where its input lives (its statistics follow the data).
on_input_device = on_device(lambda self, X, *rest: device_of(X))


def keeps_state_on_failure(fit):
    """Decorate ``fit`` so that, when it raises, the estimator's attributes are put back as they were.

    Fits build new objects and assign them (never change fitted state in place), so a
    shallow copy of ``__dict__`` is the whole state to restore.
    """

    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return guarded


def check_X(estimator, X, *, reset: bool, dtype=FLOAT_DTYPES):
    """X as a finite (n_samples, n_features) floating-point matrix, checked for ``estimator``.

    ``reset=True`` (in ``fit``) records ``n_features_in_`` (and ``feature_names_in_`` for
    DataFrames); ``reset=False`` checks X against them. ``dtype``: the accepted float
    dtypes, the first one for everything else (integers, booleans, objects holding numbers).
    NumPy-like input (lists, DataFrames, memmaps) goes through scikit-learn's
    ``validate_data``; CuPy arrays are checked on their device and stay there.
    """
    dtype = tuple(np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,)))
    if is_device_array(X):
        X = _check_device_matrix(estimator, X, dtype)
        validate_data(estimator, X, reset=reset, skip_check_array=True)  # n_features_in_ bookkeeping only
    else:
        X = validate_data(estimator, X, reset=reset, dtype=list(dtype), ensure_all_finite=False)
    check_finite("X", X)  # one message on every device; the scan runs where X lives
    return X


def check_matrix(estimator, X, dtype=FLOAT_DTYPES):
    """X as :func:`check_X` makes it, without the feature-count bookkeeping (for inputs of another width)."""
    dtype = tuple(np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,)))
    if is_device_array(X):
        X = _check_device_matrix(estimator, X, dtype)
    else:
        X = check_array(X, dtype=list(dtype), ensure_all_finite=False, estimator=estimator, input_name="X")
    check_finite("X", X)
    return X


def _check_device_matrix(estimator, X, dtype):
    """The checks of scikit-learn's ``check_array`` for a CuPy array, without leaving the device."""
    name = type(estimator).__name__
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: X has dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array for X (samples, features), got shape {tuple(X.shape)}. Reshape your data "
            "either using X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it is a single sample."
        )
    for axis, what in ((0, "sample"), (1, "feature")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {what}(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
                             f"required by {name}.")
    return X if X.dtype in dtype else X.astype(dtype[0])


def encode_labels(estimator, y, n_samples: int):
    """(classes, y_index): the sorted distinct labels of ``y`` and each row's index into them (host NumPy).

    Any labels scikit-learn accepts for classification: integers of any sign, strings,
    booleans, whole-number floats. ``y`` may be a list, a Series, a NumPy or a CuPy array.
    """
    name = type(estimator).__name__
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    y = to_numpy(y)  # labels are few and small: they live on the host
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(f"y must be 1-D class labels, got shape {y.shape}; for one-hot rows use y.argmax(1)")
    if y.ndim == 2:
        y = column_or_1d(y, warn=True)  # a column vector: scikit-learn's DataConversionWarning, then 1-D
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"X and y must have the same number of rows: X has {n_samples}, y has shape {y.shape}")
    if y.dtype.kind == "c":
        raise ValueError("Complex data not supported: y holds complex numbers")
    check_classification_targets(y)  # refuses continuous targets, NaN and unknown label types
    encoder = LabelEncoder().fit(y)
    return encoder.classes_, encoder.transform(y).astype(np.int64)


def labels_of(classes: np.ndarray, index):
    """``classes[index]``, in the input's array type where that type can hold the labels.

    CuPy holds numbers and booleans only: string labels come back as a NumPy array.
    """
    if is_device_array(index) and classes.dtype.kind in "biuf":
        return device_of(index).asarray(classes)[index]
    return classes[to_numpy(index)]


class DeviceClassifier(ClassifierMixin, BaseEstimator):
    """Base of gpunn's classifiers: scikit-learn's classifier, with a score that also takes CuPy arrays."""

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (weighted by ``sample_weight``).

        Parameters
        ----------
        X : array of shape (N, D) (NumPy or CuPy)
            The rows to classify, as :meth:`predict` takes them.
        y : array of shape (N,) (NumPy or CuPy)
            Their true labels.
        sample_weight : array of shape (N,) or None, default=None
            Each row's weight in the mean; None weighs every row 1.

        Returns
        -------
        float
            The (weighted) fraction of rows whose predicted label equals ``y``, in [0, 1].

        Examples
        --------
        >>> X = np.array([[0.0], [1.0], [10.0], [11.0]], np.float32)
        >>> knn = gn.KNeighborsClassifier(k=1, device="cpu").fit(X, np.array([0, 0, 1, 1]))
        >>> knn.score(np.array([[0.5], [10.5]], np.float32), np.array([1, 1]))
        0.5
        >>> knn.score(np.array([[0.5], [10.5]], np.float32), np.array([1, 1]), sample_weight=np.array([1.0, 3.0]))
        0.75
        """
        predicted = to_numpy(self.predict(X))
        weights = None if sample_weight is None else to_numpy(sample_weight)
        return float(accuracy_score(to_numpy(y), predicted, sample_weight=weights))
