"""The command line's option types: numbers in a range and memory sizes, each refused with what was expected."""

from __future__ import annotations

import argparse

from ..knn import parse_memory


def number(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a number of ``kind`` in the interval, or an error naming what was expected.

    Parameters
    ----------
    kind : type
        ``int`` or ``float``.
    low, high : float, default=None
        The interval's ends; None: unbounded on that side.
    low_open, high_open : bool, default=False
        Whether the end itself is excluded.

    Returns
    -------
    callable
        ``parse(text)``: the number, or :class:`argparse.ArgumentTypeError` saying what was expected
        (argparse prints it with the option's name).
    """
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


POSITIVE_INT, NONNEGATIVE_INT = number(int, 1), number(int, 0)
POSITIVE, NONNEGATIVE, PROBABILITY = number(float, 0, low_open=True), number(float, 0), number(float, 0, 1,
                                                                                                   high_open=True)


def memory(text: str) -> str:
    """An argparse type: a memory size gpunn's kNN reads ("512MB", "2GiB", a number of bytes), kept as text.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    str
        ``text``, once it reads as a size.

    Raises
    ------
    argparse.ArgumentTypeError
        Where it does not, with examples of what does.
    """
    try:
        parse_memory(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}; use e.g. '512MB', '2GiB' or a number of bytes") from None
    return text
