"""Kernel tests: every op's kernels (CPU, and CUDA on the real or simulated GPU) against its xp reference.

Each test runs through ``op.with_kernel``, which runs the kernel whatever the input's size. Every array a
binding allocates starts poisoned (NaN, or -7 for indices), so an element a kernel never writes shows up.
"""

import numpy as np
import pytest

from gpunn.kernels import (activations, checks, conv_direct, conv_epilogue, distances, dropout, im2col, optimizers,
                           padding, pooling)
from gpunn.kernels.arrays import array_module

FAMILIES = (checks, activations, conv_direct, conv_epilogue, distances, dropout, im2col, optimizers, padding, pooling)


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    def poisoned(like, shape, dtype):
        return array_module(like).full(shape, -7 if np.dtype(dtype).kind == "i" else np.nan, dtype)

    for module in FAMILIES:
        if hasattr(module, "empty"):
            monkeypatch.setattr(module, "empty", poisoned)
