"""``gpunn train``: train an MLP or a ConvNet, with validation, checkpoints and resume, and report test accuracy."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from .. import resume as resuming
from ..classifiers import ACTIVATIONS, build_mlp
from ..data.by_name import DATASETS, FILE_DATASETS, IMAGE_SHAPES, load_dataset
from ..devices import TRAINING_PRECISIONS, device
from ..kernels.matmul import MATMUL_PRECISIONS, set_matmul_precision
from ..nn.activations import ACTIVATIONS as GATES
from ..nn.losses import SoftmaxCrossEntropy
from ..optim.by_name import OPTIMIZERS, make_optimizer
from ..plots import matplotlib_available, plot_history
from ..preprocessing import Standardize
from ..trainer import Trainer
from .options import NONNEGATIVE, NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, PROBABILITY


def add_parser(sub) -> None:
    """Register ``gpunn train`` and its options on the ``gpunn`` parser's subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
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
                   help="mlp, or convnet: cs231n's three-layer ConvNet (32 3x3 filters - activation - 2x2 max pool - "
                        "affine to the --hidden size - activation - [dropout] - affine) on the dataset's images "
                        f"(default: mlp{resumable})")
    t.add_argument("--hidden", type=POSITIVE_INT, nargs="+",
                   help=f"hidden layer sizes; one for the convnet (default: 256{resumable})")
    t.add_argument("--activation", choices=ACTIVATIONS,
                   help=f"hidden-layer activation; the convnet's conv layer too (default: relu{resumable})")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), help=f"update rule (default: adam{resumable})")
    t.add_argument("--lr", type=POSITIVE, help=f"learning rate (default: 0.001{resumable})")
    t.add_argument("--reg", type=NONNEGATIVE, help=f"L2 strength lambda on the weights (default: 0.001{resumable})")
    t.add_argument("--dropout", type=PROBABILITY,
                   help=f"drop probability after each hidden layer; the convnet's affine one only (default: 0{resumable})")
    t.add_argument("--batchnorm", action="store_const", const=True,
                   help=f"batch normalisation after each hidden Linear (default: off{resumable})")
    t.add_argument("--epochs", type=POSITIVE_INT, help=f"total epochs (default: 40{resumable})")
    t.add_argument("--batch-size", type=POSITIVE_INT, help=f"minibatch rows (default: 64{resumable})")
    t.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    t.add_argument("--precision", choices=TRAINING_PRECISIONS,
                   help="float32, float64, or mixed: float16 compute with float32 master weights and dynamic loss "
                        f"scaling, on a CUDA device only (default: float32{resumable})")
    t.add_argument("--matmul-precision", choices=MATMUL_PRECISIONS, default="highest",
                   help="float32 matrix products on a GPU: highest (float32) or high (TF32 on GPUs of compute "
                        "capability 8.0 and above); the CPU is unaffected (default: highest)")
    t.add_argument("--seed", type=NONNEGATIVE_INT, help=f"weights, split and batch order (default: 0{resumable})")
    t.add_argument("--out", type=Path, default=Path("runs/train"),
                   help="directory for checkpoint.npz, history.json and curves.png (default: runs/train)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz if it exists (default: off)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (default: a bar on a terminal)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: launch with mpirun -n P gpunn train --distributed (default: off)")


def train(args) -> int:
    """``gpunn train``: build the model and data the options say, train with checkpoints, report test accuracy.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options; with ``--resume``, those left out are the checkpoint's.

    Returns
    -------
    int
        The exit status: 0, or 130 where the run was interrupted (the last checkpoint is named).

    Raises
    ------
    ValueError
        For options that do not go together (a second ``--hidden`` size for the convnet, ``--data-dir``
        for a dataset that reads none, an ``--out`` that cannot be written, a model change on resume).
    """
    check_data_dir(args.dataset or resuming.FIXED["dataset"], args.data_dir)
    _check_out(args.out)
    ckpt = args.out / "checkpoint.npz"
    resume = ckpt if args.resume and ckpt.exists() else None
    if args.resume and resume is None:
        print(f"gpunn train: --resume: no checkpoint at {ckpt}; starting a new run", file=sys.stderr)
    saved, done = resuming.saved_options(resume) if resume is not None else ({}, 0)
    s, changes = resuming.options({name: getattr(args, name) for name in (*resuming.FIXED, *resuming.CHANGEABLE)},
                                  saved)
    check_data_dir(s["dataset"], args.data_dir)
    if s["model"] == "convnet" and len(s["hidden"]) > 1:
        raise ValueError(f"--hidden {resuming.text(s['hidden'])}: --model convnet has one hidden layer (cs231n's "
                         "three-layer ConvNet); give one size")
    trainer, data, arch = _build(s, args)
    say = print if trainer.parallel.is_root else _silent  # under MPI, rank 0 alone prints and writes
    world = f", {trainer.parallel.size} processes" if trainer.parallel.size > 1 else ""
    say(f"gpunn train: {s['dataset']} ({len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test), "
        f"{arch}, {s['optimizer']} lr={s['lr']:g} reg={s['reg']:g}, batch {s['batch_size']}, device "
        f"{trainer.device}{world}" + ("" if s["precision"] == "float32" else f", precision {s['precision']}")
        + (f", resuming from {ckpt}" if resume else ""))
    finished = resume is not None and resuming.nothing_left(done, s["epochs"], "--epochs")
    if finished:
        say(f"gpunn train: {finished}", file=sys.stderr)
    if changes:
        say(f"  changed from the checkpoint, applied from the next epoch: {', '.join(changes)}")
    elif resume is None and ckpt.exists():  # the last good checkpoint stays until this run's first epoch replaces it
        say(f"gpunn train: {ckpt} is from an earlier run and will be replaced (--resume continues that run; "
            f"--out DIR keeps both)", file=sys.stderr)
    history = _fit(trainer, data, s, args, resume, ckpt, say)
    if history is None:
        return 130
    test = trainer.evaluate(data.X_test, data.y_test)
    if trainer.parallel.is_root:
        _report(history, test, args.out, [] if finished else [ckpt], say)
    return 0


