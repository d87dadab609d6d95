"""Parameter: a trainable array and the gradient accumulated into it."""

from __future__ import annotations

from ..devices import ArrayHolder, device_of


class Parameter(ArrayHolder):
    """A trainable array ``data`` with its gradient ``grad`` (``None`` until a backward pass).

    ``decay`` says whether weight decay (L2 regularization) applies to it: true for
    weight matrices, false for biases and normalisation scales/shifts.
    """

    __slots__ = ("data", "grad", "decay")

    def __init__(self, data, decay: bool = True):
        self.data = data
        self.grad = None
        self.decay = bool(decay)

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    def accumulate(self, g) -> None:
        """Add ``g`` into ``grad``; the first gradient since :meth:`zero_grad` is taken as it is (no copy)."""
        if self.grad is None:
            self.grad = g
        else:
            self.grad += g

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device})"
