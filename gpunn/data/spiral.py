"""The spiral toy dataset: classes wound around each other, not linearly separable."""

from __future__ import annotations

import numpy as np

from ..validation import check_int


def make_spiral(n_per_class: int = 100, classes: int = 3, seed=0, noise: float = 0.2):
    """The spiral toy dataset: ``classes`` arms of ``n_per_class`` points in 2-D, wound around each other.

    Arm ``c`` runs from the centre to radius 1 at angles ``4 (c + r)`` plus Gaussian noise: no
    straight line separates the classes (the cs231n notes' example for a two-layer net).

    Parameters
    ----------
    n_per_class : int, default=100
        Points per arm.
    classes : int, default=3
        Number of arms (classes), at least 2.
    seed : int or numpy.random.Generator, default=0
        The noise's random numbers.
    noise : float, default=0.2
        Standard deviation of the angle's noise, in radians.

    Returns
    -------
    X : numpy.ndarray
        float32 (N, 2) with N = ``n_per_class * classes``, inside the unit disc.
    y : numpy.ndarray
        int64 (N,): the arm of each point, ``n_per_class`` rows of each class in order.

    Examples
    --------
    >>> X, y = gn.data.make_spiral(50, classes=4, seed=0)
    >>> X.shape, X.dtype, np.bincount(y).tolist()
    ((200, 2), dtype('float32'), [50, 50, 50, 50])
    """
    n_per_class = check_int("n_per_class", n_per_class, low=1)
    classes = check_int("classes", classes, low=2)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    arm = np.repeat(np.arange(classes), n_per_class)
    turns = 4.0 * (arm + radius) + rng.standard_normal(n_per_class * classes) * noise
    X = np.stack([radius * np.sin(turns), radius * np.cos(turns)], axis=1).astype(np.float32)
    return X, arm.astype(np.int64)
