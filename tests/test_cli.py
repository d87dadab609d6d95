import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import GPU_MARKS, on

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
        (["--data-dir", "/tmp"], "--data-dir is read only by cifar10 and mnist; digits is embedded"),
        (["--dataset", "spiral", "--data-dir", "/tmp"], "spiral is generated"),
        (["--precision", "mixed", "--device", "cpu"], "precision='mixed' needs a CUDA device, and the device is cpu"),
    ],
)
def test_train_errors_are_one_clear_line(args, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
        (["train", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
        (["train", "--lr", "-1"], "argument --lr: must be a number > 0, got '-1'"),
        (["train", "--dropout", "1"], "argument --dropout: must be a number in [0, 1), got '1'"),
        (["train", "--hidden", "64", "x"], "argument --hidden: must be an integer >= 1, got 'x'"),
        (["knn", "--ks", "0", "1"], "argument --ks: must be an integer >= 1, got '0'"),
        (["knn", "--memory-limit", "lots"], "argument --memory-limit: cannot read 'lots'"),
        (["train", "--precision", "float16"], "argument --precision: invalid choice: 'float16'"),
        (["train", "--matmul-precision", "tf32"], "argument --matmul-precision: invalid choice: 'tf32'"),
    ],
)
def test_invalid_option_values_name_the_option_and_the_entry(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["train", "knn"])
def test_help_shows_every_default(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out.split("options:")[1]
    options = [chunk for chunk in text.split("\n  -")[1:] if not chunk.startswith("h, --help")]
    assert len(options) >= 9
    for chunk in options:
        assert "default" in " ".join(chunk.split()), chunk


def test_an_unusable_out_fails_before_training(tmp_path, capsys):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    for out, message in [(afile, "is a file, not a directory"), (afile / "sub", "cannot be created")]:
        assert main(["train", "--out", str(out), "--no-progress"]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and len(captured.err.strip().splitlines()) == 1
        assert "epoch" not in captured.out


def test_resume_applies_changed_training_options_and_refuses_model_changes(tmp_path, capsys):
    args = ["train", "--dataset", "spiral", "--hidden", "32", "--epochs", "3", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path), "--no-progress", "--resume", "--epochs", "5", "--lr", "0.5",
                 "--reg", "0"]) == 0
    out = capsys.readouterr().out
    assert "spiral" in out and "-> 32 ->" in out and "adam lr=0.5 reg=0," in out
    assert "changed from the checkpoint, applied from the next epoch: --lr 0.001 -> 0.5, --reg 0.001 -> 0" in out
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["lr"] for e in history["epochs"]] == [1e-3] * 3 + [0.5] * 2
    assert {(c["name"], c["epoch"], c["to"]) for c in history["changes"]} == {("lr", 4, 0.5), ("weight_decay", 4, 0.0)}
    assert main(["train", "--out", str(tmp_path), "--no-progress", "--resume", "--hidden", "64"]) == 2
    assert "--hidden 64 differs from the checkpoint's 32" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path), "--no-progress", "--resume", "--epochs", "6",
                 "--optimizer", "sgd"]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["changes"][-1] == {"epoch": 6, "name": "optimizer", "from": "Adam", "to": "SGD"}


def test_knn_accepts_spiral_and_warns_about_tiny_tiles(capsys):
    assert main(["knn", "--dataset", "spiral", "--ks", "1", "3", "--folds", "2"]) == 0
    assert "test accuracy at k=" in capsys.readouterr().out
    assert main(["knn", "--train-size", "40", "--test-size", "10", "--ks", "1", "--folds", "2",
                 "--memory-limit", "10"]) == 0
    err = capsys.readouterr().err
    assert "gpunn knn: warning: memory_limit of 10 bytes allows only 1 x 1 distances per tile" in err
    assert "Traceback" not in err and "warnings.warn" not in err


