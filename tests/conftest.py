"""Shared fixtures: the devices to run on, and fresh random data with its seed on record."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gpunn as gn

cuda = pytest.mark.skipif(not gn.cuda_available(), reason="no usable CUDA GPU (CuPy missing or no device)")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, cuda])])
def device(request) -> gn.Device:
    """Each test that takes ``device`` runs on the CPU and, where a GPU is usable, on CUDA."""
    return gn.device(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fresh seed each run; the seed is printed so a failure can be replayed.

    Set GPUNN_TEST_SEED to replay one.
    """
    seed = int(os.environ.get("GPUNN_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"GPUNN_TEST_SEED={seed}")
    return np.random.default_rng(seed)


def away_from_zero(rng: np.random.Generator, shape, margin: float = 1e-2) -> np.ndarray:
    """Standard normal values with |x| >= margin, to keep finite differences off a kink at 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)
