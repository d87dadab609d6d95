"""Autograd: expressions built of gates, differentiated gate by gate (the cs231n computational graph).

    from gpunn import autograd as ag
    x, y, z = ag.tensor(-2.0, name="x"), ag.tensor(5.0, name="y"), ag.tensor(-4.0, name="z")
    f = (x + y) * z          # f.data == -12
    f.backward()             # x.grad == -4, y.grad == -4, z.grad == 3
    ag.draw(f, "graph.svg")  # every edge with its value (above) and gradient (below)

Each gate is a small class: ``forward`` computes its output from its input arrays and keeps
what its local gradient needs; ``backward`` turns the upstream gradient into one gradient
per input, upstream times local. Calling a gate records its inputs, a weak reference to
its output (so the graph holds no reference cycle) and a generation number, one more than
its newest input's. ``Tensor.backward`` visits the gates newest generation first, so a
tensor's gradient is complete (its branches summed) before it flows further back. Gates
see plain ``xp`` arrays, NumPy or CuPy alike, and never ask which.

Broadcasting is undone in one place, :func:`sum_to`: the gradient of an input that was
broadcast is the sum over its copies. ``with ag.no_grad():`` computes without recording.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import numbers
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np

from .devices import DEFAULT_DTYPE, FLOAT_DTYPES, array_module, as_float_dtype, device_of
from .devices import device as make_device

__all__ = [
    "Tensor", "Gate", "tensor", "no_grad", "sum_to", "exp", "log", "maximum", "relu", "sigmoid", "tanh",
    "jacobian", "numerical_jacobian", "to_dot", "draw",
]

_RECORDING = [True]


@contextlib.contextmanager
def no_grad():
    """Within the block gates compute values but record nothing: no graph, no backward."""
    previous, _RECORDING[0] = _RECORDING[0], False
    try:
        yield
    finally:
        _RECORDING[0] = previous


# --------------------------------------------------------------------------- the tensor


class Tensor:
    """A value in an expression: ``data`` (an ``xp`` array), ``grad`` (same shape, after backward).

    ``creator`` is the gate that produced it (``None`` for an input); ``generation`` its
    depth in the graph. Build one with :func:`tensor`; operators and the gate functions
    build the rest. ``requires_grad=False`` marks a constant: no gradient is kept for it.
    """

    __array_priority__ = 1000  # a NumPy array or scalar on the left defers to our operators

    def __init__(self, data, name: str | None = None, requires_grad: bool = True):
        self.data = data
        self.grad = None
        self.name = name
        self.requires_grad = bool(requires_grad)
        self.creator: Gate | None = None
        self.generation = 0

    # ------------------------------------------------------------------ what it is
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    def item(self) -> float:
        return float(self.data.item())

    def __len__(self):
        return len(self.data)

    def __iter__(self):  # rows as tensors (x, y = t), each through the slicing gate
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        name = f"{self.name}=" if self.name else ""
        body = _brief(self.data)
        grad = "" if self.grad is None else f", grad={_brief(self.grad)}"
        via = "" if self.creator is None else f", by {self.creator.label}"
        return f"Tensor({name}{body}{grad}{via})"

    # ------------------------------------------------------------------ backward
    def backward(self, grad=None) -> None:
        """Backpropagate from this tensor, adding d(this)/d(t) into ``t.grad`` for every ``t`` it depends on.

        ``grad``: the upstream gradient, this tensor's shape; ``None`` means 1, for a
        single-element output only. Gradients accumulate: a second call adds to them.
        """
        xp = array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(f"backward() on a non-scalar output of shape {self.shape} needs an upstream "
                                 f"gradient of that shape: out.backward(grad)")
            grad = xp.ones_like(self.data)
        else:
            grad = _upstream(grad, self)
        this_pass = {id(self): grad}  # gradients of this pass only: earlier passes' .grad never flows again
        reached = {id(self): self}
        heap, queued, order = [], set(), itertools.count()

        def enqueue(gate):
            if gate is not None and id(gate) not in queued:
                queued.add(id(gate))
                heapq.heappush(heap, (-gate.generation, next(order), gate))

        enqueue(self.creator)
        while heap:
            gate = heapq.heappop(heap)[2]
            gy = this_pass[id(gate.output())]  # complete: every consumer has a later generation
            for i, (t, gx) in enumerate(zip(gate.inputs, gate.backward(gy))):
                if not t.requires_grad:
                    continue
                gx = sum_to(gx, t.shape).astype(t.dtype, copy=False)
                gate.input_grads[i] = gx if gate.input_grads[i] is None else gate.input_grads[i] + gx
                key = id(t)
                this_pass[key] = gx if key not in this_pass else this_pass[key] + gx  # a branch sums
                reached[key] = t
                enqueue(t.creator)
        for key, t in reached.items():
            g = this_pass[key]
            t.grad = g.copy() if t.grad is None else t.grad + g  # a copy: gates hand one array to several inputs

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> "Tensor":
        """The same values as a constant: no gradient flows through it."""
        return Tensor(self.data, self.name, requires_grad=False)

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return Add()(self, other)

    def __radd__(self, other):
        return Add()(other, self)

    def __sub__(self, other):
        return Sub()(self, other)

    def __rsub__(self, other):
        return Sub()(other, self)

    def __mul__(self, other):
        return Mul()(self, other)

    def __rmul__(self, other):
        return Mul()(other, self)

    def __truediv__(self, other):
        return Div()(self, other)

    def __rtruediv__(self, other):
        return Div()(other, self)

    def __neg__(self):
        return Neg()(self)

    def __pow__(self, p):
        return Pow(p)(self)

    def __matmul__(self, other):
        return MatMul()(self, other)

    def __rmatmul__(self, other):
        return MatMul()(other, self)

    def __getitem__(self, key):
        return GetItem(key)(self)

    def sum(self, axis=None, keepdims: bool = False):
        return Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims: bool = False):
        return Mean(axis, keepdims)(self)

    def max(self, axis=None, keepdims: bool = False):
        return Max(axis, keepdims)(self)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape(tuple(shape))(self)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Transpose(tuple(axes) or None)(self)

    @property
    def T(self):
        return Transpose(None)(self)


def tensor(value, device=None, dtype=None, name: str | None = None, requires_grad: bool = True) -> Tensor:
    """A :class:`Tensor` holding ``value`` (a number, list, NumPy or CuPy array) as a float array.

    ``device``: ``None`` keeps the value where it is (numbers and lists: the CPU); otherwise
    ``"cpu"``, ``"cuda"``, ... ``dtype``: float32 or float64; ``None`` keeps a float array's
    dtype and makes anything else float32. A float array already in place is wrapped, not copied.
    """
    if isinstance(value, Tensor):
        value = value.data
    src = device_of(value)
    dev = src if device is None else make_device(device)
    if src.type != "cpu" and src != dev:
        raise ValueError(f"tensor value is on {src}, not on {dev}; move it first (gn.to_numpy, or cupy.asarray)")
    if dtype is None:
        own = getattr(value, "dtype", None)  # (not `in FLOAT_DTYPES` directly: np.dtype(None) is float64)
        dtype = own if own is not None and own in FLOAT_DTYPES else DEFAULT_DTYPE
    dtype = as_float_dtype(dtype)
    if getattr(value, "dtype", None) is not None and value.dtype.kind not in "biuf":
        raise TypeError(f"tensor value must hold numbers, got dtype {value.dtype}")
    try:
        data = dev.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise TypeError(f"tensor value must be numbers or an array of numbers, got {type(value).__name__} ({e})") from None
    return Tensor(data, name, requires_grad)


def _constant(value, like: Tensor) -> Tensor:
    """A number or array in an expression with ``like``: a constant of ``like``'s dtype on its device."""
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) or hasattr(value, "shape")
                                                 or isinstance(value, (list, tuple))):
        raise TypeError(f"cannot use a {type(value).__name__} in an expression with a Tensor; expected a number, "
                        "an array or a Tensor")
    return tensor(value, device=like.device, dtype=like.dtype, requires_grad=False)


