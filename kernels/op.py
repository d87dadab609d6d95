"""Op: an operation's reference and its fused kernels, and the one place that chooses between them.

An op is declared by its reference, plain ``xp`` code that runs on NumPy and CuPy alike and is the
readable definition of what the op computes::

    @op
    def activation(x, kind, alpha=0.0):
        ...xp code...

and given kernels where they are written, next to it::

    @activation.kernel("cpu", "cuda")
    def _(x, kind, alpha=0.0):
        ...checks, allocation, launch...

A kernel's binding may return ``NotImplemented`` for inputs it does not take (a dtype, a layout): the
reference runs instead. Calling the op (:meth:`Op.__call__`) picks, for its first array's device, the
binding where one is registered and the input is large enough to pay for a launch, else the reference;
on a GPU it runs with that GPU current. Every op declared so lands in ``REGISTRY``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable

from .arrays import device_of

# Below these sizes (elements of the op's largest array) the reference is faster than a kernel call
# (bench/test_kernels.py): on the CPU a Numba call costs a few microseconds more than NumPy's.
MIN_SIZE = {"cpu": 16384, "cuda": 0}
REGISTRY: dict[str, "Op"] = {}
_ENABLED = [os.environ.get("GPUNN_KERNELS", "1") != "0"]  # GPUNN_KERNELS=0: every op runs its reference


class _Bindings(dict):
    """An op's bindings by device type; any change forgets the op's resolved dispatch (it is made again)."""

    __slots__ = ("op",)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.op._resolved.clear()

    def __delitem__(self, key):
        super().__delitem__(key)
        self.op._resolved.clear()

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self.op._resolved.clear()


class Op:
    """An operation: ``reference`` (xp code), and bindings of fused kernels per device type ("cpu", "cuda").

    The choice is made once per array type (NumPy's, CuPy's), not per call: the first call with a new
    type resolves a small function that checks the size and the switch and calls the binding or the
    reference, and later calls go straight to it.

    Made by :func:`op`, which is how an op is declared; the op then reads as its reference (name and
    docstring) and is listed in :data:`~gpunn.ops.REGISTRY` under its name.

    Parameters
    ----------
    reference : callable
        The op's definition in ``xp`` code, run where no kernel applies.
    size : callable or None, default=None
        ``size(*args, **kwargs)``: the elements an input is judged by against the minimum sizes;
        None: the first argument's ``size``.
    min_size : dict or None, default=None
        This op's minimum sizes by device type where they differ from ``MIN_SIZE``
        (``{"cpu": 0}``: the kernel runs at every size).

    Attributes
    ----------
    reference : callable
        The reference, also callable directly (``op.reference(...)``).
    name : str
        The reference's name, the op's key in :data:`~gpunn.ops.REGISTRY`.
    bindings : dict
        The kernel bindings by device type ("cpu", "cuda").
    """

    def __init__(self, reference: Callable, size: Callable | None = None, min_size: dict | None = None):
        functools.update_wrapper(self, reference)
        self.reference = reference
        self.name = reference.__name__
        self._resolved: dict = {}  # array type -> the function that runs this op on such arrays
        self.bindings = _Bindings()
        self.bindings.op = self
        self._size = size
        self._min_size = MIN_SIZE if min_size is None else {**MIN_SIZE, **min_size}
        REGISTRY[self.name] = self

    def kernel(self, *device_types: str):
        """Decorator: the function is this op's binding for arrays on these device types.

        The binding takes the op's arguments; it checks them, allocates and launches the kernels,
        and returns the result, or ``NotImplemented`` for an input it does not take (the reference
        then runs).

        Parameters
        ----------
        *device_types : str
            "cpu" and/or "cuda".

        Returns
        -------
        callable
            The decorator, which registers the binding and returns it unchanged.

        Raises
        ------
        ValueError
            If a device type is not "cpu" or "cuda".
        """
        for device_type in device_types:
            if device_type not in ("cpu", "cuda"):
                raise ValueError(f"device type must be 'cpu' or 'cuda', got {device_type!r}")

        def register(binding):
            self.bindings.update(dict.fromkeys(device_types, binding))
            return binding

        return register

    def __call__(self, *args, **kwargs):
        """Run the op: its binding for the first array's device where one applies, else its reference.

        A binding runs where one is registered for that device type, kernels are switched on
        (:func:`use_kernels`) and the input is at least the op's minimum size; on a GPU it runs
        with the arrays' GPU current.

        Parameters
        ----------
        *args, **kwargs
            The reference's arguments; ``args[0]`` is an array, whose device decides.

        Returns
        -------
        object
            What the reference returns (the same from the kernel).
        """
        # the choice for this array type, made once (_resolve); per call only the size and the switch are read
        first = args[0]
        plan = self._resolved.get(type(first))
        if plan is None:
            plan = self._resolve(first)
        binding, minimum, cuda = plan
        if cuda:  # CuPy and the kernels compute on the arrays' own GPU
            with device_of(first):
                return self._run(binding, minimum, args, kwargs)
        if binding is not None and _ENABLED[0] and (
                minimum == 0 or (first.size if self._size is None else self._size(*args, **kwargs)) >= minimum):
            result = binding(*args, **kwargs)
            if result is not NotImplemented:
                return result
        return self.reference(*args, **kwargs)

    def _run(self, binding, minimum, args, kwargs, always: bool = False):
        if binding is not None and (_ENABLED[0] or always) and (
                minimum == 0 or (args[0].size if self._size is None else self._size(*args, **kwargs)) >= minimum):
            result = binding(*args, **kwargs)
            if result is not NotImplemented:
                return result
        return self.reference(*args, **kwargs)

    def with_kernel(self, *args, **kwargs):
        """Run the kernel whatever the input's size (the reference only where the binding declines): for tests.

        Parameters
        ----------
        *args, **kwargs
            The reference's arguments.

        Returns
        -------
        object
            What the op returns.
        """
        binding, _, cuda = self._resolve(args[0], keep=False)
        if not cuda:
            return self._run(binding, 0, args, kwargs, always=True)
        with device_of(args[0]):
            return self._run(binding, 0, args, kwargs, always=True)

    def _resolve(self, first, keep: bool = True) -> tuple:
        """(binding or None, the size from which it runs, whether on a GPU) for arrays like ``first``, kept by type."""
        dev = device_of(first)
        plan = (self.bindings.get(dev.type), self._min_size[dev.type], dev.type == "cuda")
        if keep:
            self._resolved[type(first)] = plan
        return plan

    def has_kernel(self, device_type: str) -> bool:
        """True when this op runs a kernel (not its reference) on ``device_type``, kernels being switched on.

        Parameters
        ----------
        device_type : str
            "cpu" or "cuda".

        Returns
        -------
        bool
            Whether a binding is registered there and kernels are on.
        """
        return _ENABLED[0] and device_type in self.bindings

    def __repr__(self):
        return f"<op {self.name}: kernels for {sorted(self.bindings) or 'no device'}>"


def op(reference: Callable | None = None, *, size: Callable | None = None, min_size: dict | None = None):
    """Declare an op by its reference (``@op`` or ``@op(size=..., min_size=...)``).

    ``size(*args, **kwargs)``: the elements an input is judged by against ``MIN_SIZE`` (default: the
    first argument's); ``min_size``: this op's thresholds, where they differ.

    Parameters
    ----------
    reference : callable or None, default=None
        The op's definition in ``xp`` code; None when ``op`` is called with keywords only, as a
        decorator factory.
    size : callable or None, default=None
        ``size(*args, **kwargs)``: the elements an input is judged by; None: the first argument's.
    min_size : dict or None, default=None
        This op's minimum sizes by device type, where they differ from ``MIN_SIZE``.

    Returns
    -------
    Op or callable
        The op; with ``reference=None``, a decorator that makes it.

    Examples
    --------
    >>> from gpunn.kernels.op import op
    >>> @op
    ... def twice(x):
    ...     return x + x  # y = 2 x, the shape and dtype of x
    >>> twice
    <op twice: kernels for no device>
    >>> twice(np.ones(3, np.float32))  # no kernel registered: the reference runs
    array([2., 2., 2.], dtype=float32)
    """
    if reference is None:
        return lambda ref: Op(ref, size, min_size)
    return Op(reference, size, min_size)


@contextlib.contextmanager
def use_kernels(enabled: bool):
    """Within the block, registered kernels are used (True) or every op runs its reference (False).

    ``GPUNN_KERNELS=0`` in the environment switches them off for the whole process.

    Parameters
    ----------
    enabled : bool
        Whether ops run their kernels in the block.

    Yields
    ------
    None
        Control to the block; the previous setting comes back after it.

    Examples
    --------
    >>> with gn.ops.use_kernels(False):
    ...     gn.ops.has_kernel("activation", "cpu")
    False
    """
    previous, _ENABLED[0] = _ENABLED[0], bool(enabled)
    try:
        yield
    finally:
        _ENABLED[0] = previous


def has_kernel(op_name: str, device_type: str) -> bool:
    """True when ``op_name`` runs a fused kernel (not its reference) on ``device_type`` ("cpu"/"cuda").

    Parameters
    ----------
    op_name : str
        The op's name, a key of :data:`~gpunn.ops.REGISTRY` ("activation", "matmul", ...).
    device_type : str
        "cpu" or "cuda".

    Returns
    -------
    bool
        Whether a kernel is registered for that device type and kernels are switched on.

    Raises
    ------
    KeyError
        If there is no op of that name.

    Examples
    --------
    >>> with gn.ops.use_kernels(True):
    ...     gn.ops.has_kernel("activation", "cpu"), gn.ops.has_kernel("pad_images", "cuda")
    (True, False)
    """
    return REGISTRY[op_name].has_kernel(device_type)


def active_kernels() -> dict[str, str]:
    """Which implementation each op uses per device type, e.g. ``{"activation[cpu]": "gpunn.kernels.activations"}``.

    Returns
    -------
    dict of str to str
        ``"op[device type]"`` -> the module of its kernel binding, or "reference" where the op runs
        its reference there (no kernel, or kernels switched off).

    Examples
    --------
    >>> with gn.ops.use_kernels(True):
    ...     kernels = gn.ops.active_kernels()
    >>> kernels["activation[cpu]"], kernels["pad_images[cuda]"]
    ('gpunn.kernels.activations', 'reference')
    """
    out = {}
    for name, o in REGISTRY.items():
        for dev in ("cpu", "cuda"):
            out[f"{name}[{dev}]"] = o.bindings[dev].__module__ if o.has_kernel(dev) else "reference"
    return out
