"""Weight initialisation: "he", "xavier", or a fixed standard deviation.

Weights are drawn on the host in float64 from a NumPy ``Generator``, so the same
seed gives the same network on every device and dtype.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

INITS = ("he", "xavier")


def as_rng(rng) -> np.random.Generator:
    """A NumPy ``Generator`` from ``None`` (fresh entropy), an int seed, or a ``Generator``."""
    if rng is None or isinstance(rng, (numbers.Integral, np.random.Generator, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def init_std(init, fan_in: int, fan_out: int) -> float:
    """Standard deviation for ``init``: "he" sqrt(2 / fan_in) (ReLU nets), "xavier" sqrt(2 / (fan_in + fan_out))."""
    if isinstance(init, str):
        if init == "he":
            return math.sqrt(2.0 / fan_in)
        if init == "xavier":
            return math.sqrt(2.0 / (fan_in + fan_out))
        raise ValueError(f"unknown init {init!r}; expected 'he', 'xavier' or a positive float std")
    if isinstance(init, bool) or not isinstance(init, numbers.Real) or not init > 0 or not math.isfinite(init):
        raise ValueError(f"init must be 'he', 'xavier' or a positive float std, got {init!r}")
    return float(init)


def normal_weights(shape: tuple, std: float, rng: np.random.Generator) -> np.ndarray:
    """Float64 weights drawn from N(0, std^2)."""
    return rng.standard_normal(shape) * std
