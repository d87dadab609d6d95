"""Checkpoint files: named arrays plus JSON metadata in one ``.npz``, written atomically.

A write goes to a temporary file in the target's directory, is flushed to disk,
then renamed over the target: a crash or a failed write leaves the last good
checkpoint in place. Reading refuses files that are truncated, foreign, or of
another format, with a ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "load", "load_weights", "save"]

FORMAT = "gpunn-checkpoint-1"


def atomic_write(path, write) -> Path:
    """Write a file so that a failure never leaves it half-written: the old file stays until the new one is whole.

    ``write(file)`` writes into a temporary file beside ``path``, which is flushed to disk and then
    renamed over ``path`` (atomic on POSIX and Windows). If ``write`` raises, the temporary file
    is removed, ``path`` is untouched and the exception propagates.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write; its directory is created if needed.
    write : callable
        ``write(file)`` writes the content into the binary file object it is given.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = gn.checkpoint.atomic_write(target, lambda f: f.write(b"first"))
    >>> def fails(f):
    ...     f.write(b"half")
    ...     raise OSError("disk full")
    >>> gn.checkpoint.atomic_write(target, fails)
    Traceback (most recent call last):
        ...
    OSError: disk full
    >>> target.read_bytes()                           # the last good content is still there
    b'first'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write named arrays and JSON metadata to one ``.npz`` file, atomically (:func:`atomic_write`).

    Parameters
    ----------
    path : str or pathlib.Path
        The checkpoint file (NumPy appends nothing: give it the ``.npz`` suffix yourself).
    arrays : dict of str to array_like
        The arrays to store, by name; CuPy arrays are copied to the host.
    meta : dict
        JSON-serialisable metadata; ``"format"`` is added.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.npz"
    >>> _ = gn.checkpoint.save(path, {"W": np.eye(2)}, {"epoch": 3})
    >>> arrays, meta = gn.checkpoint.load(path)
    >>> arrays["W"], meta["epoch"]
    (array([[1., 0.],
           [0., 1.]]), 3)
    """
    payload = {"__meta__": np.array(json.dumps({"format": FORMAT, **meta}))}
    for name, a in arrays.items():
        payload[name] = np.asarray(a)
    return atomic_write(path, lambda f: np.savez(f, **payload))


def load(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by :func:`save`; nothing in it is unpickled.

    Parameters
    ----------
    path : str or pathlib.Path
        The checkpoint file.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        The stored arrays, by name.
    meta : dict
        The metadata, with its ``"format"``.

    Raises
    ------
    ValueError
        If the file does not exist, is not an ``.npz`` archive, is truncated or corrupt, holds
        pickled objects, or is not a gpunn checkpoint; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # not a zip, truncated zip, bad CRC, pickled content...
        raise ValueError(f"{str(path)!r} {_why_unreadable(path, e)}") from None
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except (KeyError, ValueError):
        raise ValueError(f"{str(path)!r} is not a gpunn checkpoint (no metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    return arrays, meta


def _why_unreadable(path: Path, error: Exception) -> str:
    """Why ``np.load`` failed on ``path``, in words for a checkpoint.

    NumPy's own message can advise loading with ``allow_pickle=True``: wrong for a checkpoint,
    which never holds Python objects, and unsafe for a file of unknown origin.
    """
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # every .npz starts with a zip entry
        return "is not a gpunn checkpoint: it is not an .npz archive"
    if _holds_objects(path):
        return "is not a gpunn checkpoint: it holds pickled Python objects, which gpunn checkpoints never do"
    detail = str(error) if "pickle" not in str(error) else ""
    return f"is not a readable gpunn checkpoint: the file is corrupt or truncated ({type(error).__name__}" + \
        (f": {detail})" if detail else ")")


def _holds_objects(path: Path) -> bool:
    """Whether an entry of the .npz at ``path`` is an object array (read from the headers only: nothing unpickled)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as entry:
                    version = np.lib.format.read_magic(entry)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    if read_header(entry)[2].hasobject:
                        return True
    except Exception:  # a damaged archive or header: not known to hold objects
        return False
    return False


def with_prefix(arrays: dict, prefix: str) -> dict:
    """The entries of ``arrays`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


WEIGHTS = ("last", "best")


def load_weights(path, weights: str = "last") -> dict:
    """The model weights saved in a Trainer's checkpoint, as a state dict for ``model.load_state_dict``.

    Parameters
    ----------
    path : str or pathlib.Path
        A checkpoint written by :class:`gpunn.Trainer` (``checkpoint_path``, or ``gpunn train``'s
        ``runs/train/checkpoint.npz``).
    weights : {"last", "best"}, default="last"
        "last": the weights of the last epoch trained; "best": those of the epoch with the best
        validation accuracy (saved only when the run had validation data).

    Returns
    -------
    dict of str to numpy.ndarray
        The parameters by dotted name ("0.W", "0.b", ...).

    Raises
    ------
    ValueError
        For another ``weights``, an unreadable file (see :func:`load`), or a checkpoint without
        those weights.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be 'last' or 'best', got {weights!r}")
    arrays, _ = load(path)
    state = with_prefix(arrays, "model." if weights == "last" else "best.")
    if not state:
        why = "it was trained without validation data" if weights == "best" else "it holds no model weights"
        raise ValueError(f"checkpoint {str(path)!r} has no {weights} weights: {why}")
    return state
