import json
import subprocess
import sys

import numpy as np
import pytest

import gpunn as gn
from gpunn.cli import main


def test_train_defaults_reach_97_percent_and_write_their_files(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    test_accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert test_accuracy >= 0.97
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["epochs"]) == 40 and history["best_epoch"] is not None
    trainer_state = np.load(tmp_path / "checkpoint.npz")
    assert "model.0.W" in trainer_state.files
    if gn.plots.matplotlib_available():
        assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_train_resumes_from_its_checkpoint(tmp_path, capsys):
    args = ["train", "--dataset", "spiral", "--hidden", "32", "--epochs", "4", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    more = [a if a != "4" else "6" for a in args]  # the same run, now to 6 epochs
    assert main(more + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out
    assert len(json.loads((tmp_path / "history.json").read_text())["epochs"]) == 6


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "cifar10"], "give their directory (--data-dir)"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], "does not exist or is not a directory"),
        (["--batch-size", "0"], "batch_size must be >= 1"),
        (["--lr", "-1"], "lr must be in"),
    ],
)
def test_train_errors_are_one_clear_line(args, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_entry_points(tmp_path):
    info = subprocess.run([sys.executable, "-m", "gpunn", "info"], capture_output=True, text=True, check=True)
    assert "CUDA devices:" in info.stdout and "numpy" in info.stdout
    bad = subprocess.run([sys.executable, "-m", "gpunn", "train", "--dataset", "imagenet"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'imagenet'" in bad.stderr
