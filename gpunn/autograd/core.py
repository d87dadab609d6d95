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
    """Within the block gates compute values but record nothing: no graph, no backward (a context manager).

    Yields
    ------
    None
        Recording resumes (as it was before) when the block ends, also on an exception.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = ag.tensor(3.0)
    >>> with ag.no_grad():
    ...     y = x * x
    >>> float(y.data), y.creator is None
    (9.0, True)
    """
    previous, _RECORDING[0] = _RECORDING[0], False
    try:
        yield
    finally:
        _RECORDING[0] = previous


# --------------------------------------------------------------------------- the tensor


class Tensor:
    """A value in an expression: ``data`` (an ``xp`` array) and, after backward, ``grad``.

    Build inputs with :func:`tensor`; operators (``+ - * / ** @ []``, ``sum``, ``mean``, ``max``,
    ``reshape``, ``transpose``, ``.T``) and the gate functions build the rest, each through its gate.

    Parameters
    ----------
    data : array
        The value, a NumPy or CuPy array (not copied).
    name : str, default=None
        Shown in drawings and ``repr``.
    requires_grad : bool, default=True
        False marks a constant: no gradient is kept for it.

    Attributes
    ----------
    grad : array or None
        d(output)/d(this tensor), accumulated by :meth:`backward`; ``data``'s shape.
    creator : Gate or None
        The gate that produced it (None for an input).
    generation : int
        Its depth in the graph: one more than its creator's newest input.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x, y, z = ag.tensor(-2.0, name="x"), ag.tensor(5.0, name="y"), ag.tensor(-4.0, name="z")
    >>> f = (x + y) * z
    >>> f.backward()
    >>> float(f.data), float(x.grad), float(y.grad), float(z.grad)
    (-12.0, -4.0, -4.0, 3.0)
    >>> f
    Tensor(-12, grad=1, by *)
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
        """The value's shape, a tuple of ints."""
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        """The value's number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The value's number of elements."""
        return int(self.data.size)

    @property
    def dtype(self):
        """The value's dtype (float32 or float64)."""
        return self.data.dtype

    @property
    def device(self):
        """The :class:`gpunn.Device` the value is on."""
        return device_of(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python float.

        Returns
        -------
        float
            The single element (a host read on a GPU).
        """
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

        The gates run newest generation first, so a tensor's gradient is complete (its branches
        summed) before it flows further back. Gradients accumulate: a second call adds to them.

        Parameters
        ----------
        grad : array_like or Tensor, default=None
            The upstream gradient, this tensor's shape, on its device (or the CPU); None means 1,
            for a single-element output only.

        Raises
        ------
        ValueError
            If ``grad`` is None for an output of several elements, or has another shape or device.

        Examples
        --------
        >>> from gpunn import autograd as ag
        >>> x = ag.tensor([1.0, 2.0, 3.0])
        >>> (x * x).backward(np.ones(3))                  # d/dx sum(x^2)
        >>> x.grad
        array([2., 4., 6.], dtype=float32)
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
        """Forget the accumulated gradient (``grad`` becomes None)."""
        self.grad = None

    def detach(self) -> "Tensor":
        """The same values as a constant: no gradient flows through it.

        Returns
        -------
        Tensor
            A new tensor sharing ``data``, with ``requires_grad=False`` and no creator.
        """
        return Tensor(self.data, self.name, requires_grad=False)

    # Its operators (+, -, *, /, **, @, [], sum, mean, max, reshape, transpose, .T) each build a gate: they are
    # installed by gates.py, where the gates are defined (as DeZero does), so that this file needs none of them.


def tensor(value, device=None, dtype=None, name: str | None = None, requires_grad: bool = True) -> Tensor:
    """A :class:`Tensor` holding ``value`` as a float array: an input of an expression.

    A float array already on its device and in its dtype is wrapped, not copied.

    Parameters
    ----------
    value : float, list, array or Tensor
        The value: a number, a (nested) list, a NumPy or CuPy array, or a Tensor (its value).
    device : str or Device, default=None
        "cpu", "cuda", "cuda:N" or a :class:`gpunn.Device`; None keeps the value where it is
        (numbers and lists: the CPU).
    dtype : str or numpy.dtype, default=None
        float32 or float64; None keeps a float array's dtype and makes anything else float32.
    name : str, default=None
        Shown in drawings and ``repr``.
    requires_grad : bool, default=True
        False makes a constant.

    Returns
    -------
    Tensor
        The input tensor, with no creator.

    Raises
    ------
    ValueError
        If ``value`` is on a GPU other than ``device`` (move it first).
    TypeError
        If ``value`` does not hold numbers, or ``dtype`` is not a float dtype.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> ag.tensor([1, 2, 3], name="v")
    Tensor(v=[1, 2, 3])
    >>> ag.tensor(np.ones(4)).dtype                   # a float array keeps its dtype
    dtype('float64')
    >>> ag.tensor(np.array(["a"]))
    Traceback (most recent call last):
        ...
    TypeError: tensor value must hold numbers, got dtype <U1
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
    """``g`` summed down to ``shape``: the gradient of a broadcast input is the sum over its copies.

    Parameters
    ----------
    g : array
        A gradient in the broadcast shape.
    shape : tuple of int
        The input's shape, which broadcasts to ``g.shape``.

    Returns
    -------
    array
        ``g`` itself where the shapes agree, else its sum over the broadcast axes, in ``shape``.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> ag.sum_to(np.ones((4, 3)), (1, 3))            # a bias row broadcast over 4 rows
    array([[4., 4., 4.]])
    """
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)  # broadcasting added these leading axes
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


# --------------------------------------------------------------------------- the gate


class Gate:
    """Base of the gates: ``forward(*arrays) -> array`` and ``backward(gy) -> one gradient per input``.

    Calling a gate on tensors (or numbers and arrays, which become constants on the first
    tensor's device) runs ``forward`` on their arrays and records the graph: its inputs, a weak
    reference to its output and a generation number. ``backward`` may return gradients in the
    broadcast shape; :func:`sum_to` brings them back to each input's shape. ``label`` names the
    gate in drawings and error messages.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> class Square(ag.Gate):
    ...     label = "^2"
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, gy):
    ...         return (gy * 2 * self.x,)
    >>> x = ag.tensor(3.0)
    >>> y = Square()(x)
    >>> y.backward()
    >>> float(y.data), float(x.grad)
    (9.0, 6.0)
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
        """The gate's output from its input arrays; keeps what its local gradient needs.

        Parameters
        ----------
        *xs : array
            The inputs' arrays (NumPy or CuPy, one device).

        Returns
        -------
        array
            The output.

        Raises
        ------
        NotImplementedError
            Every gate defines it.
        """
        raise NotImplementedError

    def backward(self, gy):
        """One gradient per input: the upstream gradient times the local one.

        Parameters
        ----------
        gy : array
            The gradient of the final output with respect to this gate's output.

        Returns
        -------
        tuple of array
            One per input, in the input's shape or the broadcast shape.

        Raises
        ------
        NotImplementedError
            Every gate defines it.
        """
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

