"""Dropout: inverted dropout, identity at evaluation time."""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .module import Module


class Dropout(Module):
    """Drops each unit with probability ``p`` in training and scales the rest by 1 / (1 - p).

    At evaluation (``eval()``) it passes its input through unchanged, so no rescaling
    is needed at test time. ``seed`` makes the masks reproducible; ``Module.seed``
    reseeds every dropout layer of a model, each with its own stream.
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        self.p = check_number("p", p, low=0, high=1, high_open=True)
        self._seed = seed
        self._rng = None

    def _reseed(self, seed: int) -> None:
        self._seed, self._rng = seed, None

    def _moved(self) -> None:
        self._rng = None  # the next mask comes from a generator on the new device

    @property
    def rng(self):
        """This layer's random generator, in its device's namespace (made on first use)."""
        if self._rng is None:
            self._rng = self.device.xp.random.default_rng(self._seed)
        return self._rng

    def forward(self, x):
        x = self._input(x)
        if not self.training or self.p == 0:
            self._cache = ("identity", x.shape)
            return x
        y, mask = ops.dropout_forward(x, self.p, self.rng)
        self._cache = ("mask", mask)
        return y

    def backward(self, dout, input_grad: bool = True):
        how, value = self._saved()
        if how == "identity":
            return self._upstream(dout, value)
        return ops.dropout_backward(self._upstream(dout, value.shape), value)

    def extra_repr(self):
        return f"p={self.p}"
