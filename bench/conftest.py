"""Benchmark helpers shared by every suite in bench/.

Peers are timed *interleaved*, in blocks: each round gives every candidate, in an
order that alternates from round to round, a short pause (so the previous
candidate's BLAS/OpenMP threads settle), one untimed warm call, then ``block``
timed calls back to back; the block's mean per call is that round's sample. All
candidates share one time window, so drift (another process, clock changes) lands
on all alike, and each sample is steady-state speed as in a training loop: a pause
before every single call would instead measure thread-pool wake-up (seen here:
PyTorch's step at 4.1 ms back to back, 14 ms after a 1 s idle). Medians go into
``extra_info["interleaved"]``, every round's sample into ``extra_info["samples"]`` (the
tables give the spread), and the gpunn files the benchmark ran into
``extra_info["measured_files"]`` (a table older than them fails the docs build);
``bench/report.py`` turns them into ratio tables.
"""

from __future__ import annotations

import statistics
import time

import pytest
from measured_files import files_run_by

PAUSE_S = 0.2


def interleave(candidates: dict, rounds: int = 15, block: int = 5) -> dict:
    """{name: median seconds per call} for each zero-argument callable, timed in interleaved blocks."""
    return {name: statistics.median(ts) for name, ts in interleave_samples(candidates, rounds, block).items()}


def interleave_samples(candidates: dict, rounds: int = 15, block: int = 5) -> dict:
    """{name: [seconds per call in each round]} for each zero-argument callable, timed in interleaved blocks."""
    names = list(candidates)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = candidates[name]
            time.sleep(PAUSE_S)
            fn()  # warm: wakes this candidate's threads, refills caches
            start = time.perf_counter()
            for _ in range(block):
                fn()
            times[name].append((time.perf_counter() - start) / block)
    return times


@pytest.fixture
def interleaved(benchmark):
    """Time candidates interleaved, record their medians and samples, and let pytest-benchmark time ``primary``.

    Before timing, gpunn's candidates (``primary`` and those named "gpunn...") run once under a
    profiler hook, untimed, to record which of gpunn's files they measure.
    """

    def run(candidates: dict, primary: str, rounds: int = 15, block: int = 5):
        measured = set()
        for name, fn in candidates.items():
            if name == primary or name.startswith("gpunn"):
                measured.update(files_run_by(fn))
        samples = interleave_samples(candidates, rounds, block)
        medians = {name: statistics.median(ts) for name, ts in samples.items()}
        benchmark.extra_info.update(interleaved=medians, samples=samples, base=primary, rounds=rounds, block=block,
                                    measured_files=sorted(measured))
        benchmark.pedantic(candidates[primary], rounds=rounds, warmup_rounds=1, iterations=1)
        return medians

    return run


def with_torch(impls: dict, make_torch) -> dict:
    """``impls`` plus PyTorch's implementation under "torch", where PyTorch is installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return impls
    return {**impls, "torch": make_torch}


def torch_sgd_step(model, X, y, lr: float):
    """One PyTorch training step as a user writes it: SGD, cross-entropy, on NumPy data (X, y) turned into tensors."""
    import torch

    return torch_train_step(model, X, y, torch.optim.SGD(model.parameters(), lr=lr))


def torch_train_step(model, X, y, opt):
    """One PyTorch training step with the optimizer ``opt``: cross-entropy, NumPy data (X, y) turned into tensors."""
    import torch

    loss = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        value = loss(model(Xt), yt)
        value.backward()
        opt.step()
        return value.detach()

    return step
