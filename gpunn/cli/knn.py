"""``gpunn knn``: cross-validate k for k-nearest neighbours, then report test accuracy at the best k."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.by_name import DATASETS, load_dataset
from ..devices import device
from .options import POSITIVE_INT, memory, number
from .train import check_data_dir


def add_parser(sub) -> None:
    """Register ``gpunn knn`` and its options on the ``gpunn`` parser's subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    kn = sub.add_parser("knn", help="cross-validate k for k-nearest neighbours, then report test accuracy",
                        description="Cross-validate k for k-nearest neighbours on the training rows (train and "
                                    "validation parts together), then report test accuracy at the best k.")
    kn.add_argument("--dataset", choices=DATASETS, default="digits",
                    help="digits is embedded, spiral generated; cifar10 and mnist need --data-dir (default: digits)")
    kn.add_argument("--data-dir", type=Path, help="directory of the CIFAR-10 batches or MNIST IDX files (default: none)")
    kn.add_argument("--metric", choices=("l1", "l2"), default="l2", help="distance (default: l2)")
    kn.add_argument("--ks", type=POSITIVE_INT, nargs="+", default=[1, 3, 5, 8, 10, 12, 15, 20, 50, 100],
                    help="the values of k to cross-validate (default: 1 3 5 8 10 12 15 20 50 100)")
    kn.add_argument("--folds", type=number(int, 2), default=5, help="cross-validation folds (default: 5)")
    kn.add_argument("--train-size", type=POSITIVE_INT,
                    help="use only the first N training rows, as cs231n uses 5000 of CIFAR-10 (default: all)")
    kn.add_argument("--test-size", type=POSITIVE_INT, help="use only the first N test rows (default: all)")
    kn.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    kn.add_argument("--memory-limit", type=memory, default="1GB",
                    help="bound on a query's temporary memory, e.g. 512MB or 2GiB (default: 1GB)")


def knn(args) -> int:
    """``gpunn knn``: cross-validate k on the training rows, then report test accuracy at the best k.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Returns
    -------
    int
        The exit status, 0.
    """
    from ..neighbors import KNeighborsClassifier, cross_validate_k

    check_data_dir(args.dataset, args.data_dir)
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
