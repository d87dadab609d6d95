"""Dropout: inverted dropout, identity at evaluation time."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..validation import check_number
from .module import Module


class Dropout(Module):
    """Drops each unit with probability ``p`` in training and scales the rest by 1 / (1 - p).

    At evaluation (``eval()``) it passes its input through unchanged, so no rescaling
    is needed at test time. ``seed`` makes the masks reproducible; ``Module.seed``
    reseeds every dropout layer of a model, each with its own stream. Each mask is a
    counter-based hash of a 64-bit seed drawn on the host, so the same seed gives the
    same masks on the CPU and on a GPU, and drawing one costs no device round trip.
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        self.p = check_number("p", p, low=0, high=1, high_open=True)
        self._seed = seed
        self._rng = None
        self._first_row = 0  # where this process's rows start in the global batch (data-parallel training)

    def _rows_from(self, first_row: int) -> None:
        self._first_row = first_row

    def _reseed(self, seed: int) -> None:
        self._seed, self._rng = seed, None

    def _mask_seed(self) -> int:
        """The next mask's 64-bit seed, from a host generator made on first use."""
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed)
        return int(self._rng.integers(0, 2**64, dtype=np.uint64))

    def forward(self, x):
        x = self._input(x)
        if not self.training or self.p == 0:
            self._cache = ("identity", x.shape)
            return x
        seed, offset = self._mask_seed(), self._first_row * (x.size // x.shape[0])
        y, mask = ops.dropout_forward(x, self.p, seed, offset)
        self._cache = ("mask", mask)
        return y

    def backward(self, dout, input_grad: bool = True):
        how, value = self._saved()
        if how == "identity":
            return self._upstream(dout, value)
        return ops.dropout_backward(self._upstream(dout, value.shape), value)

    def extra_repr(self):
        return f"p={self.p}"
