"""The graph's machinery: Tensor (a value and its gradient), Gate (the base of every gate), backward.

Calling a gate records its inputs, a weak reference to its output (so the graph holds no
reference cycle) and a generation number, one more than its newest input's.
``Tensor.backward`` visits the gates newest generation first, so a tensor's gradient is
complete (its branches summed) before it flows further back. Broadcasting is undone in
one place, :func:`sum_to`. The gates themselves live in :mod:`gpunn.autograd.gates`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import numbers
import weakref

import numpy as np

from ..devices import DEFAULT_DTYPE, FLOAT_DTYPES, array_module, as_float_dtype, device_of, on_device
from ..devices import device as make_device

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
    @on_device(lambda self, *rest: self.device)
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
        handed = {id(grad)}  # the caller's array is theirs: never store it as a .grad
        for key, t in reached.items():
            g = this_pass[key]
            if t.grad is not None:
                t.grad = t.grad + g
            else:  # each .grad its own writable array: add hands one array to both inputs, reshape a view
                t.grad = g.copy() if id(g) in handed or g.base is not None else g
                handed.add(id(g))

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> "Tensor":
        """The same values as a constant: no gradient flows through it."""
        return Tensor(self.data, self.name, requires_grad=False)

    # Its operators (+, -, *, /, **, @, [], sum, mean, max, reshape, transpose, .T) each build a gate: they are
    # installed by gates.py, where the gates are defined (as DeZero does), so that this file needs none of them.


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
        raise TypeError(f"cannot use a value of type {type(value).__name__} in an expression with a Tensor; "
                        "expected a number, an array or a Tensor")
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
            with devices[0]:
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

