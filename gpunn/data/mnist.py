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
    """MNIST from ``root``: X float32 (N, 784) pixels 0..255, y int64; 60000 train, 10000 test, no val."""
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
