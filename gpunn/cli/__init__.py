"""The ``gpunn`` command: ``gpunn train`` trains an MLP or a ConvNet; ``gpunn knn`` tunes k; ``gpunn info``
describes the installation; ``gpunn lesson`` draws the cs231n pictures. One file per command.

:func:`main` runs the command from Python with a list of arguments; :func:`parser` is its argparse
parser (the docs' checks read the options from it).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ..lessons import add_parser as add_lesson_parser
from ..lessons import command as lesson
from ..trainer import TrainingDiverged
from . import info, knn, train

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The ``gpunn`` command's argument parser, with its subcommands train, knn, info and lesson.

    Returns
    -------
    argparse.ArgumentParser
        A new parser; ``parse_args`` on it checks every option's value where it is parsed.

    Examples
    --------
    >>> args = gn.cli.parser().parse_args(["train", "--epochs", "5", "--lr", "2e-3"])
    >>> args.command, args.epochs, args.lr
    ('train', 5, 0.002)
    >>> sorted(gn.cli.parser()._subparsers._group_actions[0].choices)
    ['info', 'knn', 'lesson', 'train']
    """
    ap = argparse.ArgumentParser(prog="gpunn", description="Train neural networks on NumPy or CuPy, cs231n style.")
    sub = ap.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    knn.add_parser(sub)
    sub.add_parser("info", help="versions, devices found and active kernels")
    add_lesson_parser(sub)
    return ap


def main(argv=None) -> int:
    """Run the ``gpunn`` command (the console script calls this with no arguments).

    Errors in the user's input (a bad option value, a dataset file that is not one, a run that
    diverged) are printed as one line, ``gpunn COMMAND: error: ...``, and give status 2; Ctrl-C
    gives 130 and a closed pipe (``gpunn info | head``) 141, quietly.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``gpunn``; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status.

    Raises
    ------
    SystemExit
        From argparse, for ``--help`` (status 0) and for options it refuses (status 2).

    Examples
    --------
    >>> gn.cli.main(["lesson", "--list"])             # doctest: +ELLIPSIS
    lessons (gpunn lesson NAME --out DIR):
      gates                  Backprop on a graph of gates: the two worked examples drawn with values and gradients.
    ...
    0
    >>> gn.cli.main(["knn", "--dataset", "spiral", "--data-dir", "data"])
    2
    """
    args = parser().parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"gpunn {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            code = {"train": train.train, "knn": knn.knn, "info": info.info, "lesson": lesson}[args.command](args)
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
