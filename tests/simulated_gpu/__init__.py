"""The simulated GPU: a strict CuPy stand-in plus Numba's CUDA simulator, for machines without a GPU.

:func:`install` must run before gpunn (or Numba) is imported: it turns on Numba's CUDA simulator,
puts the stand-in in ``sys.modules`` as ``cupy`` and ``cupyx``, and teaches the simulator its arrays.
Devices stay invisible until :func:`visible` says otherwise, so code that asks for ``"auto"``
outside it still gets the CPU, as on CI's machines.
"""

from __future__ import annotations

import ctypes
import os
import sys


def real_gpu_present() -> bool:
    """True where NVIDIA's driver library loads: then tests run on the real GPU, not on this simulation."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def install() -> None:
    """Use the simulated GPU in this process. Raises if Numba or CuPy was imported first (too late to swap)."""
    if "numba" in sys.modules and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        raise RuntimeError("simulated_gpu.install() must run before numba is imported")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    for name in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
        del sys.modules[name]  # a real CuPy imported by a probe: the stand-in replaces it whole
    from . import kernel_launches, strict_cupy

    sys.modules.update(strict_cupy.modules())
    kernel_launches.install()


def visible(count: int = 2):
    """Context manager: within it the simulated CUDA runtime reports ``count`` devices."""
    from .strict_cupy import visible as _visible

    return _visible(count)
