"""Shared fixtures: the devices to run on, and fresh random data with its seed on record.

Every test that takes ``device`` runs on the CPU and on CUDA devices 0 and 1. Where NVIDIA's driver
is present those are the real GPUs (cuda:1 skips on a one-GPU machine); elsewhere (CI) they are the
simulated GPU of ``tests/simulated_gpu`` (a strict CuPy stand-in and Numba's CUDA simulator), which is
installed here, before gpunn is imported. ``GPUNN_TEST_GPU=sim`` forces the simulation.
"""

from __future__ import annotations

import contextlib
import os

import pytest

import simulated_gpu

SIMULATED = os.environ.get("GPUNN_TEST_GPU") == "sim" or not simulated_gpu.real_gpu_present()
if SIMULATED:
    simulated_gpu.install()

import numpy as np  # noqa: E402

import gpunn as gn  # noqa: E402
from gpunn.kernels import launch  # noqa: E402

if SIMULATED:  # a few blocks at most: every grid-stride loop takes several steps, and simulation stays short
    launch.GRID_STRIDE_BLOCKS = 3

GPU_MARKS = [pytest.mark.cuda, pytest.mark.gpu_sim] if SIMULATED else [pytest.mark.cuda]
GPUS = [pytest.param(f"cuda:{i}", marks=GPU_MARKS, id=f"cuda:{i}") for i in range(2)]


@contextlib.contextmanager
def on(spec: str):
    """Run the block where ``spec`` ("cpu", "cuda:N") is usable: the simulated GPU made visible, or a real one."""
    if spec == "cpu":
        yield gn.device("cpu")
    elif SIMULATED:
        with simulated_gpu.visible():
            yield gn.device(spec)
    else:
        if not gn.cuda_available():
            pytest.skip(f"no usable CUDA GPU: {gn.cuda_unavailable_reason()}")
        count = gn.devices._cuda_device_count()
        if int(spec.split(":")[1]) >= count:
            pytest.skip(f"{spec} needs {int(spec.split(':')[1]) + 1} GPUs, this machine has {count}")
        yield gn.device(spec)


@pytest.fixture(params=["cpu", *GPUS])
def device(request) -> gn.Device:
    """Each test that takes ``device`` runs on the CPU and on two CUDA devices (real or simulated)."""
    with on(request.param) as dev:
        yield dev


@pytest.fixture(params=GPUS)
def gpu(request) -> gn.Device:
    """A CUDA device (real or simulated), for tests that compare it with the CPU."""
    with on(request.param) as dev:
        yield dev


@pytest.fixture(params=GPUS[:1])
def one_gpu(request) -> gn.Device:
    """cuda:0 (real or simulated), for kernel-level tests whose launches do not depend on which device runs them
    (the device context is tested where the library enters it): simulated barriers are slow."""
    with on(request.param) as dev:
        yield dev


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


def pytest_collection_modifyitems(config, items):
    """The offline CUDA compilation runs last: it compiles what the simulated-GPU tests launched."""
    last = [item for item in items if item.module.__name__.endswith("test_cuda_compile")]
    items[:] = [item for item in items if item not in last] + last
