"""``gpunn info``: versions, the devices found (or why none), the GPU's matrix-product precision, and which ops run
fused kernels."""

from __future__ import annotations

import platform
from importlib import metadata

from .. import ops
from ..devices import _cuda_device_count, cuda_unavailable_reason
from ..kernels.matmul import get_matmul_precision


MATMUL_WORDS = {"highest": "highest (float32 products on a GPU in float32; gn.set_matmul_precision('high') for TF32)",
                "high": "high (float32 products on a GPU in TF32 where its compute capability is 8.0 or above)"}


def info(_args) -> int:
    """``gpunn info``: versions, the CUDA devices found (or why none), and which ops run fused kernels.

    Parameters
    ----------
    _args : argparse.Namespace
        Not read: the command has no options.

    Returns
    -------
    int
        The exit status, 0.
    """
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    print(f"gpunn {version('gpunn')} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("numpy", "numba", "tqdm", "scikit-learn", "scipy", "cupy-cuda12x", "cupy-cuda13x", "numba-cuda",
                 "matplotlib", "dask", "mpi4py"):
        print(f"  {dist:14s} {version(dist)}")
    count = _cuda_device_count()
    print(f"CUDA devices: {count}" + ("" if count else f" (device='auto' uses the CPU): {cuda_unavailable_reason()}"))
    for i in range(count):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(i)
        print(f"  cuda:{i}  {props['name'].decode()}  {props['totalGlobalMem'] / 2**30:.1f} GiB"
              f"  compute capability {props['major']}.{props['minor']}")
    print(f"matmul precision: {MATMUL_WORDS[get_matmul_precision()]}; float16 products (precision='mixed') "
          "accumulate in float32; the CPU computes in the arrays' dtype")
    kernels = ops.active_kernels()
    fused = {k: v for k, v in kernels.items() if v != "reference"}
    print(f"kernels: {len(fused)} of {len(kernels)} op/device pairs use fused kernels; the rest run the xp reference")
    for k, v in fused.items():
        print(f"  {k}: {v}")
    if "matmul[cpu]" in fused:
        from ..kernels import blas_pool, mkl_gemm

        status = blas_pool.status()
        print("CPU threads: " + ("NumPy's BLAS runs on Numba's threads, one pool" if status == "shared"
                                 else f"NumPy's BLAS keeps its own threads ({status})"))
        gemm = f"MKL ({mkl_gemm.status()})" if mkl_gemm.available() else f"NumPy's BLAS ({mkl_gemm.status()})"
        print(f"CPU GEMM: {gemm}")
    return 0
