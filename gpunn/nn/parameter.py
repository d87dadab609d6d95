"""Parameter: a trainable array and the gradient accumulated into it."""

from __future__ import annotations

from ..devices import ArrayHolder, device_of


class Parameter(ArrayHolder):
    """A trainable array ``data`` with its gradient ``grad`` (``None`` until a backward pass).

    ``decay`` says whether weight decay (L2 regularization) applies to it: true for
    weight matrices, false for biases and normalisation scales/shifts.

    In mixed precision (:meth:`gpunn.nn.Module.mixed_precision`) ``master`` holds the float32 weights, the
    truth that the optimizer updates, checkpoints save and training returns to, and ``data`` is their
    float16 copy that the layer computes with (and ``grad`` its float16 gradient). Otherwise ``master`` is
    None. :attr:`weights` is whichever is the truth.
    """

    __slots__ = ("data", "grad", "decay", "master")

    def __init__(self, data, decay: bool = True):
        self.data = data
        self.grad = None
        self.decay = bool(decay)
        self.master = None

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    @property
    def weights(self):
        """The weights themselves: the float32 ``master`` in mixed precision, else ``data``."""
        return self.data if self.master is None else self.master

    def assign(self, value) -> None:
        """Make ``value`` (an array of the weights' dtype, on their device) the weights: in mixed precision the
        master, and ``data`` its float16 copy."""
        if self.master is None:
            self.data = value
        else:
            self.master, self.data = value, value.astype(self.data.dtype)

    def accumulate(self, g) -> None:
        """Add ``g`` into ``grad``; the first gradient since :meth:`zero_grad` is taken as it is (no copy)."""
        if self.grad is None:
            self.grad = g
        else:
            self.grad += g

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self):
        mixed = "" if self.master is None else f", master={self.master.dtype}"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{mixed}, device={self.device})"
