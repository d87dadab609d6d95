"""Finding dataset files, with errors that say which file and what was wrong."""

from __future__ import annotations

import gzip
from pathlib import Path


def data_dir(root, name: str = "data_dir") -> Path:
    """``root`` as an existing directory; TypeError or ValueError naming ``name`` otherwise."""
    if not isinstance(root, (str, Path)):
        raise TypeError(f"{name} must be a path, got {type(root).__name__}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} does not exist or is not a directory")
    return path


def find(root: Path, stem: str, what: str) -> Path:
    """``root/stem`` or ``root/stem.gz``, whichever exists; a ValueError naming ``what`` if neither does."""
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"{what}: no file {stem!r} (or {stem}.gz) in {str(root)!r}")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, unzipped if it is gzip-compressed (by name or by content)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{str(path)!r} is a damaged gzip file: {e}") from None
    return raw
