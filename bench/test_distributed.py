"""Data-parallel training over MPI on this machine: samples/s on 1 and 2 processes, and the allreduce's share.

Each configuration is an mpiexec run of bench/mpi_throughput.py (5 timed epochs of 20 batches after a
warm one, medians). One process uses both cores for its GEMMs (2 BLAS threads); two processes use one
core each. On one 2-core machine the two cannot beat one by much: the figure to read is the allreduce's
share of the step, which is what grows with more processes and slower links.
Run: pytest bench/test_distributed.py --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NETS = ["3072-100-10 b200", "3072-1024-10 b256"]


def run(net: str, processes: int, tmp_path) -> dict:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec: pip install 'gpunn[distributed]'")
    threads = str(max(1, (os.cpu_count() or 2) // processes))
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
    out = tmp_path / f"{processes}.json"
    done = subprocess.run([mpiexec, "-n", str(processes), sys.executable, str(HERE / "mpi_throughput.py"), net,
                           str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("net", NETS)
def test_data_parallel_throughput(benchmark, net, tmp_path):
    results = {}
    benchmark.group = f"data-parallel training {net}"
    benchmark.pedantic(lambda: results.update({p: run(net, p, tmp_path) for p in (1, 2)}), rounds=1, iterations=1)
    benchmark.extra_info.update({f"{p} processes": r for p, r in results.items()})
    benchmark.extra_info["interleaved"] = {f"{p} processes": r["epoch_s"] / 20 for p, r in results.items()}
    benchmark.extra_info["base"] = "1 processes"
