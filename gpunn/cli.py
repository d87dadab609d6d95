"""The ``gpunn`` command: ``gpunn train`` trains an MLP; ``gpunn knn`` tunes k; ``gpunn info`` describes the installation."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path

from . import checkpoint, ops
from .classifiers import ACTIVATIONS, build_mlp
from .data.by_name import DATASETS, FILE_DATASETS, IMAGE_SHAPES, load_dataset
from .devices import _cuda_device_count, cuda_unavailable_reason, device
from .knn import parse_memory
from .lessons import add_parser as add_lesson_parser, command as lesson
from .nn.losses import SoftmaxCrossEntropy
from .optim.by_name import OPTIMIZERS, make_optimizer
from .plots import matplotlib_available, plot_history
from .preprocessing import Standardize
from .trainer import Trainer, TrainingDiverged

# ---------------------------------------------------------------------------- option values


def _number(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a number of ``kind`` in the interval, or an error naming what was expected."""
    lo_sym, hi_sym = ("(" if low_open else "["), (")" if high_open else "]")
    what = f"{'an integer' if kind is int else 'a number'}"
    if low is not None and high is None:
        what += f" {'>' if low_open else '>='} {low}"
    elif low is not None:
        what += f" in {lo_sym}{low}, {high}{hi_sym}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        bad = (low is not None and (value <= low if low_open else value < low)) or \
              (high is not None and (value >= high if high_open else value > high)) or value != value
        if bad:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


POSITIVE_INT, NONNEGATIVE_INT = _number(int, 1), _number(int, 0)
POSITIVE, NONNEGATIVE, PROBABILITY = _number(float, 0, low_open=True), _number(float, 0), _number(float, 0, 1,
                                                                                                   high_open=True)


def _memory(text: str) -> str:
    try:
        parse_memory(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}; use e.g. '512MB', '2GiB' or a number of bytes") from None
    return text


# Options a resumed run takes from its checkpoint unless given; the model and data ones may not change.
MODEL_OPTIONS = {"dataset": "digits", "model": "mlp", "hidden": [256], "activation": "relu", "dropout": 0.0,
                 "batchnorm": False, "seed": 0}
TRAINING_OPTIONS = {"optimizer": "adam", "lr": 1e-3, "reg": 1e-3, "batch_size": 64, "epochs": 40}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gpunn", description="Train neural networks on NumPy or CuPy, cs231n style.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP or a ConvNet and report validation and test accuracy",
                       description="Train an MLP (or, with --model convnet, a ConvNet) and report validation and "
                                   "test accuracy. With --resume, options "
                                   "not given are the checkpoint's; model and data options must match it, and "
                                   "changed training options apply from the next epoch (recorded in the history).")
    resumable = "; with --resume: the checkpoint's"
    t.add_argument("--dataset", choices=DATASETS, help=f"digits is embedded, spiral generated; cifar10 and mnist need "
                   f"--data-dir (default: digits{resumable})")
    t.add_argument("--data-dir", type=Path, help="directory of the CIFAR-10 batches or MNIST IDX files (default: none)")
    t.add_argument("--model", choices=("mlp", "convnet"),
                   help="mlp, or convnet: cs231n's three-layer ConvNet (32 3x3 filters - relu - 2x2 max pool - "
                        f"affine to the first --hidden size - relu - affine) on the dataset's images (default: mlp{resumable})")
    t.add_argument("--hidden", type=POSITIVE_INT, nargs="+", help=f"hidden layer sizes (default: 256{resumable})")
    t.add_argument("--activation", choices=ACTIVATIONS, help=f"hidden-layer activation (default: relu{resumable})")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), help=f"update rule (default: adam{resumable})")
    t.add_argument("--lr", type=POSITIVE, help=f"learning rate (default: 0.001{resumable})")
    t.add_argument("--reg", type=NONNEGATIVE, help=f"L2 strength lambda on the weights (default: 0.001{resumable})")
    t.add_argument("--dropout", type=PROBABILITY, help=f"drop probability after each hidden layer (default: 0{resumable})")
    t.add_argument("--batchnorm", action="store_const", const=True,
                   help=f"batch normalisation after each hidden Linear (default: off{resumable})")
    t.add_argument("--epochs", type=POSITIVE_INT, help=f"total epochs (default: 40{resumable})")
    t.add_argument("--batch-size", type=POSITIVE_INT, help=f"minibatch rows (default: 64{resumable})")
    t.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    t.add_argument("--seed", type=NONNEGATIVE_INT, help=f"weights, split and batch order (default: 0{resumable})")
    t.add_argument("--out", type=Path, default=Path("runs/train"),
                   help="directory for checkpoint.npz, history.json and curves.png (default: runs/train)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz if it exists (default: off)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (default: a bar on a terminal)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: launch with mpirun -n P gpunn train --distributed (default: off)")
    kn = sub.add_parser("knn", help="cross-validate k for k-nearest neighbours, then report test accuracy",
                        description="Cross-validate k for k-nearest neighbours on the training rows (train and "
                                    "validation parts together), then report test accuracy at the best k.")
    kn.add_argument("--dataset", choices=DATASETS, default="digits",
                    help="digits is embedded, spiral generated; cifar10 and mnist need --data-dir (default: digits)")
    kn.add_argument("--data-dir", type=Path, help="directory of the CIFAR-10 batches or MNIST IDX files (default: none)")
    kn.add_argument("--metric", choices=("l1", "l2"), default="l2", help="distance (default: l2)")
    kn.add_argument("--ks", type=POSITIVE_INT, nargs="+", default=[1, 3, 5, 8, 10, 12, 15, 20, 50, 100],
                    help="the values of k to cross-validate (default: 1 3 5 8 10 12 15 20 50 100)")
    kn.add_argument("--folds", type=_number(int, 2), default=5, help="cross-validation folds (default: 5)")
    kn.add_argument("--train-size", type=POSITIVE_INT,
                    help="use only the first N training rows, as cs231n uses 5000 of CIFAR-10 (default: all)")
    kn.add_argument("--test-size", type=POSITIVE_INT, help="use only the first N test rows (default: all)")
    kn.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    kn.add_argument("--memory-limit", type=_memory, default="1GB",
                    help="bound on a query's temporary memory, e.g. 512MB or 2GiB (default: 1GB)")
    sub.add_parser("info", help="versions, devices found and active kernels")
    add_lesson_parser(sub)
    return ap


