"""What each peer of a benchmark runs on: its thread count and its BLAS kernel, as the tables print them.

A benchmark records ``benchmark.extra_info["peers"] = {peer: {"threads": int, "blas": str}}`` and
``benchmark.extra_info["data"] = "<one line naming the data>"`` (:func:`record`); ``bench/tables.py``
prints both. The BLAS is read from the library itself where it can be (threadpoolctl: the OpenBLAS
build, its version and the kernel it picked for this CPU, e.g. ``SkylakeX``; a generic kernel such as
``Prescott`` means it does not know the CPU), so the table says what ran, not what was meant to.
"""

from __future__ import annotations

import os


def _blas(path_part: str) -> dict | None:
    """threadpoolctl's record of the loaded BLAS whose file path contains ``path_part``, or None."""
    from threadpoolctl import threadpool_info

    return next((p for p in threadpool_info() if p["user_api"] == "blas" and path_part in p["filepath"]), None)


def blas_text(info: dict | None) -> str:
    """``openblas 0.3.31 SkylakeX (pthreads)`` from a threadpoolctl record."""
    if info is None:
        return "not loaded"
    arch = info.get("architecture") or "?"
    layer = info.get("threading_layer")
    return f"{info['internal_api']} {info['version']} {arch}" + (f" ({layer})" if layer else "")


def numpy_peer() -> dict:
    """NumPy's own BLAS (what NumPy code, and every GEMM gpunn's CPU path makes, runs on)."""
    import numpy  # noqa: F401 (loads the BLAS)

    info = _blas("numpy")
    return {"threads": info["num_threads"] if info else 1, "blas": "NumPy's " + blas_text(info)}


def gpunn_peer() -> dict:
    """gpunn on the CPU: NumPy's BLAS for the products, Numba's threads for the fused kernels."""
    import numba

    peer = numpy_peer()
    return {"threads": int(numba.get_num_threads()), "blas": f"{peer['blas']}; kernels: Numba, "
            f"{numba.get_num_threads()} threads"}


def scipy_peer() -> dict:
    """SciPy's own BLAS (scipy-openblas), which scikit-learn's solvers call through SciPy."""
    import scipy.linalg  # noqa: F401 (loads the BLAS)

    info = _blas("scipy")
    return {"threads": info["num_threads"] if info else 1, "blas": "SciPy's " + blas_text(info)}


def torch_peer() -> dict:
    """PyTorch on the CPU: its intra-op threads and the BLAS it was built with (MKL), on this CPU's vector ISA."""
    import torch

    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")),
                "?")
    return {"threads": torch.get_num_threads(),
            "blas": f"{blas} (PyTorch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()})"}


def faiss_peer() -> dict:
    """FAISS: its OpenMP threads and the OpenBLAS bundled in faiss-cpu's wheel."""
    import faiss

    info = _blas("faiss")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return {"threads": faiss.omp_get_max_threads(),
            "blas": "faiss-cpu's " + blas_text(info) + (f", OPENBLAS_CORETYPE={coretype}" if coretype else "")}


def record(benchmark, peers: dict, data: str) -> None:
    """Record each peer's threads and BLAS, and the data, in the benchmark's JSON for the tables.

    ``peers`` maps each implementation's name to one of the functions above, or to a ready
    ``{"threads": ..., "blas": ...}`` (a peer with no BLAS of its own, e.g. liblinear).
    """
    benchmark.extra_info["peers"] = {name: (how() if callable(how) else dict(how)) for name, how in peers.items()}
    benchmark.extra_info["data"] = data
