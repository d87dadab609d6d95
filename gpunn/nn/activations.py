"""Elementwise activation gates: y = f(x), and the local gradient that backward multiplies in.

Each gate is defined once, in its class, by two pairs of rules:

- ``f(x)`` and ``df(dout, saved)`` in plain ``xp`` code on whole arrays: what a student reads, what runs
  where no fused kernel does, and what the kernels are tested against;
- ``f_scalar(x, k)`` and ``df_scalar(g, s, k)``, the same rules for one element. The fused CPU and CUDA
  kernels (the gate alone, and fused into the affine layer's and the convolution's bias add) are made
  from them when the class is defined (``gpunn/kernels/elementwise.py``) and cached on disk. ``k``
  holds the rule's numbers in the array's dtype (``k.zero``, ``k.half``, ``k.one``, and those the gate
  lists in ``numbers``, e.g. ``k.alpha``), so a float32 kernel computes in float32 throughout.

``forward`` and ``backward`` are one call each to the ops ``activation`` and ``activation_backward``,
which pass the gate itself to its kernels. Most gates save their output: its sign (ReLU family),
y (1 - y) (sigmoid) or 1 - y^2 (tanh) give f'. GELU's and SiLU's f' need the input, so they save x
(``backward_from = "input"``). Every gate with a ``name`` is registered in :data:`ACTIVATIONS`
(name -> class), read by the classifiers and the command line; ``init`` is the weight initialisation
that suits it ("he" for the ReLU family).

A subclass that overrides ``forward`` or ``backward`` computes something of its own: it always runs its
own code and is never fused into the layer before it. A subclass that changes ``f`` or ``df`` without
its scalar twin runs its ``xp`` rules (no kernel would compute what it says).
"""

from __future__ import annotations

import math
from itertools import repeat

import numpy as np

from .. import ops
from ..devices import array_module
from ..kernels.elementwise import GateKernels, defines_its_rules
from ..validation import check_number
from .module import Module

__all__ = ["ACTIVATIONS", "ELU", "GELU", "Activation", "Identity", "LeakyReLU", "ReLU", "SiLU", "Sigmoid", "Tanh",
           "activation_layer"]

ACTIVATIONS: dict[str, type] = {}  # name -> gate class, filled as each gate is defined
# Defined by one class each, or the kernels (made from the scalar rules) would not compute what f and df say.
RULES_TOGETHER = (("f", "f_scalar", "df", "df_scalar"),)


