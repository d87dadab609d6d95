"""Train/validation/test splits."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

from ..validation import check_array, check_number


class Split(NamedTuple):
    """A dataset cut into parts; ``X_val``/``y_val`` are ``None`` where a loader has no validation part."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray


def check_xy(X, y, *, matrix: bool = True, names=("X", "y")):
    """``X`` (N, D) numbers (N, ... when not ``matrix``) and ``y`` (N,) labels; arrays stay on their device.

    ``names``: what the messages call them (the validation pair is ("X_val", "y_val")).
    """
    xn, yn = names
    X = check_array(xn, X, matrix)
    y = np.asarray(y) if not hasattr(y, "shape") else y
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(f"{yn} must be 1-D class labels, got shape {tuple(y.shape)}; for one-hot rows use "
                         f"{yn}.argmax(1)")
    if y.ndim != 1:
        raise ValueError(f"{yn} must be 1-D class labels, got shape {tuple(y.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{xn} and {yn} must have the same number of rows: {xn} has {X.shape[0]}, {yn} has shape "
                         f"{tuple(y.shape)}")
    return X, y


def train_val_split(X, y, val_fraction: float = 0.1, seed=0):
    """(X_train, X_val, y_train, y_val): a random ``val_fraction`` of the rows held out (scikit-learn's
    ``train_test_split``, shuffled by ``seed``)."""
    X, y = check_xy(X, y, matrix=False)
    val_fraction = check_number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    n = X.shape[0]
    n_val = int(round(n * val_fraction))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} of {n} rows leaves an empty part")
    return train_test_split(X, y, test_size=n_val, random_state=seed)
