"""Data-parallel training over MPI on this machine: the time of a step on 1 and 2 processes, and the allreduce's share.

MPI runs in processes of its own, so it cannot be interleaved in one process as the other suites are.
It is timed the closest way: ROUNDS rounds, each one ``mpiexec`` run of bench/mpi_throughput.py per
process count, in an order that alternates from round to round; each run trains a warm epoch, untimed,
then EPOCHS timed epochs of 20 steps, and each timed epoch's mean step time is one sample. One process
uses both cores for its GEMMs (2 BLAS threads); two processes one core each.
Run: pytest bench/test_distributed.py --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from peers import numpy_peer, record

HERE = Path(__file__).resolve().parent
NETS = ["3072-100-10 b200", "3072-1024-10 b256"]
PROCESSES = (1, 2)
ROUNDS = 3


def name(processes: int) -> str:
    return f"{processes} process{'es' if processes > 1 else ''}"


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
    runs = {p: [] for p in PROCESSES}

    def rounds():
        for r in range(ROUNDS):
            for p in PROCESSES if r % 2 == 0 else PROCESSES[::-1]:
                runs[p].append(run(net, p, tmp_path))

    benchmark.group = f"data-parallel training {net}"
    benchmark.pedantic(rounds, rounds=1, iterations=1)
    samples = {name(p): [s / r["steps_per_epoch"] for r in rs for s in r["epoch_seconds"]] for p, rs in runs.items()}
    threads = {p: max(1, (os.cpu_count() or 2) // p) for p in PROCESSES}
    blas = numpy_peer()["blas"]
    record(benchmark, {name(p): {"threads": threads[p],
                                 "blas": f"{blas}; {name(p)} of {threads[p]} thread{'s' if threads[p] > 1 else ''}"}
                       for p in PROCESSES},
           data=f"random: {runs[1][0]['samples_per_epoch']} rows float32 standard normal, labels uniform (seed 0); "
                f"{net.split(' b')[0]} ReLU MLP, SGD, batch {net.split(' b')[1]}")
    benchmark.extra_info.update(
        interleaved={k: statistics.median(v) for k, v in samples.items()}, samples=samples, base=name(1),
        rounds=ROUNDS, block=runs[1][0]["steps_per_epoch"],
        timing=f"{ROUNDS} rounds of one mpiexec run per process count, alternating; each run's "
               f"{len(runs[1][0]['epoch_seconds'])} timed epochs are its samples (mean step time of each)",
        measured_files=sorted({f for rs in runs.values() for r in rs for f in r["measured_files"]}))
    for p, rs in runs.items():
        epochs = [s for r in rs for s in r["epoch_seconds"]]
        benchmark.extra_info[name(p)] = {
            "samples_per_s": rs[0]["samples_per_epoch"] / statistics.median(epochs),
            "allreduce_share": statistics.median([a for r in rs for a in r["allreduce_shares"]])}
