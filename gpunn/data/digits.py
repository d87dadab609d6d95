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
    """The digits as a :class:`Split` (train 1257 / val 180 / test 360), or ``(X, y)`` with ``split=False``.

    The split is fixed: rows are permuted with ``numpy.random.default_rng(0)``; the first 360
    are the test set, the next 180 validation, the rest training. X is float32 (N, 64), y int64.
    """
    with resources.files(__package__).joinpath("digits.csv.gz").open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    X, y = table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    if not split:
        return X, y
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    test, val, train = order[:N_TEST], order[N_TEST:N_TEST + N_VAL], order[N_TEST + N_VAL:]
    return Split(X[train], y[train], X[val], y[val], X[test], y[test])
