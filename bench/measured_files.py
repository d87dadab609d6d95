"""Which of the repository's files a benchmark measures: the Python files of gpunn that run during a call.

Recorded with each benchmark (``extra_info["measured_files"]``) so that a table can tell when the
code it measured has changed since: ``docs/_ext/benchmark_tables.py`` fails the docs build then. The
files are found by running the call once under a profiler hook (untimed), not listed by hand: a
fused kernel counts through the Python file that launches it, which is the file that defines it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED_DIRS = ("gpunn", "kernels")  # gpunn's code; a peer's code lives outside the repository


def repo_path(filename: str) -> str | None:
    """``gpunn/nn/linear.py`` for a file of gpunn's source tree; None for anything else."""
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts and rel.parts[0] in MEASURED_DIRS and rel.suffix == ".py" else None


def files_run_by(fn) -> list[str]:
    """Call ``fn()`` once; the repository's Python files whose code ran during the call, sorted."""
    seen = set()

    def hook(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_filename)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(previous)
    return sorted({p for f in seen if (p := repo_path(f))})
