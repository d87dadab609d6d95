"""The cs231n lessons as pictures: each lesson computes its numbers, then draws them.

    gpunn lesson gates --out lessons/          # the command line
    gn.lessons.run("gates", "lessons/")       # the same from Python

Every lesson is one module here with ``run(out_dir, device="auto", data_dir=None, seed=0) -> dict``:
it writes its figures into ``out_dir`` and returns at least ``"files"`` (the paths written) and
``"summary"`` (a few lines of the numbers behind them), plus those numbers. Adding a lesson is
one module and one line in :data:`LESSONS`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

__all__ = ["LESSONS", "describe", "lesson", "run"]

LESSONS = {  # name -> module (imported when run)
    "gates": "gpunn.lessons.gates",
    "loss-landscape": "gpunn.lessons.loss_landscape",
    "templates": "gpunn.lessons.templates",
    "optimizers": "gpunn.lessons.optimizers",
    "regularization": "gpunn.lessons.regularization",
    "knn-k": "gpunn.lessons.knn_k",
    "ann": "gpunn.lessons.ann",
    "search-strategies": "gpunn.lessons.search_strategies",
    "hyperparameter-search": "gpunn.lessons.hyperparameter_search",
    "filters": "gpunn.lessons.filters",
}


def lesson(name: str):
    """The module of lesson ``name``; an unknown name lists the known ones."""
    if name not in LESSONS:
        raise ValueError(f"unknown lesson {name!r}; known lessons: {', '.join(LESSONS)}")
    return importlib.import_module(LESSONS[name])


def describe(name: str) -> str:
    """The first line of the lesson's docstring."""
    return (lesson(name).__doc__ or "").strip().splitlines()[0]


def run(name: str, out_dir, device="auto", data_dir=None, seed: int = 0) -> dict:
    """Run lesson ``name``: figures into ``out_dir``; returns its dict (files, summary, numbers)."""
    module = lesson(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return module.run(out_dir, device=device, data_dir=data_dir, seed=seed)


# --------------------------------------------------------------------------- the `gpunn lesson` subcommand


def add_parser(sub) -> None:
    """Register ``gpunn lesson NAME --out DIR [--device] [--data-dir] [--seed]`` on the CLI's subparsers."""
    p = sub.add_parser("lesson", help="draw a cs231n lesson as pictures (gpunn lesson --list)")
    p.add_argument("name", nargs="?", help="which lesson; --list shows them")
    p.add_argument("--list", action="store_true", help="list the lessons and exit")
    p.add_argument("--out", type=Path, default=Path("lessons"), help="folder for the figures (default: lessons)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--data-dir", type=Path, help="CIFAR-10 batches: lessons that use images use them instead of digits")
    p.add_argument("--seed", type=int, default=0)


def command(args) -> int:
    """``gpunn lesson``: run one lesson and print its summary and files; ``--list`` lists them."""
    from ..plots import PlotExtraMissing

    if args.list or args.name is None:
        width = max(map(len, LESSONS))
        print("lessons (gpunn lesson NAME --out DIR):")
        for name in LESSONS:
            print(f"  {name:{width}s}  {describe(name)}")
        return 0
    try:
        result = run(args.name, args.out, device=args.device, data_dir=args.data_dir, seed=args.seed)
    except PlotExtraMissing as e:
        print(f"gpunn lesson: {e}", file=sys.stderr)
        return 2
    print(f"gpunn lesson {args.name}: {describe(args.name)}")
    print(result["summary"])
    print("wrote " + ", ".join(map(str, result["files"])))
    return 0
