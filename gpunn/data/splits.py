"""Train/validation/test splits."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

from ..validation import check_array, check_number


class Split(NamedTuple):
    """A dataset cut into training, validation and test parts (a named tuple).

    Parameters
    ----------
    X_train : numpy.ndarray
        Training rows, (N, D).
    y_train : numpy.ndarray
        Their labels, (N,).
    X_val : numpy.ndarray or None
        Validation rows; None where a loader has no validation part.
    y_val : numpy.ndarray or None
        Their labels; None with ``X_val``.
    X_test : numpy.ndarray
        Test rows.
    y_test : numpy.ndarray
        Their labels.

    Examples
    --------
    >>> split = gn.data.load_digits()
    >>> X_train, y_train, X_val, y_val, X_test, y_test = split    # a tuple, in this order
    >>> split._replace(X_val=None).X_val is None
    True
    """

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
    """Hold a random ``val_fraction`` of the rows out (scikit-learn's ``train_test_split``).

    Parameters
    ----------
    X : array_like
        (N, ...) rows of numbers.
    y : array_like
        (N,) labels.
    val_fraction : float, default=0.1
        The share of rows held out, in (0, 1); rounded to a whole number of rows, which must leave
        both parts non-empty.
    seed : int, default=0
        The shuffle's ``random_state``.

    Returns
    -------
    X_train, X_val, y_train, y_val : numpy.ndarray
        The kept rows and the held-out rows, with their labels (scikit-learn's order).

    Raises
    ------
    ValueError
        If ``val_fraction`` is outside (0, 1) or leaves a part empty, or ``X`` and ``y`` differ in
        rows (the message names the argument).
    TypeError
        If ``X`` does not hold numbers.

    Examples
    --------
    >>> X, y = gn.data.make_spiral(10, classes=2)
    >>> X_train, X_val, y_train, y_val = gn.data.train_val_split(X, y, 0.25, seed=1)
    >>> X_train.shape, X_val.shape
    ((15, 2), (5, 2))
    >>> gn.data.train_val_split(X, y, 1.5)
    Traceback (most recent call last):
        ...
    ValueError: val_fraction must be in (0, 1), got 1.5
    """
    X, y = check_xy(X, y, matrix=False)
    val_fraction = check_number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    n = X.shape[0]
    n_val = int(round(n * val_fraction))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} of {n} rows leaves an empty part")
    return train_test_split(X, y, test_size=n_val, random_state=seed)
