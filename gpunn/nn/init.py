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
    """A NumPy ``Generator`` from ``None`` (fresh entropy), an int seed, or a ``Generator``.

    Parameters
    ----------
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Where the random numbers come from.

    Returns
    -------
    numpy.random.Generator
        ``np.random.default_rng(rng)``: a Generator given is returned as it is.

    Raises
    ------
    TypeError
        If ``rng`` is none of those.
    """
    if rng is None or isinstance(rng, (numbers.Integral, np.random.Generator, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def init_std(init, fan_in: int, fan_out: int) -> float:
    """Standard deviation for ``init``: "he" sqrt(2 / fan_in) (ReLU nets), "xavier" sqrt(2 / (fan_in + fan_out)).

    Parameters
    ----------
    init : {"he", "xavier"} or float
        The rule, or the standard deviation itself (a positive, finite float).
    fan_in : int
        Inputs per output unit (a convolution's in_channels kh kw).
    fan_out : int
        Outputs per input unit (a convolution's out_channels kh kw).

    Returns
    -------
    float
        The standard deviation of the weights.

    Raises
    ------
    ValueError
        If ``init`` is another string, or not a positive finite number.

    Examples
    --------
    >>> from gpunn.nn.init import init_std
    >>> init_std("he", 50, 10), init_std("xavier", 25, 25), init_std(0.01, 50, 10)
    (0.2, 0.2, 0.01)
    """
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
    """Float64 weights drawn from N(0, std^2).

    Parameters
    ----------
    shape : tuple of int
        The weights' shape.
    std : float
        Their standard deviation.
    rng : numpy.random.Generator
        Where they come from (:func:`as_rng` makes one).

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``, on the host.
    """
    return rng.standard_normal(shape) * std
