"""Datasets by name, each with train, validation and test parts (for the command line)."""

from __future__ import annotations

from .cifar10 import load_cifar10
from .digits import load_digits
from .mnist import load_mnist
from .spiral import make_spiral
from .splits import Split, train_val_split

DATASETS = ("digits", "spiral", "cifar10", "mnist")
FILE_DATASETS = ("cifar10", "mnist")  # read from files in a data directory; the others are embedded or generated
VAL_ROWS = {"cifar10": 1000, "mnist": 5000}  # held out of the training files, as cs231n does
# one image's (C, H, W), for convolutional nets: the loaders' rows are these images flattened in C, H, W order
IMAGE_SHAPES = {"digits": (1, 8, 8), "cifar10": (3, 32, 32), "mnist": (1, 28, 28)}


def load_dataset(name: str, data_dir=None, seed: int = 0) -> Split:
    """One of :data:`DATASETS` with train, validation and test parts, as ``gpunn train`` uses it.

    digits is embedded and spiral generated (300 points of 3 classes); cifar10 and mnist are read
    from ``data_dir``. Where the files have no validation part, one is held out of the training
    rows (1,000 for CIFAR-10, 5,000 for MNIST, as cs231n does) with ``seed``.

    Parameters
    ----------
    name : {"digits", "spiral", "cifar10", "mnist"}
        Which dataset.
    data_dir : str or pathlib.Path, default=None
        The directory of the CIFAR-10 batches or the MNIST IDX files; only cifar10 and mnist read it.
    seed : int, default=0
        Shuffles the rows held out for validation (and generates the spiral).

    Returns
    -------
    Split
        X float32 (N, D), y int64 (N,) for each of the three parts.

    Raises
    ------
    ValueError
        For an unknown ``name``, or cifar10 / mnist without ``data_dir``.

    Examples
    --------
    >>> split = gn.data.load_dataset("spiral", seed=0)
    >>> len(split.y_train), len(split.y_val), len(split.y_test)
    (630, 90, 180)
    >>> gn.data.load_dataset("cifar10")
    Traceback (most recent call last):
        ...
    ValueError: dataset 'cifar10' is read from files: give their directory (--data-dir)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(map(repr, DATASETS))}")
    if name == "digits":
        return load_digits()
    if name == "spiral":
        X, y = make_spiral(300, 3, seed=seed)
        X_rest, X_test, y_rest, y_test = train_val_split(X, y, 0.2, seed=seed)
        X_train, X_val, y_train, y_val = train_val_split(X_rest, y_rest, 0.125, seed=seed + 1)
        return Split(X_train, y_train, X_val, y_val, X_test, y_test)
    if data_dir is None:
        raise ValueError(f"dataset {name!r} is read from files: give their directory (--data-dir)")
    split = load_cifar10(data_dir) if name == "cifar10" else load_mnist(data_dir)
    n = len(split.y_train)
    X_train, X_val, y_train, y_val = train_val_split(split.X_train, split.y_train, VAL_ROWS[name] / n, seed=seed)
    return Split(X_train, y_train, X_val, y_val, split.X_test, split.y_test)
