"""Turning scores into labels, and accuracy."""

from __future__ import annotations

from .devices import array_module, to_numpy
from .validation import NonFiniteError


def labels_from_scores(scores):
    """Class indices from scores: argmax over classes, or score > 0 for a single output unit.

    A row whose scores hold NaN has no class (argmax would call it class 0): refused. One host
    read of a flag.

    Parameters
    ----------
    scores : array
        (N, C) scores, or (N,) / (N, 1) for one output unit; NumPy or CuPy.

    Returns
    -------
    array
        (N,) int64 class indices, on the scores' device.

    Raises
    ------
    NonFiniteError
        A ``ValueError`` naming up to three of the rows whose scores hold NaN.
    """
    xp = array_module(scores)
    bad = xp.isnan(scores.reshape(scores.shape[0], -1)).any(axis=1)
    if bool(bad.any()):
        rows = [int(i) for i in to_numpy(xp.flatnonzero(bad)[:4])]
        n = int(bad.sum())
        shown = ", ".join(map(str, rows[:3])) + (", ..." if n > 3 else "")
        raise NonFiniteError(f"the scores of {n} row{'s' if n > 1 else ''} ({'rows' if n > 1 else 'row'} {shown}) "
                             "hold NaN: no class can be chosen (the model's weights or its outputs are not finite)")
    return _labels(scores)


def _labels(scores):
    """:func:`labels_from_scores` without the NaN check: on the device, no host read (for training's accuracy)."""
    if scores.ndim == 1 or scores.shape[1] == 1:
        return (scores.reshape(-1) > 0).astype(array_module(scores).int64)
    return scores.argmax(axis=1)


def correct_count(scores, y):
    """How many rows of ``scores`` predict their label in ``y``, counted on the scores' device.

    No NaN check here: the Trainer's divergence flag catches non-finite losses instead (a NaN
    score makes the loss NaN), without a host read per batch.

    Parameters
    ----------
    scores : array
        (N, C) scores, or (N,) / (N, 1) for one output unit.
    y : array
        (N,) integer labels on the same device.

    Returns
    -------
    array
        A 0-d integer array on the scores' device (reading it is a host read).
    """
    return (_labels(scores) == y).sum()