# ---------------------------------------------------------------------------- train


def _check_data_dir(dataset: str, data_dir) -> None:
    if data_dir is not None and dataset not in FILE_DATASETS:
        raise ValueError(f"--data-dir is read only by {' and '.join(FILE_DATASETS)}; "
                         f"{dataset} is {'embedded' if dataset == 'digits' else 'generated'}")


def _check_out(out: Path) -> None:
    """--out must be a directory we can write: checked before any training."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out} cannot be created: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable")


def _settings(args, resume_from: Path | None) -> tuple[dict, list[str]]:
    """The run's effective options, and the training options changed from the checkpoint's (as text)."""
    given = {name: getattr(args, name) for name in (*MODEL_OPTIONS, *TRAINING_OPTIONS)}
    saved = {}
    if resume_from is not None:
        _, meta = checkpoint.load(resume_from)
        saved = (meta.get("metadata") or {}).get("cli") or {}
        for name in MODEL_OPTIONS:
            if given[name] is not None and name in saved and given[name] != saved[name]:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} {_text(given[name])} differs from the checkpoint's {_text(saved[name])}: a "
                                 f"resumed run keeps its model and data (use another --out to start a new run)")
    settings, changes = {}, []
    for name, default in {**MODEL_OPTIONS, **TRAINING_OPTIONS}.items():
        value = given[name] if given[name] is not None else saved.get(name, default)
        if name in TRAINING_OPTIONS and name in saved and value != saved[name] and name != "epochs":
            changes.append(f"--{name.replace('_', '-')} {_text(saved[name])} -> {_text(value)}")
        settings[name] = value
    return settings, changes


def _text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) else str(value)


def train(args) -> int:
    _check_data_dir(args.dataset or MODEL_OPTIONS["dataset"], args.data_dir)
    _check_out(args.out)
    ckpt = args.out / "checkpoint.npz"
    resume = ckpt if args.resume and ckpt.exists() else None
    if args.resume and resume is None:
        print(f"gpunn train: --resume: no checkpoint at {ckpt}; starting a new run", file=sys.stderr)
    s, changes = _settings(args, resume)
    _check_data_dir(s["dataset"], args.data_dir)
    dev = device(args.device)
    data = load_dataset(s["dataset"], args.data_dir, seed=s["seed"])
    pre = Standardize().fit(data.X_train)  # statistics from the training rows only
    X_train, X_val, X_test = (pre.transform(X) for X in (data.X_train, data.X_val, data.X_test))
    n_classes = int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1
    if s["model"] == "convnet":
        model, arch = _convnet(s, n_classes)
        X_train, X_val, X_test = (X.reshape(-1, *IMAGE_SHAPES[s["dataset"]]) for X in (X_train, X_val, X_test))
    else:
        model = build_mlp(X_train.shape[1], n_classes, s["hidden"], s["activation"], s["dropout"], s["batchnorm"],
                          rng=s["seed"])
        arch = f"{' -> '.join(map(str, [X_train.shape[1], *s['hidden'], n_classes]))} {s['activation']}"
    opt = make_optimizer(s["optimizer"], model.parameters(), s["lr"], s["reg"])
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, batch_size=s["batch_size"], epochs=s["epochs"], device=dev,
                      seed=s["seed"], progress=not args.no_progress, distributed=args.distributed)
    trainer.metadata = {"cli": s}
    root = trainer.parallel.is_root  # under MPI, rank 0 alone prints and writes
    say = print if root else _silent
    world = f", {trainer.parallel.size} processes" if trainer.parallel.size > 1 else ""
    dev = trainer.device
    say(f"gpunn train: {s['dataset']} ({len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test), "
          f"{arch}, "
          f"{s['optimizer']} lr={s['lr']:g} reg={s['reg']:g}, batch {s['batch_size']}, device {dev}{world}"
          + (f", resuming from {ckpt}" if resume else ""))
    if resume is not None:
        resume = _resume(trainer, resume, changes, say)
    elif ckpt.exists():  # the last good checkpoint stays until this run's first epoch replaces it
        say(f"gpunn train: {ckpt} is from an earlier run and will be replaced (--resume continues that run; "
            f"--out DIR keeps both)", file=sys.stderr)
    quiet_bar = args.no_progress or not sys.stderr.isatty()

    def report(r):
        if quiet_bar and (r["epoch"] % max(1, s["epochs"] // 10) == 0 or r["epoch"] == s["epochs"]):
            say(f"  epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  train acc {r['train_accuracy']:.3f}  "
                  f"val acc {r['val_accuracy']:.3f}  ({r['seconds']:.2f}s)")

    try:
        history = trainer.fit(X_train, data.y_train, val=(X_val, data.y_val), resume=resume, checkpoint_path=ckpt,
                              on_epoch=report)
    except KeyboardInterrupt:
        saved = (f"the last checkpoint is {ckpt} (epoch {trainer.epoch}): continue with "
                 f"gpunn train --resume --out {args.out}" if ckpt.exists() else "no checkpoint was written yet")
        say(f"\ngpunn train: interrupted in epoch {trainer.epoch + 1}; {saved}", file=sys.stderr)
        return 130
    best = history.best
    test = trainer.evaluate(X_test, data.y_test)
    if not root:
        return 0
    history.save(args.out / "history.json")
    say(f"best epoch {best['epoch']}: validation accuracy {best['val_accuracy']:.4f}")
    say(f"test accuracy {test['accuracy']:.4f} (data loss {test['loss']:.4f}; with the L2 penalty "
          f"{test['objective']:.4f})")
    written = [ckpt, args.out / "history.json"]
    if matplotlib_available():
        written.append(plot_history(history, args.out / "curves.png"))
    else:
        say("(no plot: pip install -e '.[plot]' in gpunn's directory for matplotlib)")
    say("wrote " + ", ".join(map(str, written)))
    return 0


def _silent(*_args, **_kwargs) -> None:
    """print for the processes other than rank 0 under MPI."""


def _resume(trainer: Trainer, ckpt: Path, changes: list[str], say=print):
    """Print what changes on resume; load a checkpoint of another optimizer without its state.

    Returns what ``Trainer.fit(resume=...)`` should get: the path, or None where it is loaded here.
    """
    if changes:
        say(f"  changed from the checkpoint, applied from the next epoch: {', '.join(changes)}")
    _, meta = checkpoint.load(ckpt)
    saved_type = meta.get("optimizer", {}).get("type")
    if saved_type in (None, type(trainer.optimizer).__name__):
        return ckpt  # fit(resume=) applies the new lr / reg and records them
    metadata = trainer.metadata
    trainer.load_checkpoint(ckpt, optimizer=False)  # another update rule starts with fresh state
    trainer.metadata = metadata  # this run's options, not the file's
    trainer.history.changes.append({"epoch": trainer.epoch + 1, "name": "optimizer", "from": saved_type,
                                    "to": type(trainer.optimizer).__name__})
    return None


def _convnet(s: dict, n_classes: int):
    """The three-layer ConvNet for ``gpunn train --model convnet``, and a one-line description of it."""
    from .nn.convnet import three_layer_convnet

    if s['dataset'] not in IMAGE_SHAPES:
        raise ValueError(f"--model convnet needs images; dataset {s['dataset']!r} has none "
                         f"(use one of {', '.join(IMAGE_SHAPES)})")
    shape = IMAGE_SHAPES[s['dataset']]
    model = three_layer_convnet(shape, n_classes, num_filters=32, filter_size=3, hidden=s['hidden'][0],
                                batchnorm=s['batchnorm'], rng=s['seed'])
    return model, (f"convnet {'x'.join(map(str, shape))} -> conv 32@3x3 -> pool -> {s['hidden'][0]} -> {n_classes}"
                   + (" with batchnorm" if s['batchnorm'] else ""))


# ---------------------------------------------------------------------------- knn


def knn(args) -> int:
    import time

    import numpy as np

    from .neighbors import KNeighborsClassifier, cross_validate_k

    _check_data_dir(args.dataset, args.data_dir)
    data = load_dataset(args.dataset, args.data_dir)
    X = np.concatenate([data.X_train, data.X_val])[:args.train_size]  # kNN has no epochs to validate: use both
    y = np.concatenate([data.y_train, data.y_val])[:args.train_size]
    X_test, y_test = data.X_test[:args.test_size], data.y_test[:args.test_size]
    print(f"gpunn knn: {args.dataset} ({len(y)} train / {len(y_test)} test, {X.shape[1]} features), "
          f"{args.metric}, {args.folds}-fold cross-validation, device {device(args.device)}")
    start = time.perf_counter()
    cv = cross_validate_k(X, y, ks=args.ks, folds=args.folds, metric=args.metric, device=args.device,
                          memory_limit=args.memory_limit)
    print(cv.table())
    knn = KNeighborsClassifier(cv.best_k, args.metric, device=args.device, memory_limit=args.memory_limit).fit(X, y)
    print(f"test accuracy at k={cv.best_k}: {knn.score(X_test, y_test):.4f} ({time.perf_counter() - start:.1f} s)")
    return 0


# ---------------------------------------------------------------------------- info


def info(_args) -> int:
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    print(f"gpunn {version('gpunn')} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("numpy", "numba", "tqdm", "scikit-learn", "scipy", "cupy-cuda12x", "cupy-cuda13x", "numba-cuda",
                 "matplotlib", "dask", "mpi4py"):
        print(f"  {dist:14s} {version(dist)}")
    count = _cuda_device_count()
    print(f"CUDA devices: {count}" + ("" if count else f" (device='auto' uses the CPU): {cuda_unavailable_reason()}"))
    for i in range(count):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(i)
        print(f"  cuda:{i}  {props['name'].decode()}  {props['totalGlobalMem'] / 2**30:.1f} GiB")
    kernels = ops.active_kernels()
    fused = {k: v for k, v in kernels.items() if v != "reference"}
    print(f"kernels: {len(fused)} of {len(kernels)} op/device pairs use fused kernels; the rest run the xp reference")
    for k, v in fused.items():
        print(f"  {k}: {v}")
    if "matmul[cpu]" in fused:
        from gpunn.kernels import blas_pool

        status = blas_pool.status()
        print("CPU threads: " + ("NumPy's BLAS runs on Numba's threads, one pool" if status == "shared"
                                 else f"NumPy's BLAS keeps its own threads ({status})"))
    return 0


# ---------------------------------------------------------------------------- entry point


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"gpunn {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            code = {"train": train, "knn": knn, "info": info, "lesson": lesson}[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except (ValueError, TypeError, TrainingDiverged) as e:
        print(f"gpunn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ngpunn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (gpunn info | head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
