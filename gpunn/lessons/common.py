"""What several lessons share: the image data they learn from, and its preprocessing."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..data.by_name import load_dataset

CIFAR_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_ROWS = {"train": 5000, "val": 1000, "test": 1000}  # a subsample keeps every lesson under a minute on 2 cores


class Images(NamedTuple):
    """Mean-subtracted, scaled images as rows; ``mean`` and ``scale`` undo it; ``image_shape`` draws a row."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    scale: float
    image_shape: tuple
    class_names: tuple


def image_data(data_dir=None, seed: int = 0) -> Images:
    """The embedded 8x8 digits, or CIFAR-10 (a 5000/1000/1000 subsample) from ``data_dir``.

    Pixels are centred on the training mean image and divided by the pixel range, as in cs231n.
    """
    if data_dir is None:
        split, shape, names, top = load_dataset("digits"), (8, 8), tuple(str(i) for i in range(10)), 16.0
        parts = [(split.X_train, split.y_train), (split.X_val, split.y_val), (split.X_test, split.y_test)]
        name = "digits"
    else:
        split, shape, names, top = load_dataset("cifar10", data_dir, seed=seed), (3, 32, 32), CIFAR_CLASSES, 255.0
        parts = [(split.X_train[:CIFAR_ROWS["train"]], split.y_train[:CIFAR_ROWS["train"]]),
                 (split.X_val[:CIFAR_ROWS["val"]], split.y_val[:CIFAR_ROWS["val"]]),
                 (split.X_test[:CIFAR_ROWS["test"]], split.y_test[:CIFAR_ROWS["test"]])]
        name = "CIFAR-10"
    mean = parts[0][0].mean(axis=0)
    scaled = [((X - mean) / top).astype(np.float32) for X, _ in parts]
    return Images(name, scaled[0], parts[0][1], scaled[1], parts[1][1], scaled[2], parts[2][1], mean, top, shape, names)


def as_picture(row: np.ndarray, shape: tuple) -> np.ndarray:
    """One image row as an array imshow can draw: (H, W) grey or (H, W, 3) colour."""
    img = row.reshape(shape)
    return img.transpose(1, 2, 0) if len(shape) == 3 else img
