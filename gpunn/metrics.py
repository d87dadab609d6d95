"""Turning scores into labels, and accuracy."""

from __future__ import annotations

from .devices import array_module


def labels_from_scores(scores):
    """Class indices from scores: argmax over classes, or score > 0 for a single output unit."""
    if scores.ndim == 1 or scores.shape[1] == 1:
        return (scores.reshape(-1) > 0).astype(array_module(scores).int64)
    return scores.argmax(axis=1)


def correct_count(scores, y):
    """How many rows of ``scores`` predict their label in ``y`` (a 0-d array on the scores' device)."""
    return (labels_from_scores(scores) == y).sum()