def test_info_into_a_closed_pipe_is_quiet():
    read_end, write_end = os.pipe()
    os.close(read_end)
    run = subprocess.run([sys.executable, "-m", "gpunn", "info"], stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert run.stderr == "" and run.returncode == 141


def test_ctrl_c_names_the_last_checkpoint(tmp_path):
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that
    # (Python then installs no KeyboardInterrupt handler): give the child Ctrl-C's usual meaning, as a terminal does.
    proc = subprocess.Popen([sys.executable, "-m", "gpunn", "train", "--dataset", "spiral", "--epochs", "100000",
                             "--out", str(tmp_path), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300  # a first run compiles the kernels; on a loaded machine that takes a while
    while not (tmp_path / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "checkpoint.npz").exists(), "no epoch finished in 300 s"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"the last checkpoint is {tmp_path / 'checkpoint.npz'} (epoch " in err and f"continue with gpunn train --resume --out {tmp_path}" in err


def test_console_entry_points(tmp_path):
    info = subprocess.run([sys.executable, "-m", "gpunn", "info"], capture_output=True, text=True, check=True)
    assert "CUDA devices:" in info.stdout and "numpy" in info.stdout and "CPU threads: " in info.stdout
    bad = subprocess.run([sys.executable, "-m", "gpunn", "train", "--dataset", "imagenet"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'imagenet'" in bad.stderr


def test_options_changed_on_resume_stay_for_the_next_resume(tmp_path, capsys):
    common = ["--dataset", "spiral", "--hidden", "16", "--out", str(tmp_path), "--no-progress"]
    assert main(["train", "--epochs", "2", *common]) == 0
    assert main(["train", "--resume", "--epochs", "3", "--lr", "1e-4", "--batch-size", "32", *common]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "4", *common]) == 0  # nothing given: the last run's values
    out = capsys.readouterr().out
    assert "lr=0.0001" in out and "batch 32" in out and "changed from the checkpoint" not in out
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["lr"] for e in history["epochs"]] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert {(c["name"], c["epoch"]) for c in history["changes"]} == {("lr", 3), ("batch_size", 3)}


def test_a_new_run_over_an_old_checkpoint_says_so(tmp_path, capsys):
    common = ["--dataset", "spiral", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main(["train", *common]) == 0
    assert "will be replaced" not in capsys.readouterr().err  # nothing there yet
    assert main(["train", *common]) == 0
    assert f"{tmp_path / 'checkpoint.npz'} is from an earlier run and will be replaced" in capsys.readouterr().err
    assert main(["train", "--resume", "--epochs", "2", *common[4:]]) == 0
    assert "will be replaced" not in capsys.readouterr().err


def test_resume_without_a_checkpoint_says_it_starts_anew(tmp_path, capsys):
    assert main(["train", "--dataset", "spiral", "--epochs", "1", "--resume", "--out", str(tmp_path / "none"),
                 "--no-progress"]) == 0
    assert f"--resume: no checkpoint at {tmp_path / 'none' / 'checkpoint.npz'}; starting a new run" in \
        capsys.readouterr().err


def test_resuming_a_finished_run_says_there_is_nothing_left(tmp_path, capsys):
    common = ["train", "--dataset", "spiral", "--hidden", "16", "--out", str(tmp_path), "--no-progress"]
    assert main([*common, "--epochs", "2"]) == 0
    capsys.readouterr()
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert main([*common, "--resume"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "gpunn train: nothing left to train: 2 of 2 epochs are done; raise --epochs to continue"
    assert "test accuracy" in captured.out and "checkpoint.npz" not in captured.out.split("wrote")[1]
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert main([*common, "--resume", "--epochs", "1"]) == 0
    assert capsys.readouterr().err.strip() == ("gpunn train: nothing left to train: 2 epochs are done, more than "
                                               "--epochs=1; raise --epochs above 2")


@pytest.mark.parametrize("gpu_spec", [pytest.param("cuda:0", marks=GPU_MARKS)])
def test_train_in_mixed_precision_on_a_gpu_and_resume_it(gpu_spec, tmp_path, capsys):
    """gpunn train --precision mixed: float16 with a loss scaler on the GPU; its checkpoint holds the scaler's state,
    and --resume continues the run in mixed precision."""
    common = ["train", "--device", gpu_spec, "--dataset", "spiral", "--hidden", "16", "--out", str(tmp_path),
              "--no-progress", "--matmul-precision", "high"]
    with on(gpu_spec):
        assert main([*common, "--epochs", "2", "--precision", "mixed"]) == 0
        out = capsys.readouterr().out
        assert f"device {gpu_spec}, precision mixed" in out and "test accuracy" in out
        _, meta = gn.checkpoint.load(tmp_path / "checkpoint.npz")
        assert meta["precision"] == "mixed" and meta["loss_scaler"]["scale"] > 0
        assert main([*common, "--epochs", "3", "--resume"]) == 0
        assert "precision mixed, resuming from" in capsys.readouterr().out
    gn.set_matmul_precision("highest")