def _upstream(grad, out: Tensor):
    """An upstream gradient for ``out``: its shape, its device, its dtype."""
    grad = grad.data if isinstance(grad, Tensor) else grad
    src = device_of(grad)
    if src.type != "cpu" and src != out.device:
        raise ValueError(f"backward(grad): grad is on {src}, the output on {out.device}")
    grad = out.device.asarray(grad, dtype=out.dtype)
    if tuple(grad.shape) != out.shape:
        raise ValueError(f"backward(grad): grad has shape {tuple(grad.shape)}, the output has shape {out.shape}")
    return grad


def sum_to(g, shape: tuple):
    """``g`` summed down to ``shape``: the gradient of a broadcast input is the sum over its copies."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)  # broadcasting added these leading axes
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


# --------------------------------------------------------------------------- the gate


class Gate:
    """Base of the gates: ``forward(*arrays) -> array`` and ``backward(gy) -> one gradient per input``.

    ``backward`` may return gradients in the broadcast shape; :func:`sum_to` brings them
    back to each input's shape. ``label`` names the gate in drawings and error messages.
    """

    label = "?"

    def __call__(self, *inputs) -> Tensor:
        first = next((x for x in inputs if isinstance(x, Tensor)), None)
        if first is None:  # a gate called on plain numbers or arrays: constants where they are
            first = tensor(inputs[0], requires_grad=False)
        tensors = [x if isinstance(x, Tensor) else _constant(x, first) for x in inputs]
        devices = [t.device for t in tensors]
        if any(d != devices[0] for d in devices):
            where = ", ".join(f"{d} (shape {t.shape})" for d, t in zip(devices, tensors))
            raise ValueError(f"'{self.label}' gate: inputs on different devices: {where}; move them to one device first")
        try:
            y = self.forward(*[t.data for t in tensors])
        except (ValueError, IndexError, TypeError) as e:
            shapes = " and ".join(str(t.shape) for t in tensors)
            raise ValueError(f"'{self.label}' gate cannot take inputs of shape {shapes}: {e}") from None
        out = Tensor(y, requires_grad=any(t.requires_grad for t in tensors))
        if _RECORDING[0] and out.requires_grad:
            self.inputs = tensors
            self.input_grads = [None] * len(tensors)  # what this gate sent back to each input (for drawings)
            self.output = weakref.ref(out)
            self.generation = max(t.generation for t in tensors)
            out.creator, out.generation = self, self.generation + 1
        return out

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}('{self.label}')"


class Add(Gate):
    """x + y. Add distributes: each input gets the upstream gradient as it is."""

    label = "+"

    def forward(self, x, y):
        return x + y

    def backward(self, gy):
        return gy, gy


class Sub(Gate):
    """x - y: the upstream gradient to x, its negative to y."""

    label = "-"

    def forward(self, x, y):
        return x - y

    def backward(self, gy):
        return gy, -gy


class Neg(Gate):
    """-x."""

    label = "neg"

    def forward(self, x):
        return -x

    def backward(self, gy):
        return (-gy,)


class Mul(Gate):
    """x * y. Multiply switches: each input's gradient is the upstream times the other input."""

    label = "*"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, gy):
        return gy * self.y, gy * self.x


