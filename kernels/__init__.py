"""Fused Numba kernels, installed as ``gpunn.kernels``.

Each file holds one family of operations, with its CPU (``numba.njit``) and CUDA
(numba-cuda) versions side by side; they plug into :mod:`gpunn.ops` through
``gpunn.ops.register``. Until a kernel is registered, ops run their plain ``xp`` reference.
"""
