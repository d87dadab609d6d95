"""Intel MKL's GEMM for the CPU's matrix products, where the optional ``mkl`` package is installed.

NumPy's wheels bundle OpenBLAS. On an AVX-512 Xeon MKL's sgemm is faster at the large products of a training
step (bench/blas_gemm.py), so where the ``mkl`` wheel is installed (``pip install gpunn[mkl]``) :func:`matmul`
sends 2-D float32/float64 products to MKL's ``cblas_?gemm``; anything else returns ``NotImplemented`` and stays
with NumPy. ``GPUNN_MKL=0`` (or :func:`use_mkl` ``(False)`` for a block) keeps NumPy's BLAS for every product.

MKL is asked for its GNU OpenMP threading layer: its threads are then libgomp's, the pool Numba's OpenMP
layer runs its parallel kernels on, so a step that alternates GEMMs with parallel kernels keeps one pool busy,
not two (what ``blas_pool.py`` arranges for OpenBLAS). The call goes through a Numba kernel that reads the
layouts and calls ``cblas_?gemm`` at its address: a few microseconds less per product than checks in Python
and a ctypes call, which matters for a step's small products (200x100x10 takes about 5 us).

The library is found once, at first use; :func:`status` says which MKL runs, or why none does.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_GNU_THREADING = 3  # MKL_THREADING_GNU in mkl_service.h
_INT_MAX = 2**31 - 1  # MKL's LP64 interface takes 32-bit integers


@intrinsic
def _call_gemm(typingctx, address, ints, like, a, lda, b, ldb, c, ldc):
    """``cblas_?gemm(order, trans_a, trans_b, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)`` at ``address``, ``?`` for
    the dtype of the array ``like``; ``ints`` is (order, trans_a, trans_b, m, n, k), the pointers integers."""
    i32, pointer = ir.IntType(32), ir.IntType(8).as_pointer()
    scalar = ir.FloatType() if like.dtype == types.float32 else ir.DoubleType()
    fn_type = ir.FunctionType(ir.VoidType(), [i32] * 6 + [scalar, pointer, i32, pointer, i32, scalar, pointer, i32])

    def codegen(context, builder, sig, args):
        address, ints, _, a, lda, b, ldb, c, ldc = args
        fn = builder.inttoptr(address, fn_type.as_pointer())
        head = [builder.trunc(builder.extract_value(ints, i), i32) for i in range(6)]
        one, zero = ir.Constant(scalar, 1.0), ir.Constant(scalar, 0.0)
        builder.call(fn, head + [one, builder.inttoptr(a, pointer), builder.trunc(lda, i32),
                                 builder.inttoptr(b, pointer), builder.trunc(ldb, i32),
                                 zero, builder.inttoptr(c, pointer), builder.trunc(ldc, i32)])
        return context.get_dummy_value()

    return types.void(address, ints, like, a, lda, b, ldb, c, ldc), codegen


@numba.njit(inline="always")
def _layout(rows, cols, s0, s1, item):
    """(transpose flag, leading dimension) of a 2-D array as row-major BLAS reads it; flag 0 where it cannot."""
    if s1 == item and s0 % item == 0 and s0 >= max(cols, 1) * item and s0 // item <= _INT_MAX:
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 >= max(rows, 1) * item and s1 // item <= _INT_MAX:
        return _TRANS, s1 // item
    return 0, 0


@numba.njit(nogil=True, cache=True)
def _gemm(address, a, b, out):
    """``out = a @ b`` through ``cblas_?gemm`` at ``address``; False (nothing written) where BLAS cannot take
    them in place: shapes that differ, empty or over 2^31 - 1, operands strided in both axes or misaligned,
    an ``out`` that is not row-major or may overlap them."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n or min(m, k, n) == 0 or max(m, k, n) > _INT_MAX:
        return False
    item = a.itemsize
    trans_a, lda = _layout(m, k, a.strides[0], a.strides[1], item)
    trans_b, ldb = _layout(k, n, b.strides[0], b.strides[1], item)
    trans_c, ldc = _layout(m, n, out.strides[0], out.strides[1], item)
    if trans_a == 0 or trans_b == 0 or trans_c != _NO_TRANS:
        return False
    pa, pb, pc = a.ctypes.data, b.ctypes.data, out.ctypes.data
    if pa % item or pb % item or pc % item:  # misaligned (a view of bytes)
        return False
    if _overlap(out, pc, a, pa) or _overlap(out, pc, b, pb):
        return False
    _call_gemm(address, (_ROW_MAJOR, trans_a, trans_b, m, n, k), out, pa, lda, pb, ldb, pc, ldc)
    return True