class Div(Gate):
    """x / y: d/dx = 1 / y, d/dy = -x / y^2."""

    label = "/"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, gy):
        return gy / self.y, -gy * self.x / (self.y * self.y)


class Pow(Gate):
    """x ** p for a number p: d/dx = p x^(p-1)."""

    def __init__(self, p):
        if isinstance(p, Tensor) or isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"'**' takes a number as exponent, got {type(p).__name__}")
        self.p = float(p)
        self.label = f"**{p:g}"

    def forward(self, x):
        self.x = x
        return x ** x.dtype.type(self.p)

    def backward(self, gy):
        return (gy * self.x.dtype.type(self.p) * self.x ** self.x.dtype.type(self.p - 1),)


class MatMul(Gate):
    """x @ w: d/dx = gy @ w^T, d/dw = x^T @ gy (1-D operands act as a row and a column)."""

    label = "@"

    def forward(self, x, w):
        self.x, self.w = x, w
        return x @ w

    def backward(self, gy):
        x = self.x[None, :] if self.x.ndim == 1 else self.x
        w = self.w[:, None] if self.w.ndim == 1 else self.w
        g = gy.reshape(x.shape[:-1] + w.shape[-1:]) if self.x.ndim == 1 or self.w.ndim == 1 else gy
        gx = (g @ w.swapaxes(-1, -2)).reshape(self.x.shape) if self.x.ndim == 1 else g @ w.swapaxes(-1, -2)
        gw = (x.swapaxes(-1, -2) @ g).reshape(self.w.shape) if self.w.ndim == 1 else x.swapaxes(-1, -2) @ g
        return gx, gw


class Exp(Gate):
    """e^x: its own derivative, so backward reuses the output."""

    label = "exp"

    def forward(self, x):
        self.y = array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return (gy * self.y,)