class Activation(Module):
    """y = f(x) elementwise: the base of the activation gates (itself the identity).

    A subclass gives its rule twice: ``f`` and ``df`` in ``xp`` code on whole arrays (what a student
    reads, and what runs where no kernel does), and ``f_scalar`` and ``df_scalar`` for one element,
    from which its fused kernels are made when the class is defined. Forward computes
    ``y = f(x)`` and saves y (or x, see ``backward_from``); backward returns ``dx = df(dout, saved)``,
    the upstream gradient times f'(x). Input and output have the same shape, any shape with a
    non-empty first axis, in the layer's dtype (float32 unless moved with :meth:`~gpunn.nn.Module.to`).

    Attributes
    ----------
    name : str
        The gate's key in :data:`ACTIVATIONS` (a subclass with a ``name`` registers itself there).
    init : str
        The weight initialisation that suits the gate: "he" for the ReLU family, else "xavier".
    backward_from : {"output", "input"}
        What forward saves for ``df``: y (most gates) or x (where f' cannot be had from y: GELU, SiLU).
    numbers : tuple of str
        The gate's own numbers that the scalar rules read as ``k.<name>`` (LeakyReLU's ``alpha``).
    kernels : GateKernels or None
        The fused kernels made from the scalar rules; None where the class changes ``f`` or ``df``
        without its scalar twin (it then runs its ``xp`` rules).

    Examples
    --------
    A gate of one's own needs only its two ``xp`` rules; without scalar twins it has no kernels and
    runs them:

    >>> class Square(gn.nn.Activation):
    ...     backward_from = "input"  # f'(x) = 2 x needs x
    ...     def f(self, x):
    ...         return x * x
    ...     def df(self, dout, x):
    ...         return dout * 2 * x
    >>> square = Square()
    >>> square.forward(np.array([[-2.0, 0.5, 3.0]]))
    array([[4.  , 0.25, 9.  ]], dtype=float32)
    >>> square.backward(np.ones((1, 3)))
    array([[-4.,  1.,  6.]], dtype=float32)
    >>> square.kernels is None
    True
    """

    init = "xavier"
    backward_from = "output"  # what df reads: "output" (y) or "input" (x)
    numbers: tuple[str, ...] = ()  # the gate's own numbers the scalar rules read, as k.<name>
    xp_forward_on_cpu = False  # True where NumPy's SIMD math beats a Numba loop (tanh)
    kernels = None  # its fused kernels (GateKernels), made from its scalar rules

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.kernels = GateKernels(cls) if defines_its_rules(cls, RULES_TOGETHER, ("numbers",)) else None
        if "name" in cls.__dict__:
            ACTIVATIONS[cls.name] = cls

    # ------------------------------------------------------------------ the rules (identity here)
    def f(self, x):
        """y = f(x) on a whole array.

        Parameters
        ----------
        x : ndarray
            The input, a NumPy or CuPy array of any shape, float32 or float64.

        Returns
        -------
        ndarray
            f(x), the same shape, dtype and device as ``x``.
        """
        return x

    def df(self, dout, saved):
        """dout * f'(x): the gradient w.r.t. the input, from what forward saved.

        Parameters
        ----------
        dout : ndarray
            The upstream gradient, the output's shape and dtype.
        saved : ndarray
            What forward saved: y, or x where ``backward_from == "input"``. (A subclass names it
            after what it is, ``y`` or ``x``.)

        Returns
        -------
        ndarray
            dout * f'(x), the shape and dtype of ``dout``.
        """
        return dout

    @staticmethod
    def f_scalar(x, k):
        """f for one element: the rule the fused kernels are compiled from.

        Parameters
        ----------
        x : float
            One element of the input.
        k : namedtuple
            The numbers the rule uses, in x's dtype: ``k.zero``, ``k.half``, ``k.one`` and the
            gate's ``numbers`` (see :meth:`~gpunn.nn.Activation.kernel_numbers`). A float literal would pull a float32
            kernel into float64.

        Returns
        -------
        float
            f(x), in x's dtype.
        """
        return x

    @staticmethod
    def df_scalar(g, s, k):
        """g * f'(x) for one element, from the saved s: the rule the backward kernels are compiled from.

        Parameters
        ----------
        g : float
            One element of the upstream gradient.
        s : float
            The matching element of what forward saved (y, or x where ``backward_from == "input"``).
        k : namedtuple
            The numbers the rule uses, in g's dtype (as in :meth:`~gpunn.nn.Activation.f_scalar`).

        Returns
        -------
        float
            g * f'(x), in g's dtype.
        """
        return g

    # ------------------------------------------------------------------ the gate
    def forward(self, x):
        x = self._input(x)
        y = ops.activation(x, self)  # f(x): a fused kernel where one applies
        self._cache = y if self.backward_from == "output" else x
        return y

    def backward(self, dout, input_grad: bool = True):
        saved = self._saved()
        dout = self._upstream(dout, saved.shape)
        return ops.activation_backward(dout, saved, self)  # df(dout, saved)

    def kernel_numbers(self, dtype):
        """``k`` for this gate's kernels on arrays of ``dtype``: 0, 1/2, 1 and the gate's ``numbers``.

        Parameters
        ----------
        dtype : numpy.dtype or type
            The arrays' dtype (``x.dtype``, or ``np.float32``).

        Returns
        -------
        namedtuple
            ``zero``, ``half``, ``one`` and each of the gate's ``numbers``, as scalars of ``dtype``.

        Examples
        --------
        >>> k = gn.nn.LeakyReLU(alpha=0.1).kernel_numbers(np.dtype("float32"))
        >>> print(k.zero, k.half, k.one, k.alpha, k.alpha.dtype)
        0.0 0.5 1.0 0.1 float32
        """
        return self.kernels.numbers(np.dtype(dtype), tuple(map(getattr, repeat(self), self.numbers)))

    @property
    def fusable(self) -> bool:
        """True when this gate is exactly ``ops.activation(x, gate)``: forward and backward are Activation's own."""
        cls = type(self)
        return cls.forward is Activation.forward and cls.backward is Activation.backward and self.kernels is not None

    def extra_repr(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name in self.numbers if name in vars(self))


