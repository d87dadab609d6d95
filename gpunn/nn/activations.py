"""Elementwise activation gates: ReLU, LeakyReLU, ELU, Sigmoid, Tanh.

Each caches its output, from which its local gradient follows
(ReLU family: the output's sign; sigmoid: y (1 - y); tanh: 1 - y^2).
"""

from __future__ import annotations

from .. import ops
from ..validation import check_number
from .module import Module


class Activation(Module):
    """y = f(x) elementwise; ``kind`` names f in :mod:`gpunn.ops`.

    A subclass that overrides :meth:`forward` or :meth:`backward` computes something of
    its own: it always runs its own code, and is never fused into the Linear before it.
    """

    kind = "identity"

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        x = self._input(x)
        y = ops.activation(x, self.kind, self.alpha)
        self._cache = y
        return y

    def backward(self, dout, input_grad: bool = True):
        y = self._saved()
        dout = self._upstream(dout, y.shape)
        return ops.activation_backward(dout, y, self.kind, self.alpha)

    @property
    def fusable(self) -> bool:
        """True when this gate is exactly ``ops.activation(x, kind)``: forward and backward are Activation's own."""
        cls = type(self)
        return cls.forward is Activation.forward and cls.backward is Activation.backward and self.kind in ops.ACTIVATIONS


def activation_layer(name: str) -> Activation:
    """A fresh activation layer by name: "relu", "leaky_relu", "elu", "sigmoid" or "tanh"."""
    layers = {"relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "sigmoid": Sigmoid, "tanh": Tanh}
    if name not in layers:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(map(repr, layers))}")
    return layers[name]()


class ReLU(Activation):
    """max(0, x)."""

    kind = "relu"

    def __init__(self):
        super().__init__()


class LeakyReLU(Activation):
    """x for x > 0, alpha x otherwise (alpha in [0, 1))."""

    kind = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        super().__init__(check_number("alpha", alpha, low=0, high=1, high_open=True))

    def extra_repr(self):
        return f"alpha={self.alpha}"


class ELU(Activation):
    """x for x > 0, alpha (e^x - 1) otherwise (alpha > 0)."""

    kind = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(check_number("alpha", alpha, low=0, low_open=True))

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(Activation):
    """1 / (1 + e^-x)."""

    kind = "sigmoid"

    def __init__(self):
        super().__init__()


class Tanh(Activation):
    """tanh(x)."""

    kind = "tanh"

    def __init__(self):
        super().__init__()
