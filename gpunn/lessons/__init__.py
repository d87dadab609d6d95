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
    """The module of lesson ``name`` (imported on first use).

    Parameters
    ----------
    name : str
        A key of :data:`LESSONS`.

    Returns
    -------
    module
        The lesson's module, with its ``run``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if name not in LESSONS:
        raise ValueError(f"unknown lesson {name!r}; known lessons: {', '.join(LESSONS)}")
    return importlib.import_module(LESSONS[name])


def describe(name: str) -> str:
    """What lesson ``name`` shows, in one line (its module's first line).

    Parameters
    ----------
    name : str
        A key of :data:`LESSONS`.

    Returns
    -------
    str
        The line ``gpunn lesson --list`` prints.

    Examples
    --------
    >>> gn.lessons.describe("gates")
    'Backprop on a graph of gates: the two worked examples drawn with values and gradients.'
    """
    return (lesson(name).__doc__ or "").strip().splitlines()[0]


def run(name: str, out_dir, device="auto", data_dir=None, seed: int = 0) -> dict:
    """Run lesson ``name``: it computes its numbers and draws its figures into ``out_dir``.

    Parameters
    ----------
    name : str
        A key of :data:`LESSONS` (``gpunn lesson --list`` shows them).
    out_dir : str or pathlib.Path
        The folder for the figures, created if needed.
    device : str or Device, default="auto"
        Where the lesson computes: "cpu", "cuda", "cuda:N" or "auto".
    data_dir : str or pathlib.Path, default=None
        CIFAR-10 batches: the lessons that use images use them instead of the digits.
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        At least ``"files"`` (the paths written) and ``"summary"`` (a few lines of the numbers
        behind the figures), plus those numbers.

    Raises
    ------
    ValueError
        For an unknown lesson.
    gpunn.plots.PlotExtraMissing
        Where the lesson draws with matplotlib and it is not installed.

    Examples
    --------
    >>> import tempfile
    >>> result = gn.lessons.run("gates", tempfile.mkdtemp(), device="cpu")
    >>> print(result["summary"])
    add_multiply     f=-12.0000  dx=-4.000, dy=-4.000, dz=3.000
    neuron           f=0.8808  da=-0.105, db=0.315, dc=0.105, dx=0.105, dy=0.210
    neuron_expanded  f=0.8808  da=-0.105, db=0.315, dc=0.105, dx=0.105, dy=0.210
    >>> sorted(p.suffix for p in result["files"])
    ['.png', '.png', '.png', '.svg', '.svg', '.svg']
    """
    module = lesson(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return module.run(out_dir, device=device, data_dir=data_dir, seed=seed)


# --------------------------------------------------------------------------- the `gpunn lesson` subcommand


def add_parser(sub) -> None:
    """Register ``gpunn lesson NAME --out DIR [--device] [--data-dir] [--seed]`` on the CLI's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``gpunn`` parser's subcommands.
    """
    p = sub.add_parser("lesson", help="draw a cs231n lesson as pictures (gpunn lesson --list)")
    p.add_argument("name", nargs="?", help="which lesson; --list shows them")
    p.add_argument("--list", action="store_true", help="list the lessons and exit")
    p.add_argument("--out", type=Path, default=Path("lessons"), help="folder for the figures (default: lessons)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--data-dir", type=Path, help="CIFAR-10 batches: lessons that use images use them instead of digits")
    p.add_argument("--seed", type=int, default=0)


def command(args) -> int:
    """``gpunn lesson``: run one lesson and print its summary and files; ``--list`` lists them.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``gpunn lesson``.

    Returns
    -------
    int
        The exit status: 0, or 2 where matplotlib is missing (said in one line).
    """
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
