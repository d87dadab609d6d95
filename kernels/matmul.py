"""Matrix products: ``a @ b`` for every layer, and on the CPU, NumPy's BLAS run on Numba's threads.

Every matrix product in the layers goes through :func:`matmul`, so one place decides how. On the CPU,
while a parallel Numba kernel ran recently (:func:`gpunn.kernels.blas_pool.numba_busy`), OpenBLAS's
threaded work runs on Numba's threads (``kernels/blas_pool.py``): a training step that alternates GEMMs
with such kernels then keeps one thread pool busy, not two. OpenBLAS keeps its own jobs and their
partition, so the result is NumPy's bit for bit. Where the optional ``mkl`` package is installed, 2-D float
products run on MKL instead (``kernels/mkl_gemm.py``; ``GPUNN_MKL=0`` switches it off).
"""

from __future__ import annotations

import time

import numpy as np

from . import blas_pool, mkl_gemm
from .arrays import array_module
from .op import op


@op(min_size={"cpu": 0})
def matmul(a, b, out=None):
    """``a @ b`` (NumPy's matmul rules), into ``out`` where given."""
    return array_module(a).matmul(a, b, out=out)


@matmul.kernel("cpu")
def _shared_pool_matmul(a, b, out=None):
    if mkl_gemm.TRY[0]:  # Intel MKL where the optional mkl package is installed (no call per GEMM where it is not)
        result = mkl_gemm.matmul(a, b, out)
        if result is not NotImplemented:
            return result
    if time.monotonic() - blas_pool.LAST_PARALLEL[0] >= blas_pool.BUSY_S:  # blas_pool.numba_busy(), inline: per GEMM
        return np.matmul(a, b, out=out)
    with blas_pool.shared_threads():
        return np.matmul(a, b, out=out)