class Log(Gate):
    """log x: d/dx = 1 / x."""

    label = "log"

    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, gy):
        return (gy / self.x,)


class Maximum(Gate):
    """max(x, y) elementwise. Max routes: the whole upstream gradient goes to the larger input (x on ties)."""

    label = "max"

    def forward(self, x, y):
        xp = array_module(x)
        self.x_wins = x >= y
        return xp.maximum(x, y)

    def backward(self, gy):
        xp = array_module(gy)
        zero = gy.dtype.type(0)
        return xp.where(self.x_wins, gy, zero), xp.where(self.x_wins, zero, gy)


class ReLU(Gate):
    """max(0, x): the gradient passes where x > 0 and stops elsewhere."""

    label = "relu"

    def forward(self, x):
        xp = array_module(x)
        self.passes = x > 0
        return xp.where(self.passes, x, x.dtype.type(0))

    def backward(self, gy):
        return (array_module(gy).where(self.passes, gy, gy.dtype.type(0)),)


class Sigmoid(Gate):
    """1 / (1 + e^-x): d/dx = y (1 - y), from the output."""

    label = "sigmoid"

    def forward(self, x):
        half = x.dtype.type(0.5)
        self.y = half * array_module(x).tanh(half * x) + half  # the tanh form never overflows
        return self.y

    def backward(self, gy):
        return (gy * self.y * (1 - self.y),)


class Tanh(Gate):
    """tanh x: d/dx = 1 - y^2, from the output."""

    label = "tanh"

    def forward(self, x):
        self.y = array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return (gy * (1 - self.y * self.y),)


def _axes(axis, ndim: int) -> tuple:
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axis))


class Sum(Gate):
    """Sum over ``axis``: a many-input add, so every summed element gets the upstream gradient."""

    label = "sum"

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.shape, self.axes = x.shape, _axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        xp = array_module(gy)
        kept = gy if self.keepdims else xp.expand_dims(gy, self.axes)
        return (xp.broadcast_to(kept, self.shape),)


class Mean(Sum):
    """Mean over ``axis``: a sum scaled by 1/n, so each element gets the upstream gradient / n."""

    label = "mean"

    def forward(self, x):
        total = super().forward(x)
        self.n = math.prod(x.shape[a] for a in self.axes)
        return total / x.dtype.type(self.n)

    def backward(self, gy):
        (g,) = super().backward(gy)
        return (g / gy.dtype.type(self.n),)


class Max(Gate):
    """Max over ``axis``: routes the upstream gradient to the largest element (shared evenly among ties)."""

    label = "max"

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.axes = _axes(self.axis, x.ndim)
        top = x.max(axis=self.axes, keepdims=True)
        winners = (x == top).astype(x.dtype)
        self.route = winners / winners.sum(axis=self.axes, keepdims=True)
        return top if self.keepdims else top.reshape([n for i, n in enumerate(top.shape) if i not in self.axes])

    def backward(self, gy):
        kept = gy if self.keepdims else array_module(gy).expand_dims(gy, self.axes)
        return (kept * self.route,)


class Reshape(Gate):
    """The same values in another shape; the gradient is reshaped back."""

    label = "reshape"

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return (gy.reshape(self.in_shape),)


