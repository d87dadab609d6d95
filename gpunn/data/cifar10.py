"""CIFAR-10 from its python-pickle batches (``data_batch_1..5``, ``test_batch``)."""

from __future__ import annotations

import io
import pickle

import numpy as np

from .files import data_dir, find, read_bytes
from .splits import Split

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = "test_batch"


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays, and nothing that could run code."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_batch(path):
    """(X uint8 (N, 3072), y int64 (N,)) from one CIFAR-10 batch file; ValueError naming the file if it is not one."""
    where = repr(str(path))
    try:
        batch = _ArraysOnly(io.BytesIO(read_bytes(path)), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means the file is not a CIFAR batch
        raise ValueError(f"{where} is not a CIFAR-10 python batch: {e}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where} is not a CIFAR-10 python batch: expected a dict with b'data' and b'labels'")
    X, y = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if X.ndim != 2 or X.shape[1] != 3072 or X.dtype != np.uint8:
        raise ValueError(f"{where}: data must be uint8 of shape (N, 3072), got {X.dtype} {X.shape}")
    if y.shape != (X.shape[0],) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"{where}: labels must be {X.shape[0]} values in 0..9")
    return X, y.astype(np.int64)


def load_cifar10(root) -> Split:
    """CIFAR-10 from its python batches in ``root`` (or ``root/cifar-10-batches-py``).

    Reads ``data_batch_1`` to ``data_batch_5`` and ``test_batch`` (each may be gzip-compressed),
    unpickling arrays only (a batch cannot run code). Nothing is downloaded.

    Parameters
    ----------
    root : str or pathlib.Path
        The directory holding the batches, or the one holding ``cifar-10-batches-py``.

    Returns
    -------
    Split
        X float32 (N, 3072), pixel values 0..255 in the files' channel-major order (reshape to
        (N, 3, 32, 32)); y int64. 50,000 training rows and 10,000 test rows; ``X_val`` and
        ``y_val`` are None (:func:`load_dataset` holds 1,000 training rows out).

    Raises
    ------
    TypeError
        If ``root`` is not a path.
    ValueError
        If ``root`` is not a directory, a batch is missing, or a file is not a CIFAR-10 batch (the
        message names the file).

    See Also
    --------
    load_dataset : CIFAR-10 with a validation part, as ``gpunn train --dataset cifar10`` reads it.
    """
    root = data_dir(root)
    if not (root / TEST).exists() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    train = [read_batch(find(root, name, "CIFAR-10")) for name in TRAIN]
    X_test, y_test = read_batch(find(root, TEST, "CIFAR-10"))
    X_train = np.concatenate([X for X, _ in train]).astype(np.float32)
    y_train = np.concatenate([y for _, y in train])
    return Split(X_train, y_train, None, None, X_test.astype(np.float32), y_test)
