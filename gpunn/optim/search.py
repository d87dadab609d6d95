"""Gradient-free baselines for teaching: random search and random local search.

Both evaluate a ``closure`` that returns the loss at the parameters' current
values, keep the best parameters seen, and leave the parameters at that best point
after every :meth:`step`. They show why following the gradient wins.
"""

from __future__ import annotations

import math

from ..devices import device_of
from ..nn.parameter import Parameter
from ..validation import check_number


class _Search:
    def __init__(self, params, scale: float, seed=None):
        params = list(params)
        if not params or not all(isinstance(p, Parameter) for p in params):
            raise TypeError("params must be a non-empty iterable of Parameters, e.g. model.parameters()")
        self.params = params
        self.scale = check_number("scale", scale, low=0, low_open=True)
        self.seed = seed
        self.best_loss = math.inf
        self._best = None
        self._rng = None

    def _noise(self, p):
        """Standard normal noise shaped like ``p``, from a generator on ``p``'s device."""
        if self._rng is None:
            self._rng = device_of(p.data).xp.random.default_rng(self.seed)
        return self._rng.standard_normal(p.shape, dtype=p.dtype)

    def _propose(self, p, best):
        raise NotImplementedError

    def step(self, closure) -> float:
        """Try one candidate; keep it if ``closure()`` returns a lower loss. Returns the best loss so far.

        The first step first evaluates the parameters as they are. After every step the parameters
        hold the best point seen.

        Parameters
        ----------
        closure : callable
            ``closure() -> float``: the loss at the parameters' current values (no gradient needed).

        Returns
        -------
        float
            The best loss so far.

        Raises
        ------
        ValueError
            If ``closure`` returns NaN, or infinity at the starting point.
        """
        if self._best is None:
            self._best = [p.data.copy() for p in self.params]
            self.best_loss = _finite_loss(closure())
        for p, best in zip(self.params, self._best):
            p.data = self._propose(p, best)
        loss = _finite_loss(closure(), allow_inf=True)
        if loss < self.best_loss:
            self.best_loss, self._best = loss, [p.data.copy() for p in self.params]
        else:
            for p, best in zip(self.params, self._best):
                p.data = best.copy()
        return self.best_loss


def _finite_loss(value, allow_inf: bool = False) -> float:
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"closure must return a finite loss, got {v}")
    return v


class RandomSearch(_Search):
    """Strategy 1: draw every parameter afresh from N(0, scale^2) and keep the best draw.

    cs231n's first strategy, to compare with following the gradient: each :meth:`step` tries one
    random point anywhere, and keeps it if its loss is lower than the best so far.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to search over, e.g. ``model.parameters()``.
    scale : float
        The standard deviation of each draw, > 0.
    seed : None or int, default=None
        The seed of the noise (drawn on the parameters' device); None for fresh entropy.

    Attributes
    ----------
    best_loss : float
        The lowest loss seen so far (inf before the first step).

    Raises
    ------
    TypeError
        If ``params`` is not a non-empty iterable of Parameters, or ``scale`` is not a number.
    ValueError
        If ``scale`` is not > 0.

    Examples
    --------
    Minimise ||w - (1, -1)||^2 from w = 0, where the loss is 2:

    >>> w = gn.nn.Parameter(np.zeros(2, np.float32))
    >>> def closure():
    ...     return float(((w.data - np.array([1.0, -1.0])) ** 2).sum())
    >>> search = gn.optim.RandomSearch([w], scale=1.0, seed=0)
    >>> for _ in range(50):
    ...     best = search.step(closure)
    >>> bool(best < 2.0), best == closure()  # better than the start; w holds the best draw
    (True, True)
    """

    def _propose(self, p, best):
        return self._noise(p) * p.dtype.type(self.scale)


class RandomLocalSearch(_Search):
    """Strategy 2: step from the best point by N(0, scale^2) noise; keep the step if the loss drops.

    cs231n's second strategy: a random walk that only goes downhill. Each :meth:`step` tries one
    random step from the best point so far.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to search over, e.g. ``model.parameters()``.
    scale : float
        The standard deviation of each step, > 0.
    seed : None or int, default=None
        The seed of the noise (drawn on the parameters' device); None for fresh entropy.

    Attributes
    ----------
    best_loss : float
        The lowest loss seen so far (inf before the first step).

    Raises
    ------
    TypeError
        If ``params`` is not a non-empty iterable of Parameters, or ``scale`` is not a number.
    ValueError
        If ``scale`` is not > 0.

    Examples
    --------
    >>> w = gn.nn.Parameter(np.zeros(2, np.float32))
    >>> def closure():
    ...     return float(((w.data - np.array([1.0, -1.0])) ** 2).sum())
    >>> search = gn.optim.RandomLocalSearch([w], scale=0.5, seed=0)
    >>> for _ in range(50):
    ...     best = search.step(closure)
    >>> bool(best < 2.0), best == closure()
    (True, True)
    """

    def _propose(self, p, best):
        return best + self._noise(p) * p.dtype.type(self.scale)