class Transpose(Gate):
    """Axes permuted (reversed for ``.T``); the gradient is permuted back."""

    label = "T"

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.perm = tuple(reversed(range(x.ndim))) if self.axes is None else tuple(a % x.ndim for a in self.axes)
        if sorted(self.perm) != list(range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of {x.ndim} axes")
        return x.transpose(self.perm)

    def backward(self, gy):
        return (gy.transpose(tuple(np.argsort(self.perm))),)


class GetItem(Gate):
    """x[key] (slices, integers, index arrays): the gradient lands where the picked elements came from."""

    label = "[ ]"

    def __init__(self, key):
        self.key = key

    def forward(self, x):
        key = self.key if isinstance(self.key, tuple) else (self.key,)
        dev = device_of(x)
        key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
        self.basic = all(k is None or k is Ellipsis or isinstance(k, (slice, numbers.Integral)) for k in key)
        self.index = tuple(k if self.basic or not hasattr(k, "shape") and not isinstance(k, list)
                           else dev.asarray(k) for k in key)
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if self.basic:
            gx[self.index] = gy  # basic slicing picks each element at most once
        else:
            _scatter_add(xp, gx, self.index, gy)  # an index array may pick an element twice: both count
        return (gx,)


def _scatter_add(xp, target, index, values) -> None:
    if xp is np:
        np.add.at(target, index, values)
    else:  # CuPy
        import cupyx

        cupyx.scatter_add(target, index, values)


# --------------------------------------------------------------------------- gates as functions


def exp(x) -> Tensor:
    """e^x elementwise."""
    return Exp()(_tensor_arg(x, "exp"))


def log(x) -> Tensor:
    """Natural logarithm elementwise."""
    return Log()(_tensor_arg(x, "log"))


def maximum(x, y) -> Tensor:
    """Elementwise max of two tensors (or a tensor and a number): the max gate."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        raise TypeError("maximum needs at least one Tensor argument")
    return Maximum()(x, y)


def relu(x) -> Tensor:
    """max(0, x) elementwise."""
    return ReLU()(_tensor_arg(x, "relu"))


def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x) elementwise, computed without overflow."""
    return Sigmoid()(_tensor_arg(x, "sigmoid"))


def tanh(x) -> Tensor:
    """tanh x elementwise."""
    return Tanh()(_tensor_arg(x, "tanh"))


def _tensor_arg(x, gate: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Real) or hasattr(x, "shape") or isinstance(x, list):
        return tensor(x, requires_grad=False)
    raise TypeError(f"{gate} takes a Tensor, got {type(x).__name__}")


# --------------------------------------------------------------------------- Jacobians


def jacobian(f, x):
    """d f(x) / d x from backward passes: an array of shape ``f(x).shape + x.shape`` on x's device.

    ``f`` maps a :class:`Tensor` to a Tensor. One backward pass per output element, each
    with a one-hot upstream gradient: row i of the Jacobian is the gradient of output i.
    """
    x = tensor(x.data if isinstance(x, Tensor) else x)  # a fresh leaf: the caller's tensor keeps its .grad
    y = f(x)
    if not isinstance(y, Tensor):
        raise TypeError(f"f must return a Tensor, got {type(y).__name__}")
    xp = array_module(x.data)
    J = xp.zeros(y.shape + x.shape, dtype=y.dtype)
    for idx in np.ndindex(*y.shape):
        onehot = xp.zeros_like(y.data)
        onehot[idx] = 1
        x.grad = None
        y.backward(onehot)
        if x.grad is not None:  # None: this output does not depend on x
            J[idx] = x.grad
    return J


def numerical_jacobian(f, x, h: float = 1e-5):
    """d f(x) / d x by centered differences in float64: shape ``f(x).shape + x.shape``.

    The reference :func:`jacobian` is checked against; ``f`` maps a Tensor to a Tensor.
    """
    base = x.data if isinstance(x, Tensor) else x
    x64 = tensor(base, dtype="float64").data.copy()
    xp = array_module(x64)

    def value():
        with no_grad():
            y = f(Tensor(x64))
        if not isinstance(y, Tensor):
            raise TypeError(f"f must return a Tensor, got {type(y).__name__}")
        return y.data.astype(np.float64)

    out_shape = tuple(value().shape)
    J = xp.zeros(out_shape + x64.shape)
    for idx in np.ndindex(*x64.shape):
        old = x64[idx].item()
        x64[idx] = old + h
        plus = value()
        x64[idx] = old - h
        minus = value()
        x64[idx] = old
        J[(Ellipsis,) + idx] = (plus - minus) / (2 * h)
    return J


# --------------------------------------------------------------------------- drawing

VALUE_COLOR, GRAD_COLOR = "#1b7a2f", "#c0392b"  # values green above the edge, gradients red below (as the slides)


def _brief(a, digits: int = 4) -> str:
    """A short text for an array: the number for one element, a few numbers, or its shape."""
    if a is None:
        return "?"
    a = a.get() if hasattr(a, "get") else np.asarray(a)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.{digits}g}"
    if a.size <= 3:
        return "[" + ", ".join(f"{float(v):.{digits - 1}g}" for v in a.reshape(-1)) + "]"
    return "x".join(map(str, a.shape)) + " array"


