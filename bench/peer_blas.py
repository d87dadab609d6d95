"""Peers at their best: each peer's BLAS runs the kernel meant for this CPU, and every peer runs as many threads.

A library that brings its own OpenBLAS (faiss-cpu bundles 0.3.15) may not know a newer CPU and fall back
to a generic kernel (``Prescott``): FAISS's flat L2 search at 500 x 5,000 x 3,072 took 290-520 ms so
and 87 ms on its ``SkylakeX`` kernel. NumPy's OpenBLAS is recent and picks the kernel for this CPU; that
kernel is the target. :func:`import_at_its_best` imports a peer so that its OpenBLAS runs the target:

1. a fresh interpreter imports the peer and reports, with threadpoolctl, the architecture its OpenBLAS
   picks by itself (a library reads ``OPENBLAS_CORETYPE`` once, when it loads, so this is the only way
   to know without committing this process);
2. where that is not the target, ``OPENBLAS_CORETYPE`` is set to the target in this process's environment
   before the peer loads (libraries loaded later read it; NumPy's, loaded already, is unaffected);
3. the peer is imported, and threadpoolctl must report the target for its OpenBLAS, else ``RuntimeError``.

A peer imported before (by another module of the same pytest session) cannot be fixed: if it reports a
generic kernel, :func:`import_at_its_best` raises and says to run the suite alone or to launch pytest
with ``OPENBLAS_CORETYPE`` set. ``bench/tables.py --suites knn`` runs each suite in a process of its own.
:func:`peer` describes a peer for ``benchmark.extra_info["peers"]``: ``{"threads": n, "blas": "openblas
SkylakeX"}``, with ``(OPENBLAS_CORETYPE=SkylakeX; it picked Prescott)`` added where the kernel was set.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

REPORT = ("import json, {module}; from threadpoolctl import threadpool_info; "
          "print(json.dumps([i for i in threadpool_info() if i['internal_api'] == 'openblas']))")
_SET: dict[str, str] = {}  # peer library -> the architecture it picked by itself, where OPENBLAS_CORETYPE was set


def openblas_of(libs: str) -> list[dict]:
    """threadpoolctl's entries for the OpenBLAS libraries loaded in this process whose path contains ``libs``."""
    from threadpoolctl import threadpool_info

    return [i for i in threadpool_info() if i["internal_api"] == "openblas" and libs in i["filepath"]]


def target() -> str:
    """The OpenBLAS kernel for this CPU: the one NumPy's OpenBLAS picks."""
    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy loads its BLAS lazily on some builds
    home = os.path.dirname(np.__file__)
    found = [i for i in openblas_of("") if i["filepath"].startswith((home + os.sep, home + ".libs" + os.sep))]
    if not found or not found[0].get("architecture"):
        raise RuntimeError("cannot tell which kernel NumPy's OpenBLAS runs (threadpoolctl found none)")
    return found[0]["architecture"]


def picked_by_itself(module: str, libs: str) -> list[str]:
    """The architectures the OpenBLAS libraries under ``libs`` pick when ``module`` is imported in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE" or _SET == {}}
    out = subprocess.run([sys.executable, "-c", REPORT.format(module=module)], capture_output=True, text=True,
                         env=env, check=True, timeout=300).stdout
    return [i.get("architecture") for i in json.loads(out.strip().splitlines()[-1]) if libs in i["filepath"]]


def import_at_its_best(module: str, libs: str):
    """Import ``module`` with its OpenBLAS (the libraries whose path contains ``libs``) on this CPU's kernel.

    Returns the module. Raises ``RuntimeError`` where its OpenBLAS runs another kernel and cannot be set.
    """
    wanted = target()
    if module not in sys.modules:
        picked = picked_by_itself(module, libs)
        if any(arch != wanted for arch in picked):
            os.environ["OPENBLAS_CORETYPE"] = wanted
            _SET[libs] = ", ".join(sorted(set(picked)))
    loaded = importlib.import_module(module)
    got = {i.get("architecture") for i in openblas_of(libs)}
    if got - {wanted}:
        raise RuntimeError(f"{module}'s OpenBLAS runs {', '.join(sorted(got))}, not this CPU's {wanted}: it was "
                           f"imported before OPENBLAS_CORETYPE could be set. Run this benchmark in a process of "
                           f"its own (bench/tables.py does), or launch it with OPENBLAS_CORETYPE={wanted}")
    return loaded


def peer(threads: int, libs: str | None) -> dict:
    """``{"threads": threads, "blas": ...}`` for a peer whose OpenBLAS lives under ``libs`` (None: no BLAS)."""
    if libs is None:
        return {"threads": threads, "blas": "none"}
    found = openblas_of(libs)
    if not found:
        return {"threads": threads, "blas": "none"}
    blas = f"{found[0]['internal_api']} {found[0].get('architecture')}"
    if libs in _SET:
        blas += f" (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; it picked {_SET[libs]})"
    return {"threads": threads, "blas": blas}
