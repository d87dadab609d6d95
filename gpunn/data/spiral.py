"""The spiral toy dataset: classes wound around each other, not linearly separable."""

from __future__ import annotations

import numpy as np

from ..validation import check_int


def make_spiral(n_per_class: int = 100, classes: int = 3, seed=0, noise: float = 0.2):
    """(X, y): ``classes`` spiral arms of ``n_per_class`` points in 2-D; X float32 (N, 2), y int64 (N,)."""
    n_per_class = check_int("n_per_class", n_per_class, low=1)
    classes = check_int("classes", classes, low=2)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    arm = np.repeat(np.arange(classes), n_per_class)
    turns = 4.0 * (arm + radius) + rng.standard_normal(n_per_class * classes) * noise
    X = np.stack([radius * np.sin(turns), radius * np.cos(turns)], axis=1).astype(np.float32)
    return X, arm.astype(np.int64)
