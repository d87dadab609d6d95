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

    Subclasses implement :meth:`~gpunn.nn.Module.forward` and :meth:`~gpunn.nn.Module.backward`; ``backward`` takes
    the upstream gradient, multiplies by the local one, accumulates parameter
    gradients into ``Parameter.grad`` and returns the gradient w.r.t. the input.
    ``backward(dout, input_grad=False)`` may skip that last product and return
    ``None``: a first layer fed with data needs no input gradient. (A model, such as
    :class:`Sequential`, defaults to skipping it; single gates default to computing it.)
    Names listed in ``buffers`` are arrays saved in the state dict and moved by :meth:`to`.

    A module starts on the CPU in float32, in training mode. Its parameters are the
    :class:`Parameter` attributes it sets; its submodules the :class:`Module` attributes and lists of
    modules (a :class:`Sequential`'s ``layers``), found in the order they were set.

    Attributes
    ----------
    training : bool
        True in training mode (dropout drops, batchnorm uses the batch's statistics), False in
        evaluation mode; see :meth:`train`, :meth:`eval` and :meth:`evaluating`.
    device : Device
        Where the parameters and buffers live (``Device("cpu")`` until :meth:`to` moves them).
    dtype : numpy.dtype
        The dtype the layer computes in: float32 by default, float64 after ``to("float64")``,
        float16 in mixed precision (except layers with ``keeps_float32``).
    buffers : tuple of str
        Names of the attributes that are state but not trained (batchnorm's running statistics).

    Examples
    --------
    A gate of one's own, written cs231n's way: forward saves what backward needs, backward
    accumulates the parameter's gradient and returns the input's.

    >>> class Scale(gn.nn.Module):  # y = a x with one trained number a
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a = gn.nn.Parameter(np.ones(1, np.float32))
    ...     def forward(self, x):
    ...         self._cache = x
    ...         return x * self.a.data
    ...     def backward(self, dout, input_grad=True):
    ...         x = self._cache
    ...         self.a.accumulate((dout * x).sum().reshape(1))  # da = sum of dout x
    ...         return dout * self.a.data if input_grad else None  # dx = dout a
    >>> scale = Scale()
    >>> x = np.array([[1.0, 2.0]], dtype=np.float32)
    >>> scale.forward(x)
    array([[1., 2.]], dtype=float32)
    >>> scale.backward(np.ones_like(x))
    array([[1., 1.]], dtype=float32)
    >>> scale.a.grad
    array([3.], dtype=float32)

    Modules nest; their parameters are named by where they sit:

    >>> model = gn.nn.Sequential(gn.nn.Linear(2, 3, rng=0), gn.nn.ReLU(), Scale())
    >>> [name for name, _ in model.named_parameters()]
    ['0.W', '0.b', '2.a']
    >>> model.predict_scores(np.ones((5, 2))).shape
    (5, 3)
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
        """The layer's output for the batch ``x``; saves what :meth:`~gpunn.nn.Module.backward` needs.

        Calling the module, ``layer(x)``, is the same.

        Parameters
        ----------
        x : ndarray
            The input batch, a NumPy or CuPy array whose first axis is the batch: (N, ...), N >= 1, in
            the shape the layer expects (``Linear``: (N, in_features); ``Conv2d`` and the pooling
            layers: (N, C, H, W)). The built-in layers cast it to their dtype and move NumPy input to
            their device; an array on another GPU is refused.

        Returns
        -------
        ndarray
            The output batch, (N, ...), on the layer's device, in its dtype.

        Raises
        ------
        NotImplementedError
            Here, on the base: each layer defines its own forward. The built-in layers raise
            ``ValueError`` for an empty batch or an input of the wrong shape, and ``TypeError`` for
            input that does not hold numbers.
        """
        raise NotImplementedError

    def backward(self, dout, input_grad: bool = True):
        """Backpropagate ``dout`` through the last :meth:`~gpunn.nn.Module.forward`: accumulate the parameters' gradients and
        return the input's.

        Each parameter's gradient is added into its ``Parameter.grad`` (call :meth:`~gpunn.nn.Module.zero_grad` between
        steps); the gradient w.r.t. the input is the upstream one times the local one.

        Parameters
        ----------
        dout : ndarray
            The gradient of the loss w.r.t. this layer's output: the output's shape, on the layer's
            device (NumPy input is moved there and cast to the layer's dtype).
        input_grad : bool, default=True
            Whether to compute the gradient w.r.t. the input. False skips that product (a first layer
            fed with data needs none) and returns None. (:class:`Sequential` defaults to False.)

        Returns
        -------
        ndarray or None
            The gradient w.r.t. the input of the last forward, its shape, in the layer's dtype; None
            with ``input_grad=False``.

        Raises
        ------
        NotImplementedError
            Here, on the base: each layer defines its own backward. The built-in layers raise
            ``RuntimeError`` when there was no forward pass since the layer was built or moved, and
            ``ValueError`` when ``dout`` does not have the output's shape.
        """
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # ------------------------------------------------------------------ inference
    def predict_scores(self, X, batch_size: int = 1024):
        """Outputs for ``X`` in evaluation mode, computed in batches, as a NumPy array.

        ``X`` holding NaN or infinity is refused, as the estimators refuse it: its rows would get
        NaN scores, and :meth:`predict` no class. The module is in evaluation mode for the call
        (dropout off, batchnorm's running statistics), then back in the mode it was in.

        Parameters
        ----------
        X : array-like of shape (N, ...)
            The samples, in the shape the first layer expects; NumPy, CuPy, or anything
            ``np.asarray`` reads (a list).
        batch_size : int, default=1024
            Rows per forward pass, >= 1 (a bound on the memory the activations take).

        Returns
        -------
        numpy.ndarray
            The model's outputs, (N, ...) (class scores (N, C) for a classifier), on the host, in the
            model's dtype.

        Raises
        ------
        ValueError
            If ``X`` is empty, holds NaN or infinity, or ``batch_size`` is below 1.
        TypeError
            If ``batch_size`` is not an integer.
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
        """Class indices for ``X`` (argmax of the scores; score > 0 for one output unit); NaN scores are refused.

        Parameters
        ----------
        X : array-like of shape (N, ...)
            The samples, as for :meth:`predict_scores`.
        batch_size : int, default=1024
            Rows per forward pass, >= 1.

        Returns
        -------
        numpy.ndarray of shape (N,), int64
            The predicted class of each row: the index of its largest score (the first, on ties), or
            1 where a single output unit's score is above 0, else 0.

        Raises
        ------
        ValueError
            As :meth:`predict_scores`; also where a row's scores hold NaN.

        Examples
        --------
        >>> model = gn.nn.Sequential(gn.nn.Linear(2, 3, rng=0))
        >>> model.predict(np.ones((4, 2))).shape
        (4,)
        """
        return labels_from_scores(self.predict_scores(X, batch_size))

    # ------------------------------------------------------------------ structure
    def children(self):
        """(name, module) for each direct submodule, in the order they were set.

        A submodule is an attribute that is a module, or an item of a list or tuple attribute: named
        after the attribute, ``"attr.i"`` for a list's item, plain ``"i"`` for ``layers`` (as
        :class:`Sequential` has it).

        Yields
        ------
        name : str
            The submodule's name within this module.
        module : Module
            The submodule.
        """
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield str(i) if name == "layers" else f"{name}.{i}", item

    def modules(self):
        """This module and every submodule below it, depth first.

        Yields
        ------
        Module
            This module first, then each child followed by its own submodules.
        """
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) for every parameter, submodules included.

        This module's own parameters come first (in the order they were set), then each child's.

        Parameters
        ----------
        prefix : str, default=""
            Put before every name (a parent passes ``"child_name."``).

        Yields
        ------
        name : str
            The parameter's dotted name, such as ``"0.W"`` (layer 0's weights in a Sequential).
        parameter : Parameter
            The parameter itself (not a copy).
        """
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """Every parameter, submodules included, in :meth:`named_parameters`' order.

        Returns
        -------
        list of Parameter
            The parameters themselves (what an optimizer is given).
        """
        return [p for _, p in self.named_parameters()]

    def _buffer_slots(self, prefix: str = ""):
        """(dotted name, owning module, attribute) for every buffer, submodules included."""
        for name in self.buffers:
            yield prefix + name, self, name
        for name, child in self.children():
            yield from child._buffer_slots(f"{prefix}{name}.")

    def named_buffers(self):
        """(dotted name, array) for every buffer (state that is not trained), submodules included.

        Yields
        ------
        name : str
            The buffer's dotted name, such as ``"1.running_mean"``.
        array : ndarray
            The buffer itself, on the module's device.
        """
        for name, owner, attr in self._buffer_slots():
            yield name, getattr(owner, attr)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        """Put this module and every submodule in training mode (or, with ``mode=False``, evaluation mode).

        Parameters
        ----------
        mode : bool, default=True
            True: training mode (dropout drops, batchnorm uses and updates the batch statistics);
            False: evaluation mode.

        Returns
        -------
        Module
            This module, for chaining.
        """
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Put this module and every submodule in evaluation mode: ``train(False)``.

        Returns
        -------
        Module
            This module, for chaining.
        """
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self):
        """Within the block the module is in evaluation mode (dropout off, batchnorm's running statistics),
        then back in the mode it was in.

        Yields
        ------
        Module
            This module, in evaluation mode.

        Examples
        --------
        >>> model = gn.nn.Sequential(gn.nn.Linear(2, 2, rng=0), gn.nn.Dropout(0.5))
        >>> with model.evaluating():
        ...     print(model.training, model[1].training)
        False False
        >>> model.training
        True
        """
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad`` becomes None): the next backward starts afresh."""
        for p in self.parameters():
            p.zero_grad()

    def seed(self, seed) -> "Module":
        """Reseed every random layer in this module (dropout), each from its own child of ``seed``.

        Parameters
        ----------
        seed : int or numpy.random.SeedSequence
            The root of the seeds (anything ``np.random.SeedSequence`` takes); the same seed gives the
            same random masks.

        Returns
        -------
        Module
            This module, for chaining.
        """
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

        Parameters
        ----------
        first_row : int
            The global batch's row that this process's next batches start at.

        Returns
        -------
        Module
            This module, for chaining.
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
        A move alone keeps each layer's dtype; what a layer saved for backward is dropped.

        Parameters
        ----------
        device : str, Device, numpy.dtype or None, default=None
            ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a :class:`~gpunn.devices.Device`; None:
            stay where it is. A dtype given here (``"float32"``, ``"float64"``, ``np.float64``) is
            taken as ``dtype``.
        dtype : str, numpy.dtype or None, default=None
            ``"float32"`` or ``"float64"``; None: keep each layer's dtype.

        Returns
        -------
        Module
            This module, moved.

        Raises
        ------
        ValueError
            If the model computes in mixed precision and a ``dtype`` is given, if ``dtype`` is not
            float32 or float64, or if the device cannot be had (CUDA asked for where none is usable).

        Examples
        --------
        >>> layer = gn.nn.Linear(2, 3, rng=0).to("float64")
        >>> layer.dtype, layer.W.dtype
        (dtype('float64'), dtype('float64'))
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

        Parameters
        ----------
        enabled : bool, default=True
            True: compute in float16 with float32 masters; False: back to float32 throughout.

        Returns
        -------
        Module
            This module.

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
        """Every parameter and buffer by dotted name, as NumPy copies on the host.

        Returns
        -------
        collections.OrderedDict of str to numpy.ndarray
            Parameters first (in :meth:`named_parameters`' order), then buffers; each a copy in its
            own dtype (in mixed precision the float32 master weights). :meth:`load_state_dict` takes
            it back.

        Examples
        --------
        >>> state = gn.nn.Sequential(gn.nn.Linear(2, 3, rng=0), gn.nn.BatchNorm1d(3)).state_dict()
        >>> {name: value.shape for name, value in state.items()}
        {'0.W': (2, 3), '0.b': (3,), '1.gamma': (3,), '1.beta': (3,), '1.running_mean': (3,), '1.running_var': (3,)}
        """
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = to_numpy(p.weights).copy()  # in mixed precision the float32 masters
        for name, b in self.named_buffers():
            out[name] = to_numpy(b).copy()
        return out

    def device_state(self) -> "OrderedDict":
        """Copies of every parameter and buffer by dotted name, on this module's device (no host transfer).

        A snapshot to return to (the Trainer's best weights so far) without the cost of a copy to the host.

        Returns
        -------
        collections.OrderedDict of str to ndarray
            Parameters then buffers, as in :meth:`state_dict`, but NumPy or CuPy arrays on the
            module's device.
        """
        with self.device:  # copies on the model's own GPU
            out = OrderedDict((name, p.weights.copy()) for name, p in self.named_parameters())
            out.update((name, b.copy()) for name, b in self.named_buffers())
        return out

    def load_device_state(self, state) -> "Module":
        """Put back arrays taken by :meth:`device_state` of this same model (trusted: no checks, no host transfer).

        Parameters
        ----------
        state : mapping of str to ndarray
            What :meth:`device_state` returned; copied in, so it can be loaded again.

        Returns
        -------
        Module
            This module, with those weights and buffers; what its layers saved for backward is dropped.
        """
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
        """Load arrays saved by :meth:`state_dict`. Checks every name and shape first; on error nothing changes.

        Parameters
        ----------
        state : mapping of str to array
            An array (NumPy, or on any device) for every parameter and buffer, by dotted name, of the
            shapes this model has; each is copied and cast to the dtype of what it replaces.

        Returns
        -------
        Module
            This module, with the loaded weights; what its layers saved for backward is dropped.

        Raises
        ------
        TypeError
            If ``state`` is not a mapping.
        ValueError
            If a name is missing or unexpected, a shape differs, or an array does not hold finite
            numbers.

        Examples
        --------
        >>> a, b = gn.nn.Linear(2, 3, rng=0), gn.nn.Linear(2, 3, rng=1)
        >>> bool((b.load_state_dict(a.state_dict()).W.data == a.W.data).all())
        True
        >>> b.load_state_dict({"W": np.zeros((3, 2))})
        Traceback (most recent call last):
        ...
        ValueError: state does not fit this model: missing ['b'], unexpected []
        """
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
        """What the module's repr shows between the parentheses: its settings, ``Linear(4, 8)``'s ``4, 8``.

        Returns
        -------
        str
            Empty here; layers with settings override it.
        """
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
