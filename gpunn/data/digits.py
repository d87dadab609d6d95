"""The 8x8 handwritten digits, embedded in the package (no download, no scikit-learn needed).

1797 images of 64 pixels valued 0..16, labels 0..9: the UCI "Optical Recognition of
Handwritten Digits" test set, as bundled with scikit-learn (``digits.csv.gz``).
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from .splits import Split

SPLIT_SEED = 0
N_TEST, N_VAL = 360, 180


def load_digits(split: bool = True):
    """The embedded 8x8 digits: 1,797 images of 64 pixels valued 0..16, labels 0..9.

    The split is fixed: rows are permuted with ``numpy.random.default_rng(0)``; the first 360
    are the test set, the next 180 validation, the rest (1,257) training.

    Parameters
    ----------
    split : bool, default=True
        Return the three parts; False returns all rows as ``(X, y)``.

    Returns
    -------
    Split or tuple of numpy.ndarray
        X float32 (N, 64), y int64 (N,): a :class:`Split`, or ``(X, y)`` with ``split=False``.

    Examples
    --------
    >>> split = gn.data.load_digits()
    >>> split.X_train.shape, split.X_val.shape, split.X_test.shape
    ((1257, 64), (180, 64), (360, 64))
    >>> X, y = gn.data.load_digits(split=False)
    >>> X.dtype, X.max(), sorted(set(y.tolist())) == list(range(10))
    (dtype('float32'), np.float32(16.0), True)
    """
    with resources.files(__package__).joinpath("digits.csv.gz").open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    X, y = table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    if not split:
        return X, y
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    test, val, train = order[:N_TEST], order[N_TEST:N_TEST + N_VAL], order[N_TEST + N_VAL:]
    return Split(X[train], y[train], X[val], y[val], X[test], y[test])