class Identity(Activation):
    """y = x: no activation (the last affine layer's "activation").

    Backward passes the upstream gradient through unchanged: ``dx = dout``.

    Examples
    --------
    >>> identity = gn.nn.Identity()
    >>> identity.forward(np.array([[-2.0, 0.5]]))
    array([[-2. ,  0.5]], dtype=float32)
    >>> identity.backward(np.array([[1.0, 3.0]]))
    array([[1., 3.]], dtype=float32)
    """

    name = "identity"


class ReLU(Activation):
    """max(0, x): the rectified linear unit.

    Forward ``y = max(0, x)``; backward ``dx = dout * (y > 0)``: the gradient passes where the output
    is positive and stops elsewhere. Saves y.

    Examples
    --------
    >>> relu = gn.nn.ReLU()
    >>> relu.forward(np.array([[-2.0, -0.5, 0.0, 1.5]]))
    array([[0. , 0. , 0. , 1.5]], dtype=float32)
    >>> relu.backward(np.ones((1, 4)))
    array([[0., 0., 0., 1.]], dtype=float32)
    """

    name, init = "relu", "he"

    def f(self, x):
        return array_module(x).maximum(x, 0)

    def df(self, dout, y):
        return dout * (y > 0)  # 1 where the output is positive, 0 elsewhere

    @staticmethod
    def f_scalar(x, k):
        return k.zero if x <= k.zero else x  # NaN stays NaN, -inf becomes 0, as np.maximum(x, 0)

    @staticmethod
    def df_scalar(g, y, k):
        return g * (k.one if y > k.zero else k.zero)  # as dout * (y > 0): NaN * 0 stays NaN


class LeakyReLU(Activation):
    """x for x > 0, alpha x otherwise: a ReLU that lets a little gradient through for x <= 0.

    Forward ``y = max(x, alpha x)``; backward ``dx = dout`` where y > 0, ``alpha dout`` elsewhere.
    Saves y.

    Parameters
    ----------
    alpha : float, default=0.01
        The slope for x <= 0, in [0, 1).

    Raises
    ------
    ValueError
        If ``alpha`` is outside [0, 1).
    TypeError
        If ``alpha`` is not a real number.

    Examples
    --------
    >>> leaky = gn.nn.LeakyReLU(alpha=0.1)
    >>> leaky
    LeakyReLU(alpha=0.1)
    >>> leaky.forward(np.array([[-2.0, -0.5, 0.0, 1.5]]))
    array([[-0.2 , -0.05,  0.  ,  1.5 ]], dtype=float32)
    >>> leaky.backward(np.ones((1, 4)))
    array([[0.1, 0.1, 0.1, 1. ]], dtype=float32)
    """

    name, init, numbers = "leaky_relu", "he", ("alpha",)

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = check_number("alpha", alpha, low=0, high=1, high_open=True)

    def f(self, x):
        return array_module(x).maximum(x, x * x.dtype.type(self.alpha))  # for 0 <= alpha < 1

    def df(self, dout, y):
        return array_module(dout).where(y > 0, dout, dout * dout.dtype.type(self.alpha))

    @staticmethod
    def f_scalar(x, k):
        return x if x > k.zero else x * k.alpha

    @staticmethod
    def df_scalar(g, y, k):
        return g if y > k.zero else g * k.alpha


