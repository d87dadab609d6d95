"""Argument checks shared by layers, losses and optimizers.

Each raises ``ValueError`` or ``TypeError`` naming the argument, what was expected
and what came, before any state is touched.
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

from .devices import array_module, device_of


@contextlib.contextmanager
def arguments_of(owner: str):
    """``with arguments_of("Conv2d"):`` a ValueError or TypeError raised inside says ``Conv2d: `` first.

    For constructors: the checks name the argument, this names the layer it was given to.

    Parameters
    ----------
    owner : str
        What the arguments were given to, as the message should name it.

    Yields
    ------
    None
        The block runs inside.

    Raises
    ------
    ValueError, TypeError
        The one raised in the block, of the same type, its message prefixed with ``owner``.
    """
    try:
        yield
    except (ValueError, TypeError) as error:
        raise type(error)(f"{owner}: {error}") from None


def check_number(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """``value`` as a float, checked to lie in the interval from ``low`` to ``high``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : float
        The value given (a bool is refused: ``True`` is not a number here).
    low, high : float, default=None
        The interval's ends; None: unbounded on that side.
    low_open, high_open : bool, default=False
        Whether the end itself is excluded.

    Returns
    -------
    float
        ``value``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is outside the interval, or NaN; the message names ``name`` and the interval.
    """
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high or value != value:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_int(name: str, value, *, low: int | None = None) -> int:
    """``value`` as an int (bools refused), at least ``low``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int
        The value given.
    low : int, default=None
        The smallest allowed; None: any.

    Returns
    -------
    int
        ``value``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is below ``low``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    """``value`` must be one of ``choices`` (strings).

    Parameters
    ----------
    name : str
        What the value is, for the message ("activation").
    value : str
        The value given.
    choices : sequence of str
        The allowed values, listed in the message.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        If ``value`` is not among ``choices``.
    """
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or infinity."""


def check_finite(name: str, a) -> None:
    """Refuse arrays holding NaN or infinity (one host read of a flag).

    Parameters
    ----------
    name : str
        The array's name, for the message.
    a : array
        NumPy or CuPy.

    Raises
    ------
    NonFiniteError
        A ``ValueError``, where ``a`` holds NaN or infinity.
    """
    if type(a) is np.ndarray:
        finite = np.isfinite(a).all()
    else:
        with device_of(a):  # CuPy computes on the array's own GPU
            finite = array_module(a).isfinite(a).all()
    if not bool(finite):
        raise NonFiniteError(f"{name} contains NaN or infinite values")


def check_labels(name: str, y, n: int, classes: int | None) -> None:
    """``y`` must be a 1-D integer array of length ``n`` with values in [0, classes).

    Parameters
    ----------
    name : str
        The labels' name, for the message.
    y : array
        The labels (NumPy or CuPy).
    n : int
        The number of rows they label.
    classes : int or None
        The number of classes; None: the values are not checked.

    Raises
    ------
    TypeError
        If ``y`` does not hold integers (whole numbers stored as floats get a hint).
    ValueError
        If ``y`` is one-hot, has another length, or holds a value outside [0, classes).
    """
    if y.ndim == 2 and y.shape[1] > 1:  # before the dtype: one-hot rows are often floats
        raise ValueError(f"{name} must be 1-D class labels, got shape {tuple(y.shape)}; for one-hot rows use "
                         f"{name}.argmax(1)")
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and y.size and bool((y == array_module(y).round(y)).all()):
            hint = " (whole numbers stored as floats: convert with y.astype(int))"
        else:
            hint = ""
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}{hint}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the scores, got {tuple(y.shape)}")
    if classes is not None and n:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= classes:
            raise ValueError(f"{name} must be class indices in [0, {classes}), got values from {lo} to {hi}")


def check_array(name: str, X, matrix: bool = True):
    """``X`` as an array of numbers with at least one row, (N, D) when ``matrix``; lists become NumPy arrays.

    Parameters
    ----------
    name : str
        The array's name, for the message.
    X : array_like
        NumPy, CuPy or anything ``numpy.asarray`` takes.
    matrix : bool, default=True
        Require two dimensions.

    Returns
    -------
    array
        ``X`` itself where it is an array, else a NumPy array of it.

    Raises
    ------
    TypeError
        If ``X`` does not hold numbers.
    ValueError
        If it is not 2-D (with ``matrix``) or has no rows.
    """
    X = X if hasattr(X, "shape") else np.asarray(X)
    if getattr(X, "dtype", np.dtype(object)).kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if matrix and X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (samples, features), got shape {tuple(X.shape)}")
    if X.ndim < 1 or X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(X.shape)})")
    return X
