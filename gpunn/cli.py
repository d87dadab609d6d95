"""The ``gpunn`` command: ``gpunn train`` trains an MLP; ``gpunn info`` describes the installation."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from pathlib import Path

from . import ops
from .classifiers import ACTIVATIONS, build_mlp
from .data.by_name import DATASETS, IMAGE_SHAPES, load_dataset
from .devices import _cuda_device_count, device
from .nn.losses import SoftmaxCrossEntropy
from .optim.by_name import OPTIMIZERS, make_optimizer
from .plots import matplotlib_available, plot_history
from .preprocessing import Standardize
from .trainer import Trainer, TrainingDiverged


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gpunn", description="Train neural networks on NumPy or CuPy, cs231n style.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP and report validation and test accuracy",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", choices=DATASETS, default="digits", help="digits is embedded; cifar10/mnist need --data-dir")
    t.add_argument("--data-dir", type=Path, help="directory of the CIFAR-10 batches or MNIST IDX files")
    t.add_argument("--model", choices=("mlp", "convnet"), default="mlp",
                   help="mlp, or convnet: cs231n's three-layer ConvNet (32 3x3 filters - relu - 2x2 max pool - "
                        "affine to the first --hidden size - relu - affine) on the dataset's images")
    t.add_argument("--hidden", type=int, nargs="+", default=[256], help="hidden layer sizes")
    t.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument("--reg", type=float, default=1e-3, help="L2 regularization strength on the weights")
    t.add_argument("--dropout", type=float, default=0.0, help="drop probability after each hidden layer")
    t.add_argument("--batchnorm", action="store_true", help="batch normalisation after each hidden Linear")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, default=Path("runs/train"), help="where checkpoint, history and plot go")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz if it exists")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    kn = sub.add_parser("knn", help="cross-validate k for k-nearest neighbours, then report test accuracy",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    kn.add_argument("--dataset", choices=("digits", "cifar10", "mnist"), default="digits")
    kn.add_argument("--data-dir", type=Path, help="directory of the CIFAR-10 batches or MNIST IDX files")
    kn.add_argument("--metric", choices=("l1", "l2"), default="l2")
    kn.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 8, 10, 12, 15, 20, 50, 100])
    kn.add_argument("--folds", type=int, default=5)
    kn.add_argument("--train-size", type=int, help="use only the first N training rows (cs231n uses 5000 of CIFAR-10)")
    kn.add_argument("--test-size", type=int, help="use only the first N test rows")
    kn.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    kn.add_argument("--memory-limit", default="1GB", help="bound on a query's temporary memory")
    sub.add_parser("info", help="versions, devices found and active kernels")
    return ap


def train(args) -> int:
    dev = device(args.device)
    data = load_dataset(args.dataset, args.data_dir, seed=args.seed)
    pre = Standardize().fit(data.X_train)  # statistics from the training rows only
    X_train, X_val, X_test = (pre.transform(X) for X in (data.X_train, data.X_val, data.X_test))
    n_classes = int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1
    if args.model == "convnet":
        model, arch = _convnet(args, n_classes)
        X_train, X_val, X_test = (X.reshape(-1, *IMAGE_SHAPES[args.dataset]) for X in (X_train, X_val, X_test))
    else:
        model = build_mlp(X_train.shape[1], n_classes, args.hidden, args.activation, args.dropout, args.batchnorm,
                          rng=args.seed)
        arch = f"{' -> '.join(map(str, [X_train.shape[1], *args.hidden, n_classes]))} {args.activation}"
    opt = make_optimizer(args.optimizer, model.parameters(), args.lr, args.reg)
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, batch_size=args.batch_size, epochs=args.epochs, device=dev,
                      seed=args.seed, progress=not args.no_progress)
    ckpt = args.out / "checkpoint.npz"
    resume = ckpt if args.resume and ckpt.exists() else None
    print(f"gpunn train: {args.dataset} ({len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test), "
          f"{arch}, "
          f"{args.optimizer} lr={args.lr:g}, device {dev}" + (f", resuming from {ckpt}" if resume else ""))
    quiet_bar = args.no_progress or not sys.stderr.isatty()

    def report(r):
        if quiet_bar and (r["epoch"] % max(1, args.epochs // 10) == 0 or r["epoch"] == args.epochs):
            print(f"  epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  train acc {r['train_accuracy']:.3f}  "
                  f"val acc {r['val_accuracy']:.3f}  ({r['seconds']:.2f}s)")

    history = trainer.fit(X_train, data.y_train, val=(X_val, data.y_val), resume=resume, checkpoint_path=ckpt,
                          on_epoch=report)
    best = history.best
    test = trainer.evaluate(X_test, data.y_test)
    history.save(args.out / "history.json")
    print(f"best epoch {best['epoch']}: validation accuracy {best['val_accuracy']:.4f}")
    print(f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f})")
    written = [ckpt, args.out / "history.json"]
    if matplotlib_available():
        written.append(plot_history(history, args.out / "curves.png"))
    else:
        print("(no plot: pip install 'gpunn[plot]' for matplotlib)")
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _convnet(args, n_classes: int):
    """The three-layer ConvNet for ``gpunn train --model convnet``, and a one-line description of it."""
    from .nn.convnet import three_layer_convnet

    if args.dataset not in IMAGE_SHAPES:
        raise ValueError(f"--model convnet needs images; dataset {args.dataset!r} has none "
                         f"(use one of {', '.join(IMAGE_SHAPES)})")
    shape = IMAGE_SHAPES[args.dataset]
    model = three_layer_convnet(shape, n_classes, num_filters=32, filter_size=3, hidden=args.hidden[0],
                                batchnorm=args.batchnorm, rng=args.seed)
    return model, (f"convnet {'x'.join(map(str, shape))} -> conv 32@3x3 -> pool -> {args.hidden[0]} -> {n_classes}"
                   + (" with batchnorm" if args.batchnorm else ""))


def knn(args) -> int:
    import time

    import numpy as np

    from .neighbors import KNeighborsClassifier, cross_validate_k

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


def info(_args) -> int:
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    print(f"gpunn {version('gpunn')} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("numpy", "numba", "tqdm", "cupy-cuda12x", "cupy-cuda13x", "numba-cuda", "matplotlib"):
        print(f"  {dist:14s} {version(dist)}")
    count = _cuda_device_count()
    print(f"CUDA devices: {count}" + ("" if count else " (device='auto' uses the CPU)"))
    for i in range(count):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(i)
        print(f"  cuda:{i}  {props['name'].decode()}  {props['totalGlobalMem'] / 2**30:.1f} GiB")
    kernels = ops.active_kernels()
    fused = {k: v for k, v in kernels.items() if v != "reference"}
    print(f"kernels: {len(fused)} of {len(kernels)} op/device pairs use fused kernels; the rest run the xp reference")
    for k, v in fused.items():
        print(f"  {k}: {v}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"train": train, "knn": knn, "info": info}[args.command](args)
    except (ValueError, TypeError, TrainingDiverged) as e:
        print(f"gpunn {args.command}: error: {e}", file=sys.stderr)
        return 2