def _build(s: dict, args):
    """(trainer, the data standardised by the training rows' statistics, a one-line description of the model)."""
    data = load_dataset(s["dataset"], args.data_dir, seed=s["seed"])
    pre = Standardize().fit(data.X_train)  # statistics from the training rows only
    data = data._replace(**{k: pre.transform(getattr(data, k)) for k in ("X_train", "X_val", "X_test")})
    n_classes = int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1
    if s["model"] == "convnet":
        model, arch = _convnet(s, n_classes)
        shape = IMAGE_SHAPES[s["dataset"]]
        data = data._replace(**{k: getattr(data, k).reshape(-1, *shape) for k in ("X_train", "X_val", "X_test")})
    else:
        model = build_mlp(data.X_train.shape[1], n_classes, s["hidden"], s["activation"], s["dropout"],
                          s["batchnorm"], rng=s["seed"])
        arch = f"{' -> '.join(map(str, [data.X_train.shape[1], *s['hidden'], n_classes]))} {s['activation']}"
    opt = make_optimizer(s["optimizer"], model.parameters(), s["lr"], s["reg"])
    set_matmul_precision(args.matmul_precision)
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, batch_size=s["batch_size"], epochs=s["epochs"],
                      device=device(args.device), seed=s["seed"], progress=not args.no_progress,
                      distributed=args.distributed, precision=s["precision"])
    trainer.metadata = {"cli": s}
    return trainer, data, arch


def _fit(trainer, data, s: dict, args, resume, ckpt: Path, say):
    """Train, printing a line per tenth of the run where there is no progress bar; None where interrupted."""
    quiet_bar = args.no_progress or not sys.stderr.isatty()

    def report(r):
        if quiet_bar and (r["epoch"] % max(1, s["epochs"] // 10) == 0 or r["epoch"] == s["epochs"]):
            say(f"  epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  train acc {r['train_accuracy']:.3f}  "
                f"val acc {r['val_accuracy']:.3f}  ({r['seconds']:.2f}s)")

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="nothing left to train")  # said already, in the options' words
            return trainer.fit(data.X_train, data.y_train, val=(data.X_val, data.y_val), resume=resume,
                               checkpoint_path=ckpt, on_epoch=report)
    except KeyboardInterrupt:
        saved = (f"the last checkpoint is {ckpt} (epoch {trainer.epoch}): continue with "
                 f"gpunn train --resume --out {args.out}" if ckpt.exists() else "no checkpoint was written yet")
        say(f"\ngpunn train: interrupted in epoch {trainer.epoch + 1}; {saved}", file=sys.stderr)
        return None


def _report(history, test: dict, out: Path, written: list, say) -> None:
    best = history.best
    history.save(out / "history.json")
    say(f"best epoch {best['epoch']}: validation accuracy {best['val_accuracy']:.4f}")
    say(f"test accuracy {test['accuracy']:.4f} (data loss {test['loss']:.4f}; with the L2 penalty "
        f"{test['objective']:.4f})")
    written = written + [out / "history.json"]
    if matplotlib_available():
        written.append(plot_history(history, out / "curves.png"))
    else:
        say("(no plot: pip install -e '.[plot]' in gpunn's directory for matplotlib)")
    say("wrote " + ", ".join(map(str, written)))


def _silent(*_args, **_kwargs) -> None:
    """print for the processes other than rank 0 under MPI."""


def check_data_dir(dataset: str, data_dir) -> None:
    """Refuse ``--data-dir`` for a dataset that reads no files (digits is embedded, spiral generated).

    Parameters
    ----------
    dataset : str
        The dataset's name.
    data_dir : pathlib.Path or None
        The ``--data-dir`` given.

    Raises
    ------
    ValueError
        Naming the datasets that read files.
    """
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


def _convnet(s: dict, n_classes: int):
    """The three-layer ConvNet for ``gpunn train --model convnet``, and a one-line description of it."""
    from ..nn.convnet import three_layer_convnet

    if s['dataset'] not in IMAGE_SHAPES:
        raise ValueError(f"--model convnet needs images; dataset {s['dataset']!r} has none "
                         f"(use one of {', '.join(IMAGE_SHAPES)})")
    shape = IMAGE_SHAPES[s['dataset']]
    init = GATES[s['activation']].init  # as build_mlp chooses
    model = three_layer_convnet(shape, n_classes, num_filters=32, filter_size=3, hidden=s['hidden'][0],
                                batchnorm=s['batchnorm'], init=init, rng=s['seed'], activation=s['activation'],
                                dropout=s['dropout'])
    return model, (f"convnet {'x'.join(map(str, shape))} -> conv 32@3x3 -> pool -> {s['hidden'][0]} -> {n_classes} "
                   f"{s['activation']}" + (" with batchnorm" if s['batchnorm'] else "")
                   + (f", dropout {s['dropout']:g}" if s['dropout'] else ""))