class ELU(Activation):
    """x for x > 0, alpha (e^x - 1) otherwise: the exponential linear unit.

    Forward ``y = x`` for x > 0, ``alpha (e^x - 1)`` otherwise; backward ``dx = dout`` where y > 0,
    ``dout (y + alpha)`` elsewhere (for x <= 0, f'(x) = alpha e^x = y + alpha). Saves y.

    Parameters
    ----------
    alpha : float, default=1.0
        The value the output approaches as x -> -inf is -alpha; must be > 0.

    Raises
    ------
    ValueError
        If ``alpha`` is not > 0.
    TypeError
        If ``alpha`` is not a real number.

    Examples
    --------
    >>> elu = gn.nn.ELU()
    >>> elu.forward(np.array([[-2.0, -0.5, 0.0, 1.5]]))
    array([[-0.8647, -0.3935,  0.    ,  1.5   ]], dtype=float32)
    >>> elu.backward(np.ones((1, 4)))
    array([[0.1353, 0.6065, 1.    , 1.    ]], dtype=float32)
    """

    name, init, numbers = "elu", "he", ("alpha",)

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = check_number("alpha", alpha, low=0, low_open=True)

    def f(self, x):
        xp = array_module(x)
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * x.dtype.type(self.alpha))

    def df(self, dout, y):
        # for x <= 0, y = alpha (e^x - 1), so f'(x) = alpha e^x = y + alpha
        return array_module(dout).where(y > 0, dout, dout * (y + y.dtype.type(self.alpha)))

    @staticmethod
    def f_scalar(x, k):
        return x if x > k.zero else math.expm1(x) * k.alpha

    @staticmethod
    def df_scalar(g, y, k):
        return g if y > k.zero else g * (y + k.alpha)


class Sigmoid(Activation):
    """1 / (1 + e^-x): the logistic sigmoid, squashing x into (0, 1).

    Forward ``y = 1 / (1 + e^-x)``, computed as tanh(x / 2) / 2 + 1/2 (the same value, and no
    overflow for large negative x); backward ``dx = dout y (1 - y)``. Saves y.

    Examples
    --------
    >>> sigmoid = gn.nn.Sigmoid()
    >>> sigmoid.forward(np.array([[-2.0, 0.0, 1.5]]))
    array([[0.1192, 0.5   , 0.8176]], dtype=float32)
    >>> sigmoid.backward(np.ones((1, 3)))
    array([[0.105 , 0.25  , 0.1491]], dtype=float32)
    """

    name = "sigmoid"
    xp_forward_on_cpu = True

    def f(self, x):
        # the tanh form, tanh(x / 2) / 2 + 1/2, never overflows (1 / (1 + exp(-x)) does for large negative x);
        # each step in place on one buffer
        half = x.dtype.type(0.5)
        y = x * half
        array_module(x).tanh(y, out=y)
        y *= half
        y += half
        return y

    def df(self, dout, y):
        dx = 1 - y  # (1 - y) y dout, in place on one buffer
        dx *= y
        dx *= dout
        return dx

    @staticmethod
    def f_scalar(x, k):
        return k.half * math.tanh(x * k.half) + k.half

    @staticmethod
    def df_scalar(g, y, k):
        return (k.one - y) * y * g  # the xp rule's order of products


class Tanh(Activation):
    """tanh(x): the hyperbolic tangent, squashing x into (-1, 1).

    Forward ``y = tanh(x)``; backward ``dx = dout (1 - y^2)``. Saves y.

    Examples
    --------
    >>> tanh = gn.nn.Tanh()
    >>> tanh.forward(np.array([[-2.0, 0.0, 1.5]]))
    array([[-0.964 ,  0.    ,  0.9051]], dtype=float32)
    >>> tanh.backward(np.ones((1, 3)))
    array([[0.0707, 1.    , 0.1807]], dtype=float32)
    """

    name = "tanh"
    xp_forward_on_cpu = True

    def f(self, x):
        return array_module(x).tanh(x)

    def df(self, dout, y):
        dx = y * y  # (1 - y^2) dout, in place on one buffer
        array_module(dout).subtract(1, dx, out=dx)
        dx *= dout
        return dx

    @staticmethod
    def f_scalar(x, k):
        return math.tanh(x)

    @staticmethod
    def df_scalar(g, y, k):
        return g * (k.one - y * y)


