"""Fused Numba kernels, installed as ``gpunn.kernels``.

One file per family, CPU (``numba.njit(parallel=True)``) and CUDA (``numba.cuda.jit``)
versions side by side: ``activations.py`` (forward, backward, bias + activation),
``dropout.py``, ``optimizers.py``. ``bindings.py`` wraps them in the signatures of
:mod:`gpunn.ops`, and :func:`install` registers them there by device type. k-nearest
neighbours' kernels (``knn_l2.py``, ``knn_l1.py``, ``knn_ivf.py``, ``topk.py``) hold their own
reference, CPU and CUDA kernels and launch each, and :mod:`gpunn.knn` calls them directly.
"""

from __future__ import annotations

import os

# Below these sizes the plain NumPy/CuPy reference is faster than a kernel launch (bench/test_kernels.py).
CPU_MIN_SIZE = 16384
CUDA_MIN_SIZE = 0


def install() -> list[str]:
    """Register the CPU kernels, and the CUDA ones where a GPU is usable; returns the device types done.

    Set ``GPUNN_KERNELS=0`` to keep every op on its reference.
    """
    if os.environ.get("GPUNN_KERNELS", "1") == "0":
        return []
    from gpunn import ops
    from gpunn.devices import cuda_available

    from .bindings import Target, make_bindings

    references = {name: getattr(ops, name).reference for name in ops.KERNEL_OPS}
    done = []
    for device_type, min_size in (("cpu", CPU_MIN_SIZE), ("cuda", CUDA_MIN_SIZE)):
        if device_type == "cuda" and not cuda_available():
            continue
        for name, fn in make_bindings(Target(device_type), references, min_size).items():
            ops.register(name, device_type, fn)
        done.append(device_type)
    return done