@numba.njit(inline="always")
def _overlap(x, px, y, py):
    """True when the memory spans of 2-D arrays x and y (at addresses px, py; strides >= 0) meet."""
    end_x = px + (x.shape[0] - 1) * x.strides[0] + (x.shape[1] - 1) * x.strides[1] + x.itemsize
    end_y = py + (y.shape[0] - 1) * y.strides[0] + (y.shape[1] - 1) * y.strides[1] + y.itemsize
    return px < end_y and py < end_x


class _MKL:
    """libmkl_rt from the ``mkl`` wheel and its ``cblas_?gemm`` addresses by dtype (empty where not usable)."""

    def __init__(self):
        self.reason, self.version, self.address = None, None, {}
        lib = _load()
        if lib is None:
            self.reason = "the mkl package is not installed (pip install gpunn[mkl])"
            return
        lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Threading_Layer(_GNU_THREADING)  # before any MKL call, as MKL requires
        buffer = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buffer, len(buffer))
        self.version, self.lib = buffer.value.decode().strip(), lib
        self.address = {np.dtype(np.float32): ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p).value,
                        np.dtype(np.float64): ctypes.cast(lib.cblas_dgemm, ctypes.c_void_p).value}


def _load():
    """libmkl_rt as the mkl wheel installs it (into the environment's lib/), or None."""
    if not sys.platform.startswith("linux"):
        return None
    names = ("libmkl_rt.so.3", "libmkl_rt.so.2")  # oneMKL 2025 and later; 2021-2024
    for path in [os.path.join(sys.prefix, "lib", name) for name in names] + list(names):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


_ENABLED = [os.environ.get("GPUNN_MKL", "1") != "0"]  # GPUNN_MKL=0: NumPy's BLAS runs every product
# Whether matmul's caller should ask this module at all: False once MKL is found missing (or switched off), so
# a machine without it pays no call per product.
TRY = [_ENABLED[0]]


@contextlib.contextmanager
def use_mkl(enabled: bool):
    """Within the block, the CPU's products run on MKL where it is installed (True) or on NumPy's BLAS (False)."""
    previous, _ENABLED[0] = _ENABLED[0], bool(enabled)
    TRY[0] = _ENABLED[0]
    try:
        yield
    finally:
        _ENABLED[0] = TRY[0] = previous


@functools.cache
def _mkl() -> _MKL:
    """The one :class:`_MKL` of this process, found at first use."""
    return _MKL()


def available() -> bool:
    """True when :func:`matmul` runs MKL (installed, and not switched off by ``GPUNN_MKL=0``)."""
    return _ENABLED[0] and bool(_mkl().address)


def status() -> str:
    """Which MKL runs the CPU's GEMMs, or why none does (for ``gpunn info`` and the tests)."""
    if not _ENABLED[0]:
        return "GPUNN_MKL=0" if os.environ.get("GPUNN_MKL") == "0" else "switched off (use_mkl(False))"
    mkl = _mkl()
    return mkl.version if mkl.address else mkl.reason


_ARRAYS = (np.ndarray, np.memmap)  # other subclasses (np.matrix, ...) keep NumPy's matmul and its result type


def matmul(a, b, out=None):
    """``a @ b`` on MKL for 2-D NumPy arrays of one float dtype (float32, float64), into ``out`` where given.

    Every such product runs on MKL, so that a result does not depend on how its operands are stored (a
    memory-mapped or strided input, an ``out`` that overlaps them): operands BLAS cannot read in place are
    copied first and an ``out`` it cannot write is filled from a new array, as NumPy does for its BLAS.
    Returns ``NotImplemented`` for the rest (MKL not available, other dtypes or dimensions, empty products,
    shapes that do not match): the caller runs NumPy, which also raises NumPy's errors.
    """
    if not _ENABLED[0] or type(a) not in _ARRAYS or type(b) not in _ARRAYS:
        return NotImplemented
    found = _mkl().address
    if not found:
        TRY[0] = False  # not installed here: never asked again in this process
        return NotImplemented
    address = found.get(a.dtype)
    if address is None or b.dtype != a.dtype or a.ndim != 2 or b.ndim != 2:
        return NotImplemented
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    if b.shape[0] != k or 0 in (m, k, n):
        return NotImplemented
    if out is not None and (type(out) not in _ARRAYS or out.dtype != a.dtype or out.shape != (m, n)
                            or not out.flags.writeable):
        return NotImplemented
    result = np.empty((m, n), a.dtype) if out is None else out
    if _gemm(address, a, b, result):
        return result
    full = np.empty((m, n), a.dtype)  # a, b or out that BLAS cannot take in place
    if not _gemm(address, np.require(a, requirements="CA"), np.require(b, requirements="CA"), full):  # C, aligned
        return NotImplemented  # sizes over MKL's 32-bit integers
    if out is None:
        return full
    out[...] = full
    return out