class GELU(Activation):
    """x Phi(x), in the tanh form: x/2 (1 + tanh(c0 (x + c1 x^3))), c0 = sqrt(2/pi), c1 = 0.044715.

    PyTorch's ``approximate="tanh"``. Backward ``dx = dout f'(x)`` with
    f'(x) = (1 + t) / 2 + x/2 (1 - t^2) c0 (1 + 3 c1 x^2), t = tanh(c0 (x + c1 x^3)): it needs x, so
    forward saves x.

    Examples
    --------
    >>> gelu = gn.nn.GELU()
    >>> gelu.forward(np.array([[-2.0, -0.5, 0.0, 1.5]]))
    array([[-0.0454, -0.1543,  0.    ,  1.3996]], dtype=float32)
    >>> gelu.backward(np.ones((1, 4)))
    array([[-0.0861,  0.1326,  0.5   ,  1.1277]], dtype=float32)
    """

    name, init, numbers = "gelu", "he", ("c0", "c1")
    backward_from = "input"  # f' needs x: it cannot be recovered from y
    c0, c1 = 0.7978845608028654, 0.044715  # sqrt(2 / pi), and the cubic's coefficient

    def f(self, x):
        c0, c1, half = x.dtype.type(self.c0), x.dtype.type(self.c1), x.dtype.type(0.5)
        return half * x * (1 + array_module(x).tanh(c0 * (x + c1 * x * x * x)))

    def df(self, dout, x):
        # f'(x) = (1 + t) / 2 + x/2 (1 - t^2) c0 (1 + 3 c1 x^2), t = tanh(c0 (x + c1 x^3))
        c0, c1, half = x.dtype.type(self.c0), x.dtype.type(self.c1), x.dtype.type(0.5)
        t = array_module(x).tanh(c0 * (x + c1 * x * x * x))
        return dout * (half * (1 + t) + half * x * (1 - t * t) * c0 * (1 + 3 * c1 * x * x))

    @staticmethod
    def f_scalar(x, k):
        return k.half * x * (k.one + math.tanh(k.c0 * (x + k.c1 * x * x * x)))

    @staticmethod
    def df_scalar(g, x, k):
        t = math.tanh(k.c0 * (x + k.c1 * x * x * x))
        return g * (k.half * (k.one + t) + k.half * x * (k.one - t * t) * k.c0 * (k.one + (k.c1 + k.c1 + k.c1) * x * x))


class SiLU(Activation):
    """x sigmoid(x) (also called swish): PyTorch's ``nn.SiLU``.

    Forward ``y = x s`` with s = sigmoid(x); backward ``dx = dout s (1 + x (1 - s))``: it needs x,
    so forward saves x.

    Examples
    --------
    >>> silu = gn.nn.SiLU()
    >>> silu.forward(np.array([[-2.0, -0.5, 0.0, 1.5]]))
    array([[-0.2384, -0.1888,  0.    ,  1.2264]], dtype=float32)
    >>> silu.backward(np.ones((1, 4)))
    array([[-0.0908,  0.26  ,  0.5   ,  1.0413]], dtype=float32)
    """

    name, init = "silu", "he"
    backward_from = "input"  # f' needs x

    def f(self, x):
        half = x.dtype.type(0.5)
        return x * (half * array_module(x).tanh(half * x) + half)  # sigmoid in its overflow-free tanh form

    def df(self, dout, x):
        # f'(x) = s + x s (1 - s) = s (1 + x (1 - s)), s = sigmoid(x)
        half = x.dtype.type(0.5)
        s = half * array_module(x).tanh(half * x) + half
        return dout * s * (1 + x * (1 - s))

    @staticmethod
    def f_scalar(x, k):
        return x * (k.half * math.tanh(x * k.half) + k.half)

    @staticmethod
    def df_scalar(g, x, k):
        s = k.half * math.tanh(x * k.half) + k.half
        return g * s * (k.one + x * (k.one - s))


def activation_layer(name: str) -> Activation:
    """A fresh activation layer by name: a key of :data:`ACTIVATIONS` ("relu", "tanh", "gelu", ...).

    Parameters
    ----------
    name : str
        The gate's name: "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", or that of
        any gate defined since. "identity" is not an activation to choose.

    Returns
    -------
    Activation
        A new gate of that class, made with its defaults.

    Raises
    ------
    ValueError
        If ``name`` is not a registered activation (or is "identity").

    Examples
    --------
    >>> gn.nn.activation_layer("tanh")
    Tanh()
    >>> sorted(gn.nn.ACTIVATIONS)
    ['elu', 'gelu', 'identity', 'leaky_relu', 'relu', 'sigmoid', 'silu', 'tanh']
    """
    if name not in ACTIVATIONS or name == "identity":
        names = ", ".join(repr(n) for n in ACTIVATIONS if n != "identity")
        raise ValueError(f"unknown activation {name!r}; expected one of {names}")
    return ACTIVATIONS[name]()
