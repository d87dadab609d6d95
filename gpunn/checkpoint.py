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
from pathlib import Path

import numpy as np

FORMAT = "gpunn-checkpoint-1"


def atomic_write(path, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
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
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    payload = {"__meta__": np.array(json.dumps({"format": FORMAT, **meta}))}
    for name, a in arrays.items():
        payload[name] = np.asarray(a)
    return atomic_write(path, lambda f: np.savez(f, **payload))


def load(path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a checkpoint written by :func:`save`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # truncated zip, bad header, pickled content...
        raise ValueError(f"{str(path)!r} is not a readable gpunn checkpoint ({type(e).__name__}: {e})") from None
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except (KeyError, ValueError):
        raise ValueError(f"{str(path)!r} is not a gpunn checkpoint (no metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    return arrays, meta


def with_prefix(arrays: dict, prefix: str) -> dict:
    """The entries of ``arrays`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


WEIGHTS = ("last", "best")


def load_weights(path, weights: str = "last") -> dict:
    """The model weights saved in a trainer checkpoint, as a state dict for ``model.load_state_dict``.

    ``weights="last"``: those of the last epoch trained; ``"best"``: those of the epoch with the
    best validation accuracy (saved only when the run had validation data).
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be 'last' or 'best', got {weights!r}")
    arrays, _ = load(path)
    state = with_prefix(arrays, "model." if weights == "last" else "best.")
    if not state:
        why = "it was trained without validation data" if weights == "best" else "it holds no model weights"
        raise ValueError(f"checkpoint {str(path)!r} has no {weights} weights: {why}")
    return state
