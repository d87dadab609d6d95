"""Data-parallel training over MPI equals one process: real mpiexec, two processes, on this machine."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import GPU_MARKS, SIMULATED

import gpunn as gn

HERE = Path(__file__).resolve().parent


def make_data(n=203, d=12, classes=4, seed=5):
    """Rows not divisible by the batch size, batches not divisible by 2: the uneven splits are exercised."""
    rng = np.random.default_rng(seed)
    centers = 4 * rng.standard_normal((classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


def make_trainer(distributed=False, epochs=3, device="cpu"):
    model = gn.nn.Sequential(gn.nn.Linear(12, 32, rng=1), gn.nn.ReLU(), gn.nn.Dropout(0.3),
                             gn.nn.Linear(32, 4, rng=2))
    opt = gn.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    return gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=25, epochs=epochs, device=device, seed=11,
                      progress=False, distributed=distributed)


def mpiexec():
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: pip install -e '.[distributed]' in gpunn's directory")
    pytest.importorskip("mpi4py")
    return found


def run_mpi(args, n=2, timeout=300, cwd=None, **env):
    env = dict(os.environ, OMP_NUM_THREADS="1", GPUNN_TEST_SEED="0", **env)
    return subprocess.run([mpiexec(), "-n", str(n), sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


@pytest.mark.parametrize("where", ["cpu", pytest.param("cuda", marks=GPU_MARKS)])
def test_two_processes_train_the_weights_of_one(where, tmp_path):
    """Two processes (on cuda:0 and cuda:1 for "cuda": no NCCL there, so gradients go through the host) train
    the weights one CPU process does."""
    if where == "cuda" and not SIMULATED and gn.devices._cuda_device_count() < 2:
        pytest.skip("needs two GPUs")
    flags = ["--cuda"] if where == "cuda" else []
    run = run_mpi([str(HERE / "mpi" / "train.py"), str(tmp_path / "w.npz"), *flags],
                  **({"GPUNN_TEST_GPU": "sim"} if SIMULATED else {}))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    got = np.load(tmp_path / "w.npz")
    X, y = make_data()
    single = make_trainer()
    history = single.fit(X, y, val=(X[:50], y[:50]))
    for name, value in single.model.state_dict().items():  # dropout masks by global row: the same ones
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(got["history"], history.iteration_loss, rtol=1e-4)
    np.testing.assert_array_equal(got["val"], history.column("val_accuracy"))


def test_processes_with_different_data_are_refused_before_training(tmp_path):
    run = run_mpi([str(HERE / "mpi" / "train.py"), str(tmp_path / "w.npz"), "--bad-rank"])
    assert run.returncode != 0
    assert "the processes disagree on the data: rank 0 has X (203, 12)" in run.stdout
    assert "rank 1 has X (196, 12)" in run.stdout
    assert not (tmp_path / "w.npz").exists()


def test_gpunn_train_distributed_resumes_and_matches_one_process(tmp_path):
    common = ["--dataset", "spiral", "--hidden", "64", "--dropout", "0.2", "--no-progress"]
    first = run_mpi(["-m", "gpunn", "train", "--distributed", "--epochs", "3", "--out", str(tmp_path / "mpi"), *common])
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("gpunn train:") == 1  # rank 0 alone speaks and writes
    second = run_mpi(["-m", "gpunn", "train", "--distributed", "--resume", "--epochs", "5",
                      "--out", str(tmp_path / "mpi"), *common])
    assert second.returncode == 0, second.stderr[-2000:]
    single = subprocess.run([sys.executable, "-m", "gpunn", "train", "--epochs", "5", "--out", str(tmp_path / "one"),
                             *common], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a = gn.checkpoint.load_weights(tmp_path / "mpi" / "checkpoint.npz")
    b = gn.checkpoint.load_weights(tmp_path / "one" / "checkpoint.npz")
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-6, err_msg=name)
    history = json.loads((tmp_path / "mpi" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4, 5]


def test_distributed_without_mpi4py_names_the_extra(tmp_path):
    fake = tmp_path / "mpi4py"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named mpi4py (hidden for this test)')\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    run = subprocess.run([sys.executable, "-m", "gpunn", "train", "--distributed", "--epochs", "1",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2
    assert "distributed training needs mpi4py and an MPI library" in run.stderr
    assert "pip install -e '.[distributed]' in gpunn's directory" in run.stderr and "Traceback" not in run.stderr
