"""Elementwise activation gates: y = f(x), and the local gradient that backward multiplies in.

Each gate shows its two rules in plain ``xp`` code: ``f`` (forward) and ``df`` (backward: the upstream
gradient times f'(x), from what forward saved). They are the definition: what runs where no fused kernel
does, and what the kernels are tested against. ``forward`` and ``backward`` are one call each to the ops
``activation`` and ``activation_backward``, which run a fused kernel (the same rule one element at a time,
``kernels/activations.py``, by the gate's ``code``) where one applies, else ``f`` and ``df``.

Most gates save their output: its sign (ReLU family), y (1 - y) (sigmoid) or 1 - y^2 (tanh) give f'.
GELU's f' needs the input, so it saves x (``backward_from = "input"``). Every gate here is registered
in :data:`ACTIVATIONS` (name -> gate), read by the layers, the classifiers and the command line; its
``init`` is the weight initialisation that suits it ("he" for the ReLU family).
"""

from __future__ import annotations

from ..devices import array_module
from ..kernels import activations as kernels
from ..kernels.activations import ACTIVATIONS
from .. import ops
from ..validation import check_number
from .module import Module

__all__ = ["ACTIVATIONS", "ELU", "GELU", "Activation", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Tanh",
           "activation_layer"]


class Activation(Module):
    """y = f(x) elementwise. Subclasses give ``name``, ``code``, ``f`` and ``df`` (and ``init``, ``constants``).

    A subclass that overrides :meth:`forward` or :meth:`backward` computes something of its own: it
    always runs its own code, and is never fused into the Linear before it.
    """

    name = "identity"
    code = kernels.IDENTITY
    init = "xavier"
    backward_from = "output"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            kernels.register(cls)

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = alpha

    @staticmethod
    def f(x, alpha):
        return x

    @staticmethod
    def df(dout, saved, alpha):
        return dout

    @staticmethod
    def constants(alpha) -> tuple:
        """The two numbers the kernels' rule reads (a, b): the gate's parameter where it has one."""
        return alpha, 0.0

    def forward(self, x):
        x = self._input(x)
        y = ops.activation(x, self.name, self.alpha)  # f(x): a fused kernel where one applies
        self._cache = y if self.backward_from == "output" else x
        return y

    def backward(self, dout, input_grad: bool = True):
        saved = self._saved()
        dout = self._upstream(dout, saved.shape)
        return ops.activation_backward(dout, saved, self.name, self.alpha)  # df(dout, saved)

    @property
    def fusable(self) -> bool:
        """True when this gate is exactly ``ops.activation(x, name)``: forward and backward are Activation's own."""
        cls = type(self)
        return cls.forward is Activation.forward and cls.backward is Activation.backward and self.name in ACTIVATIONS


class Identity(Activation):
    """x: no activation (the last affine layer's "activation")."""

    name = "identity"

    def __init__(self):
        super().__init__()


class ReLU(Activation):
    """max(0, x)."""

    name, code, init = "relu", kernels.RELU, "he"

    def __init__(self):
        super().__init__()

    @staticmethod
    def f(x, alpha):
        return array_module(x).maximum(x, 0)

    @staticmethod
    def df(dout, y, alpha):
        return dout * (y > 0)  # 1 where the output is positive, 0 elsewhere


class LeakyReLU(Activation):
    """x for x > 0, alpha x otherwise (alpha in [0, 1))."""

    name, code, init = "leaky_relu", kernels.LEAKY_RELU, "he"

    def __init__(self, alpha: float = 0.01):
        super().__init__(check_number("alpha", alpha, low=0, high=1, high_open=True))

    @staticmethod
    def f(x, alpha):
        return array_module(x).maximum(x, x * x.dtype.type(alpha))  # for 0 <= alpha < 1

    @staticmethod
    def df(dout, y, alpha):
        return array_module(dout).where(y > 0, dout, dout * dout.dtype.type(alpha))

    def extra_repr(self):
        return f"alpha={self.alpha}"


class ELU(Activation):
    """x for x > 0, alpha (e^x - 1) otherwise (alpha > 0)."""

    name, code, init = "elu", kernels.ELU, "he"

    def __init__(self, alpha: float = 1.0):
        super().__init__(check_number("alpha", alpha, low=0, low_open=True))

    @staticmethod
    def f(x, alpha):
        xp = array_module(x)
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * x.dtype.type(alpha))

    @staticmethod
    def df(dout, y, alpha):
        # for x <= 0, y = alpha (e^x - 1), so f'(x) = alpha e^x = y + alpha
        return array_module(dout).where(y > 0, dout, dout * (y + y.dtype.type(alpha)))

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(Activation):
    """1 / (1 + e^-x)."""

    name, code = "sigmoid", kernels.SIGMOID

    def __init__(self):
        super().__init__()

    @staticmethod
    def f(x, alpha):
        # the tanh form, tanh(x / 2) / 2 + 1/2, never overflows (1 / (1 + exp(-x)) does for large negative x);
        # each step in place on one buffer
        half = x.dtype.type(0.5)
        y = x * half
        array_module(x).tanh(y, out=y)
        y *= half
        y += half
        return y

    @staticmethod
    def df(dout, y, alpha):
        dx = 1 - y  # (1 - y) y dout, in place on one buffer
        dx *= y
        dx *= dout
        return dx


class Tanh(Activation):
    """tanh(x)."""

    name, code = "tanh", kernels.TANH

    def __init__(self):
        super().__init__()

    @staticmethod
    def f(x, alpha):
        return array_module(x).tanh(x)

    @staticmethod
    def df(dout, y, alpha):
        dx = y * y  # (1 - y^2) dout, in place on one buffer
        array_module(dout).subtract(1, dx, out=dx)
        dx *= dout
        return dx


class GELU(Activation):
    """x Phi(x), in the tanh form: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (PyTorch's approximate="tanh")."""

    name, code, init = "gelu", kernels.GELU, "he"
    backward_from = "input"  # f' needs x: it cannot be recovered from y

    C0, C1 = 0.7978845608028654, 0.044715  # sqrt(2 / pi), and the cubic's coefficient

    def __init__(self):
        super().__init__()

    @staticmethod
    def constants(alpha) -> tuple:
        return GELU.C0, GELU.C1

    @staticmethod
    def f(x, alpha):
        c0, c1, half = x.dtype.type(GELU.C0), x.dtype.type(GELU.C1), x.dtype.type(0.5)
        return half * x * (1 + array_module(x).tanh(c0 * (x + c1 * x * x * x)))

    @staticmethod
    def df(dout, x, alpha):
        # f'(x) = (1 + t) / 2 + x/2 (1 - t^2) c0 (1 + 3 c1 x^2), t = tanh(c0 (x + c1 x^3))
        c0, c1, half = x.dtype.type(GELU.C0), x.dtype.type(GELU.C1), x.dtype.type(0.5)
        t = array_module(x).tanh(c0 * (x + c1 * x * x * x))
        return dout * (half * (1 + t) + half * x * (1 - t * t) * c0 * (1 + 3 * c1 * x * x))


def activation_layer(name: str) -> Activation:
    """A fresh activation layer by name: a key of :data:`ACTIVATIONS` ("relu", "tanh", "gelu", ...)."""
    if name not in ACTIVATIONS or name == "identity":
        names = ", ".join(repr(n) for n in ACTIVATIONS if n != "identity")
        raise ValueError(f"unknown activation {name!r}; expected one of {names}")
    return ACTIVATIONS[name]()
