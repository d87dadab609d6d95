"""The ``gpunn`` command: ``gpunn train`` trains an MLP or a ConvNet; ``gpunn knn`` tunes k; ``gpunn info``
describes the installation; ``gpunn lesson`` draws the cs231n pictures. One file per command."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ..lessons import add_parser as add_lesson_parser
from ..lessons import command as lesson
from ..trainer import TrainingDiverged
from . import info, knn, train


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gpunn", description="Train neural networks on NumPy or CuPy, cs231n style.")
    sub = ap.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    knn.add_parser(sub)
    sub.add_parser("info", help="versions, devices found and active kernels")
    add_lesson_parser(sub)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

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
