"""Module: the base of every layer, a gate with a visible forward and backward.

A module keeps its parameters (:class:`Parameter`), its buffers (arrays that are
state but not trained, such as batchnorm's running statistics), the device and
dtype they live in, and whatever its backward pass needs from the forward pass.
Submodules are found by looking at attributes (a module, or a list of modules),
in the order they were set.

Mixed precision (:meth:`Module.mixed_precision`) is a dtype policy the layers carry out: each layer
computes in float16 from float16 copies of its float32 weights (``Parameter.master``), except those that
say they keep float32 (``keeps_float32``: batchnorm, whose statistics need float32's range); each layer
casts what it receives to its own dtype, so the casts happen where the dtype changes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections import OrderedDict

import numpy as np

from ..devices import DEFAULT_DTYPE, Device, adopt, as_float_dtype, on_own_device, to_numpy
from ..devices import device as make_device
from ..metrics import labels_from_scores
from ..validation import check_finite, check_int
from .parameter import Parameter

_FLOAT_NAMES = ("float32", "float64")
PASSES = ("forward", "backward", "forward_fused", "backward_fused")


class Module:
    """Base class of layers: ``forward(x)``, ``backward(dout)``, parameters, device and dtype.

    Subclasses implement :meth:`forward` and :meth:`backward`; ``backward`` takes
    the upstream gradient, multiplies by the local one, accumulates parameter
    gradients into ``Parameter.grad`` and returns the gradient w.r.t. the input.
    ``backward(dout, input_grad=False)`` may skip that last product and return
    ``None``: a first layer fed with data needs no input gradient. (A model, such as
    :class:`Sequential`, defaults to skipping it; single gates default to computing it.)
    Names listed in ``buffers`` are arrays saved in the state dict and moved by :meth:`to`.
    """

    buffers: tuple[str, ...] = ()
    keeps_float32 = False  # computes in float32 even in mixed precision (its statistics need float32)
    mixed = False  # computing in mixed precision: float16 copies of float32 master weights

    def __init_subclass__(cls, **kwargs):
        """Each pass a layer defines runs on the layer's own device (see :func:`gpunn.devices.on_device`)."""
        super().__init_subclass__(**kwargs)
        for name in PASSES:
            if name in cls.__dict__:
                setattr(cls, name, on_own_device(cls.__dict__[name]))

    def __init__(self):
        self.training = True
        self.device = Device("cpu")
        self.dtype = DEFAULT_DTYPE
        self._cache = None

    # ------------------------------------------------------------------ the gate
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout, input_grad: bool = True):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # ------------------------------------------------------------------ inference
    def predict_scores(self, X, batch_size: int = 1024):
        """Outputs for ``X`` in evaluation mode, computed in batches, as a NumPy array.

        ``X`` holding NaN or infinity is refused, as the estimators refuse it: its rows would get
        NaN scores, and :meth:`predict` no class.
        """
        batch_size = check_int("batch_size", batch_size, low=1)
        X = X if hasattr(X, "shape") else np.asarray(X)
        if X.ndim == 0 or len(X) == 0:
            raise ValueError("X is empty: nothing to predict")
        if X.dtype.kind in "fc":
            check_finite("X", X)
        with self.evaluating():
            parts = [to_numpy(self.forward(X[i:i + batch_size])) for i in range(0, len(X), batch_size)]
        return np.concatenate(parts)

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Class indices for ``X`` (argmax of the scores; score > 0 for one output unit); NaN scores are refused."""
        return labels_from_scores(self.predict_scores(X, batch_size))

    # ------------------------------------------------------------------ structure
    def children(self):
        """(name, module) for each direct submodule, in the order they were set."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield str(i) if name == "layers" else f"{name}.{i}", item

    def modules(self):
        """This module and every submodule below it, depth first."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) for every parameter, submodules included."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def _buffer_slots(self, prefix: str = ""):
        """(dotted name, owning module, attribute) for every buffer, submodules included."""
        for name in self.buffers:
            yield prefix + name, self, name
        for name, child in self.children():
            yield from child._buffer_slots(f"{prefix}{name}.")

    def named_buffers(self):
        for name, owner, attr in self._buffer_slots():
            yield name, getattr(owner, attr)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self):
        """Within the block the module is in evaluation mode (dropout off, batchnorm's running statistics),
        then back in the mode it was in."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def seed(self, seed) -> "Module":
        """Reseed every random layer in this module (dropout), each from its own child of ``seed``."""
        randoms = [m for m in self.modules() if type(m)._reseed is not Module._reseed]
        for m, child in zip(randoms, np.random.SeedSequence(seed).spawn(len(randoms))):
            m._reseed(int(child.generate_state(1)[0]))
        return self

    def _reseed(self, seed: int) -> None:
        """Hook for random layers: restart the random stream from ``seed``."""

    def rows_from(self, first_row: int) -> "Module":
        """The next batches are rows ``first_row``.. of bigger global batches (data-parallel training).

        Random layers then draw those rows' part of the global batch's randomness, so every process
        together draws what one process would. 0 (the default) for ordinary training.
        """
        for m in self.modules():
            m._rows_from(first_row)
        return self

    def _rows_from(self, first_row: int) -> None:
        """Hook for random layers: see :meth:`rows_from`."""

    # ------------------------------------------------------------------ device and dtype
    def to(self, device=None, dtype=None) -> "Module":
        """Move parameters and buffers to ``device`` and/or cast them to ``dtype``; returns ``self``.

        ``model.to("cuda")``, ``model.to(dtype="float64")`` and ``model.to("float64")`` all work.
        """
        if isinstance(device, str) and device in _FLOAT_NAMES or isinstance(device, (np.dtype, type)):
            device, dtype = None, device
        dev = self.device if device is None else make_device(device)
        dt = None if dtype is None else as_float_dtype(dtype)
        if dt is not None and self.mixed:
            raise ValueError(f"dtype={dt.name}: the model computes in mixed precision; call "
                             "model.mixed_precision(False) before casting it")
        for m in self.modules():
            m._move(dev, m.dtype if dt is None else dt)  # a move alone keeps each layer's dtype
        return self

    def _move(self, dev: Device, dt: np.dtype) -> None:
        if dev == self.device and dt == self.dtype:
            return
        for value in vars(self).values():
            if isinstance(value, Parameter):
                if value.master is not None:  # mixed precision: the master moves too, keeping its dtype
                    value.master = dev.asarray(value.master)
                value.data = dev.asarray(value.data, dtype=dt)
                value.grad = None if value.grad is None else dev.asarray(value.grad, dtype=dt)
        for name in self.buffers:
            buffer = getattr(self, name)
            setattr(self, name, dev.asarray(buffer, dtype=buffer.dtype if self.mixed else dt))
        self.device, self.dtype = dev, dt
        self._cache = None
        self._moved()

    def mixed_precision(self, enabled: bool = True) -> "Module":
        """Compute in float16 with float32 master weights (``enabled``), or in float32 again; returns ``self``.

        Enabled: each layer's parameters keep their float32 weights as ``Parameter.master`` and compute with
        a float16 copy in ``data``; its inputs are cast to float16; layers with ``keeps_float32``
        (batchnorm) stay float32, parameters, statistics and arithmetic. Disabled: the masters become the
        parameters' data again, and the model is float32 throughout. Gradients are dropped either way.
        It is the policy a :class:`~gpunn.Trainer` with ``precision="mixed"`` applies for the length of
        ``fit`` (on a GPU: NumPy has no fast float16 matrix product).

        Raises
        ------
        ValueError
            Enabling it on a model that is not float32 (naming the layer's dtype).

        Examples
        --------
        >>> model = gn.nn.Sequential(gn.nn.Linear(4, 3, rng=0), gn.nn.ReLU()).mixed_precision()
        >>> model.layers[0].W.data.dtype, model.layers[0].W.master.dtype
        (dtype('float16'), dtype('float32'))
        >>> model.mixed_precision(False).layers[0].W.data.dtype
        dtype('float32')
        """
        enabled = bool(enabled)
        if enabled and not self.mixed:
            wrong = [f"{type(m).__name__} is {m.dtype}" for m in self.modules() if not m.mixed and m.dtype != np.float32]
            if wrong:
                raise ValueError(f"mixed precision keeps float32 master weights, but {wrong[0]}: cast the model to "
                                 "float32 first (model.to('float32'))")
        for m in self.modules():
            m._set_mixed(enabled)
        return self

    def _set_mixed(self, enabled: bool) -> None:
        """This layer's part of :meth:`mixed_precision`: its own parameters and dtype."""
        if enabled == self.mixed:
            return
        half = enabled and not self.keeps_float32
        with self.device:  # the copies are made on the layer's own GPU
            for value in vars(self).values():
                if isinstance(value, Parameter):
                    if half:
                        value.master, value.data = value.data, value.data.astype(np.float16)
                    elif value.master is not None:
                        value.data, value.master = value.master, None
                    value.grad = None
        self.dtype, self.mixed = np.dtype(np.float16 if half else np.float32), enabled
        self._cache = None
        self._moved()

    def _moved(self) -> None:
        """Hook for layers that hold device-bound state besides parameters (an RNG, say)."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and buffer by dotted name, as NumPy copies on the host."""
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = to_numpy(p.weights).copy()  # in mixed precision the float32 masters
        for name, b in self.named_buffers():
            out[name] = to_numpy(b).copy()
        return out

    def device_state(self) -> "OrderedDict":
        """Copies of every parameter and buffer by dotted name, on this module's device (no host transfer)."""
        with self.device:  # copies on the model's own GPU
            out = OrderedDict((name, p.weights.copy()) for name, p in self.named_parameters())
            out.update((name, b.copy()) for name, b in self.named_buffers())
        return out

    def load_device_state(self, state) -> "Module":
        """Put back arrays taken by :meth:`device_state` of this same model (trusted: no checks, no host transfer)."""
        params = dict(self.named_parameters())
        with self.device:  # copies (and float16 copies of masters) made on the model's own GPU
            for name, p in params.items():
                p.assign(state[name].copy())
            for name, m, b in self._buffer_slots():
                setattr(m, b, state[name].copy())
        for m in self.modules():
            m._cache = None
        return self

    def load_state_dict(self, state) -> "Module":
        """Load arrays saved by :meth:`state_dict`. Checks every name and shape first; on error nothing changes."""
        targets = OrderedDict()  # name -> (shape, dtype, how to put the new value in)
        for name, p in self.named_parameters():
            targets[name] = (p.shape, p.weights.dtype, p.assign)
        for name, m, b in self._buffer_slots():
            targets[name] = (tuple(getattr(m, b).shape), getattr(m, b).dtype, lambda v, m=m, b=b: setattr(m, b, v))
        if not hasattr(state, "keys"):
            raise TypeError(f"state must be a mapping of names to arrays, got {type(state).__name__}")
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if missing or unexpected:
            raise ValueError(f"state does not fit this model: missing {missing}, unexpected {unexpected}")
        arrays = {}
        for name, (shape, _, _) in targets.items():
            value = to_numpy(state[name])
            if tuple(value.shape) != shape:
                raise ValueError(f"state[{name!r}] has shape {tuple(value.shape)}, the model expects {shape}")
            if value.dtype.kind not in "fiu" or not np.isfinite(value).all():
                raise ValueError(f"state[{name!r}] must hold finite numbers")
            arrays[name] = value.copy()  # the model's own: training must not change the caller's arrays
        with self.device:
            for name, (_, dtype, assign) in targets.items():
                assign(self.device.asarray(arrays[name], dtype=dtype))
        for m in self.modules():
            m._cache = None
        return self

    # ------------------------------------------------------------------ helpers for subclasses
    def _input(self, x, ndim: int | None = None):
        """``x`` on this module's device in its dtype, with a non-empty batch (and ``ndim`` dims)."""
        if type(x) is not np.ndarray or x.dtype != self.dtype or self.device.index is not None:
            x = adopt(x, self.device, lambda: f"input to {self!r}", self.dtype)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{self!r} got an empty batch (input shape {tuple(x.shape)})")
        if ndim is not None and x.ndim != ndim:
            raise ValueError(f"{self!r} expects a {ndim}-D input, got shape {tuple(x.shape)}")
        return x

    def _saved(self):
        """What forward saved for backward; an error if there was no forward since the last move."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward (or after the model was moved)")
        return self._cache

    def _upstream(self, dout, shape: tuple):
        """The upstream gradient on this device, checked against the forward output's ``shape``."""
        if type(dout) is not np.ndarray or dout.dtype != self.dtype or self.device.index is not None:
            dout = adopt(dout, self.device, lambda: f"upstream gradient of {self!r}", self.dtype)
        if tuple(dout.shape) != tuple(shape):
            raise ValueError(f"{self!r}: upstream gradient has shape {tuple(dout.shape)}, its output had {tuple(shape)}")
        return dout

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def computes_as(layer: Module, base: type, names=("forward", "backward", "forward_fused", "backward_fused")) -> bool:
    """True when ``layer``'s class overrides none of ``base``'s passes ``names``: it computes exactly what ``base`` does.

    The condition for running a layer through a fused path written for ``base``.
    """
    cls = type(layer)
    return isinstance(layer, base) and all(getattr(cls, n, None) is getattr(base, n, None) for n in names)


def backward(layer: Module, dout, input_grad: bool):
    """``layer.backward(dout, input_grad=...)``, or ``layer.backward(dout)`` for a gate written cs231n's way.

    A user's gate may define ``backward(self, dout)`` only; it then always returns its input
    gradient, which a caller not wanting it simply drops.
    """
    if _takes_input_grad(type(layer)):
        return layer.backward(dout, input_grad=input_grad)
    dx = layer.backward(dout)
    return dx if input_grad else None


@functools.lru_cache(maxsize=None)
def _takes_input_grad(cls) -> bool:
    params = inspect.signature(cls.backward).parameters
    return "input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
