"""A training step's overhead, held to budgets: Python calls per step on the CPU, and launches per step on a GPU.

The math of a small step is cheap; what a step spends around it is not. The README's loop on the digits
(64-256-10, Adam, batch 64) is held to 120 Python function calls per step (counted with
``sys.setprofile``: every Python frame, a compiled Numba kernel's call included). A 784-512-512-10 ReLU +
Adam step with its data on the device is held to 20 launches on the simulated GPU: CuPy kernels, cuBLAS
calls and Numba kernels, counted as real CuPy would launch them (``simulated_gpu.strict_cupy.launched``).
The same step in mixed precision is held to the same 20: the loss scale is folded into the fused loss,
the overflow check is the divergence check, and the update unscales and writes the float16 copies in its
one launch (the data is float16 on the device, so no cast per batch).
"""

import collections
import sys

import numpy as np
import pytest
from conftest import GPU_MARKS, SIMULATED, on

import gpunn as gn

CALL_BUDGET = 120
LAUNCH_BUDGET = 20


def readme_step(rng):
    """The README's loop body, on the embedded digits' shapes."""
    X, y = rng.standard_normal((64, 64)).astype(np.float32), rng.integers(0, 10, 64)
    model = gn.nn.Sequential(gn.nn.Linear(64, 256, rng=0), gn.nn.ReLU(), gn.nn.Linear(256, 10, rng=1))
    loss = gn.nn.SoftmaxCrossEntropy()
    opt = gn.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        return value

    return step


def test_readme_step_python_call_budget(rng, monkeypatch):
    # as in a process that runs this loop: no parallel Numba kernel in the last 0.2 s (an earlier test's would
    # hand the GEMMs to Numba's threads, kernels/blas_pool.py, a path this step does not take)
    monkeypatch.setattr(gn.kernels.blas_pool, "LAST_PARALLEL", [-1.0])
    # every gate's fused kernels first, as in a process that used them before: the step's own kernels must still
    # be found by Numba's dispatch without typing their arguments again in Python
    z, b = rng.standard_normal((7, 31)).astype(np.float32), np.zeros(31, np.float32)
    for cls in gn.nn.ACTIVATIONS.values():
        gate = cls(alpha=0.5) if "alpha" in cls.numbers else cls()
        gn.ops.bias_activation_backward.with_kernel(z, gn.ops.bias_activation.with_kernel(z.copy(), b, gate), gate)
    step = readme_step(rng)
    for _ in range(3):  # compiled, allocated, resolved
        step()
    calls = collections.Counter()

    def count(frame, event, arg):
        if event == "call":
            calls[f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_code.co_name}"] += 1

    sys.setprofile(count)
    try:
        step()
    finally:
        sys.setprofile(None)
    total = sum(calls.values())
    assert total <= CALL_BUDGET, f"{total} Python calls per step (budget {CALL_BUDGET}): {calls.most_common(25)}"


@pytest.mark.skipif(not SIMULATED, reason="on a real GPU launches are counted by the profiler (bench/GPU.md)")
@pytest.mark.parametrize("precision", ["float32", "mixed"])
@pytest.mark.parametrize("gpu_spec", [pytest.param("cuda:0", marks=GPU_MARKS)])
def test_mlp_training_step_launch_budget(gpu_spec, precision, rng, monkeypatch):
    from simulated_gpu import kernel_launches, strict_cupy

    def launches():
        return {**strict_cupy.LAUNCHES, "numba": kernel_launches.COUNTS["numba"]}

    per_step, log = [], []
    step, gather = gn.Trainer._step, gn.batches.Batches._gather

    def counted(fn):
        def run(*args, **kwargs):
            before, first = launches(), len(log)
            result = fn(*args, **kwargs)
            per_step.append({**{k: v - before[k] for k, v in launches().items()}, "cupy ops": log[first:]})
            return result
        return run

    monkeypatch.setattr(gn.Trainer, "_step", counted(step))
    monkeypatch.setattr(gn.batches.Batches, "_gather", counted(gather))
    with on(gpu_spec) as dev:
        X, y = rng.standard_normal((512, 784)).astype(np.float32), rng.integers(0, 10, 512)
        model = gn.nn.Sequential(gn.nn.Linear(784, 512, rng=0), gn.nn.ReLU(), gn.nn.Linear(512, 512, rng=1),
                                 gn.nn.ReLU(), gn.nn.Linear(512, 10, rng=2))
        trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(model.parameters()), batch_size=256,
                             epochs=1, device=dev, progress=False, log_every=1000, restore_best=False,
                             precision=precision)
        monkeypatch.setattr(strict_cupy, "launched", _logging(strict_cupy.launched, log))
        trainer.fit(X, y)
    # per_step holds (gather, step) pairs in order: the second batch's pair is the steady state
    gathered, stepped = per_step[2], per_step[3]
    kernels = {k: gathered[k] + stepped[k] for k in ("cupy", "cublas", "numba")}
    total = sum(kernels.values())
    ops = gathered["cupy ops"] + stepped["cupy ops"]
    assert total <= LAUNCH_BUDGET, f"{total} launches per step (budget {LAUNCH_BUDGET}): {kernels}; CuPy's: {ops}"
    assert kernels["numba"] >= 1 and kernels["cublas"] >= 5  # the counts see the kernels and the GEMMs


def _logging(launched, log):
    def run(name):
        log.append(name)
        return launched(name)
    return run


@pytest.mark.parametrize("gpu_spec", [pytest.param("cuda:0", marks=GPU_MARKS)])
def test_gpunn_train_on_a_gpu_prints_no_numba_performance_warning(gpu_spec, tmp_path, capsys):
    import warnings

    from numba.cuda.core.errors import NumbaPerformanceWarning

    from gpunn.cli import main

    with on(gpu_spec), warnings.catch_warnings():
        warnings.simplefilter("error", NumbaPerformanceWarning)  # as numba-cuda makes it: a grid under 128 blocks
        assert main(["train", "--device", gpu_spec, "--dataset", "spiral", "--hidden", "16", "--epochs", "2",
                     "--out", str(tmp_path), "--no-progress"]) == 0
    assert "Warning" not in capsys.readouterr().err
