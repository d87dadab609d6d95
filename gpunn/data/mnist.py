"""MNIST from its IDX files (gzip-compressed or not)."""

from __future__ import annotations

import numpy as np

from .files import data_dir, find, read_bytes
from .splits import Split

FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
UBYTE = 0x08


def read_idx(path, ndim: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``ndim`` dimensions; errors name the file and the fault."""
    raw = read_bytes(path)
    where = repr(str(path))
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{where} is not an IDX file: only {len(raw)} bytes")
    zero, dtype_code, dims = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype_code != UBYTE or dims != ndim:
        raise ValueError(f"{where} is not a {ndim}-D unsigned-byte IDX file (header {raw[:4].hex()})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{where}: header says shape {shape} ({int(np.prod(shape))} bytes), file holds {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist(root) -> Split:
    """MNIST from its four IDX files in ``root`` (each may be gzip-compressed). Nothing is downloaded.

    Parameters
    ----------
    root : str or pathlib.Path
        The directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (or the same names with ``.gz``).

    Returns
    -------
    Split
        X float32 (N, 784), pixel values 0..255, y int64; 60,000 training rows and 10,000 test rows.
        ``X_val`` and ``y_val`` are None (:func:`load_dataset` holds 5,000 training rows out).

    Raises
    ------
    TypeError
        If ``root`` is not a path.
    ValueError
        If ``root`` is not a directory, a file is missing or is not an unsigned-byte IDX file, or
        images and labels disagree (the message names the file or the part).
    """
    root = data_dir(root)
    arrays = {k: read_idx(find(root, stem, "MNIST"), 3 if k.endswith("images") else 1) for k, stem in FILES.items()}
    parts = []
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels):
            raise ValueError(f"MNIST {part}: {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"MNIST {part} labels must be 0..9, found {labels.max()}")
        parts.append((images.reshape(len(images), -1).astype(np.float32), labels.astype(np.int64)))
    (X_train, y_train), (X_test, y_test) = parts
    return Split(X_train, y_train, None, None, X_test, y_test)
