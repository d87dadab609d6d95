"""Matrix products: ``a @ b`` for every layer, and on the CPU, NumPy's BLAS run on Numba's threads.

Every matrix product in the layers goes through :func:`matmul`, so one place decides how. On the CPU,
while a parallel Numba kernel ran recently (:func:`gpunn.kernels.blas_pool.numba_busy`), OpenBLAS's
threaded work runs on Numba's threads (``kernels/blas_pool.py``): a training step that alternates GEMMs
with such kernels then keeps one thread pool busy, not two. OpenBLAS keeps its own jobs and their
partition, so the result is NumPy's bit for bit. Where the optional ``mkl`` package is installed, 2-D float
products run on MKL instead (``kernels/mkl_gemm.py``; ``GPUNN_MKL=0`` switches it off).

On a GPU, :func:`~gpunn.set_matmul_precision` says how cuBLAS computes: "highest" (the default) computes float32
products in float32; "high" lets them use TF32 tensor cores (inputs rounded to a 10-bit mantissa, sums in
float32: several times the speed on GPUs of compute capability 8.0 and above, about 1e-3 relative error
per product). float16 products (mixed precision) always accumulate in float32. CuPy's own switch is a
process-wide compute type per dtype (``cupy._core.set_compute_type``): gpunn sets it before its first
CUDA product after a change, so the choice holds for every CuPy GEMM of the process (CuPy's ``CUPY_TF32``
environment variable is overridden). The CPU is unaffected.
"""

from __future__ import annotations

import time

import numpy as np

from . import blas_pool, mkl_gemm
from .arrays import array_module
from .op import op


@op(min_size={"cpu": 0})
def matmul(a, b, out=None):
    """``a @ b`` (NumPy's matmul rules), into ``out`` where given.

    On the CPU: MKL where installed, else NumPy's BLAS (on Numba's threads while its kernels are busy);
    on a GPU: cuBLAS at the precision :func:`~gpunn.set_matmul_precision` chose.

    Parameters
    ----------
    a : array (NumPy or CuPy)
        The left operand, (M, K) or a stack of such matrices.
    b : array
        The right operand, (K, N) or a stack, on ``a``'s device.
    out : array or None, default=None
        Where to write the product (as ``numpy.matmul``'s ``out``); None: a new array.

    Returns
    -------
    array
        ``a @ b`` (``out`` where given).

    Examples
    --------
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    >>> gn.ops.matmul(a, np.eye(2, dtype=np.float32))
    array([[1., 2.],
           [3., 4.]], dtype=float32)
    """
    return array_module(a).matmul(a, b, out=out)


MATMUL_PRECISIONS = ("highest", "high")
_PRECISION = ["highest"]  # asked for
_APPLIED = [None]  # set in CuPy's compute types (None: not yet in this process)


def set_matmul_precision(precision: str) -> None:
    """How float32 matrix products compute on a GPU: "highest" (float32, the default) or "high" (TF32 where the
    GPU has it: compute capability 8.0 and above; float32 on older GPUs). The CPU is unaffected.

    Parameters
    ----------
    precision : {"highest", "high"}
        PyTorch's names (``torch.set_float32_matmul_precision``) for the same two choices.

    Raises
    ------
    ValueError
        ``precision`` is not one of them (naming it).

    Examples
    --------
    >>> gn.set_matmul_precision("high")
    >>> gn.get_matmul_precision()
    'high'
    >>> gn.set_matmul_precision("highest")
    """
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(map(repr, MATMUL_PRECISIONS))}")
    _PRECISION[0] = precision


def get_matmul_precision() -> str:
    """The matrix-product precision on a GPU: "highest" (float32) or "high" (TF32); see :func:`~gpunn.set_matmul_precision`.

    Returns
    -------
    str
        "highest" (the default) or "high".

    Examples
    --------
    >>> gn.get_matmul_precision()
    'highest'
    """
    return _PRECISION[0]


def compute_types(precision: str, cupy_linalg) -> dict:
    """{dtype: CuPy compute type} for ``precision``: float32 in FP32 or TF32, float16 always accumulating in FP32."""
    fp32 = cupy_linalg.COMPUTE_TYPE_FP32
    return {np.dtype(np.float32): cupy_linalg.COMPUTE_TYPE_TF32 if precision == "high" else fp32,
            np.dtype(np.float16): fp32}


def _apply_precision() -> None:
    """Set CuPy's compute types to the precision asked for (process-wide; done once per change)."""
    from cupy import _core
    from cupy._core import _routines_linalg

    for dtype, compute_type in compute_types(_PRECISION[0], _routines_linalg).items():
        _core.set_compute_type(dtype, compute_type)
    _APPLIED[0] = _PRECISION[0]


@matmul.kernel("cuda")
def _cuda_matmul(a, b, out=None):
    if _APPLIED[0] != _PRECISION[0]:  # one comparison per product
        _apply_precision()
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