def _graph(f: Tensor):
    """The gates behind ``f`` and, for each tensor, the gates that consume it."""
    gates, consumers, stack, seen = [], {}, [f.creator] if f.creator else [], set()
    while stack:
        gate = stack.pop()
        if id(gate) in seen:
            continue
        seen.add(id(gate))
        gates.append(gate)
        for i, t in enumerate(gate.inputs):
            consumers.setdefault(id(t), []).append((gate, i))
            if t.creator is not None:
                stack.append(t.creator)
    return gates, consumers


def to_dot(f: Tensor, title: str | None = None) -> str:
    """Graphviz DOT source for the expression behind ``f``: inputs left, output right.

    Gates are circles; each tensor is an edge labelled with its value (green, above) and
    gradient (red, below), once ``backward`` has run. A tensor used by several gates
    forks at a dot: the edge into the dot carries its total gradient, each branch the
    part its gate sent back; the total is their sum.
    """
    if not isinstance(f, Tensor):
        raise TypeError(f"draw/to_dot take a Tensor, got {type(f).__name__}")
    gates, consumers = _graph(f)
    lines = ["digraph expression {", '  rankdir=LR; nodesep=0.35; ranksep=0.55;',
             '  node [fontname="Helvetica", fontsize=13]; edge [fontname="Helvetica", fontsize=11, arrowsize=0.6];']
    key = (f'<font color="{VALUE_COLOR}">value (forward)</font>  /  '
           f'<font color="{GRAD_COLOR}">gradient (backward)</font>')
    heading = f"{_esc(title)}<br/>" if title else ""
    lines.append(f'  labelloc=t; label=<{heading}<font point-size="11">{key}</font>>; fontname="Helvetica"; fontsize=14;')

    def label(value, grad):
        return (f'<<font color="{VALUE_COLOR}">{_esc(_brief(value))}</font><br/>'
                f'<font color="{GRAD_COLOR}">{_esc(_brief(grad)) if grad is not None else " "}</font>>')

    def source(t: Tensor) -> str:
        if t.creator is not None:
            return f"g{id(t.creator)}"
        node = f"t{id(t)}"
        text = t.name or _brief(t.data)
        style = 'shape=plaintext, fontsize=15' if t.requires_grad else 'shape=plaintext, fontcolor="0.4"'
        lines.append(f'  {node} [label="{_esc(text)}", {style}];')
        return node

    for gate in gates:
        lines.append(f'  g{id(gate)} [label="{_esc(gate.label)}", shape=circle, width=0.55, fixedsize=false];')
    drawn = set()
    for gate in gates:
        for t in gate.inputs:
            if id(t) in drawn:
                continue
            drawn.add(id(t))
            src, uses = source(t), consumers[id(t)]
            if len(uses) == 1:
                lines.append(f"  {src} -> g{id(uses[0][0])} [label={label(t.data, t.grad)}];")
                continue
            fork = f"b{id(t)}"
            lines.append(f'  {fork} [shape=point, width=0.08];')
            lines.append(f"  {src} -> {fork} [label={label(t.data, t.grad)}, arrowhead=none];")
            for g, i in uses:
                lines.append(f"  {fork} -> g{id(g)} [label={label(t.data, g.input_grads[i])}];")
    out_name = f.name or "out"
    lines.append(f'  output [label="{_esc(out_name)}", shape=plaintext, fontsize=15];')
    start = f"g{id(f.creator)}" if f.creator is not None else source(f)
    lines.append(f"  {start} -> output [label={label(f.data, f.grad)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


RENDER_FORMATS = ("svg", "png", "pdf")


def draw(f: Tensor, path="graph.svg", title: str | None = None) -> Path:
    """Draw the expression behind ``f`` (see :func:`to_dot`) to ``path`` (.svg, .png, .pdf, or .dot for the source).

    Renders with Graphviz's ``dot`` program. Where it is missing, writes the DOT source
    beside ``path`` (suffix .dot), says in one line how to render it, and returns that path.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in RENDER_FORMATS + ("dot", "gv"):
        raise ValueError(f"draw: path must end in .svg, .png, .pdf or .dot, got {path.name!r}")
    source = to_dot(f, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(source)
        return path
    dot = shutil.which("dot")
    if dot is None:
        src = path.with_suffix(".dot")
        src.write_text(source)
        print(f"gpunn.autograd.draw: Graphviz's dot program was not found, so wrote {src}; render it with "
              f"`dot -T{fmt} {src} -o {path}` (install: apt-get install graphviz)", file=sys.stderr)
        return src
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw: dot failed ({done.returncode}): {done.stderr.strip()}")
    return path
