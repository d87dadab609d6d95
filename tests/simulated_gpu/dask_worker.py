"""A Dask worker preload: the worker process gets the simulated GPU, with its two devices visible.

``distributed.LocalCluster(..., preload=[this file])`` runs it in each worker before any task, so
before gpunn is imported there (tests/test_dask_knn.py's GPU cluster).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulated_gpu  # noqa: E402

simulated_gpu.install()
simulated_gpu.strict_cupy._VISIBLE[0] = simulated_gpu.strict_cupy.DEVICES  # this worker's machine has two GPUs
