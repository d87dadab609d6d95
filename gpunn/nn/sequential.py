"""Sequential: layers applied in order, backpropagated in reverse."""

from __future__ import annotations

from .activations import Activation
from .module import Module, backward


class Sequential(Module):
    """A chain of layers: forward runs them first to last, backward last to first.

    Errors from a layer are re-raised with its position, e.g.
    ``layer 2: Linear(100, 10) expects input of shape (N, 100), got (200, 50)``.

    A ``Linear`` or ``Conv2d`` followed by a built-in activation runs as one fused step
    (``fuse=True``): the bias add and the activation share one pass over the GEMM's output,
    forward and backward. The result is the same as running the two gates one after the
    other, and only pairs known to be that computation are fused (each layer's ``fusable``):
    a subclass that overrides ``forward`` or ``backward`` always runs its own code.

    ``backward(dout)`` returns ``None``: a model is fed data, and nobody needs the
    gradient w.r.t. the data, so the first layer's input-gradient product (as large as
    its forward GEMM) is skipped. ``backward(dout, input_grad=True)`` returns it (for a
    saliency map, or a Sequential used as one block inside another). Single gates
    (``Linear``, ``ReLU``, ...) keep returning ``dx`` from ``backward(dout)``, as cs231n's do.

    Parameters
    ----------
    *layers : Module
        The layers, first to last. ``model[i]`` is layer i, ``model[i:j]`` a Sequential of some of
        them, ``len(model)`` their number.
    fuse : bool, default=True
        Whether to fuse each ``Linear`` or ``Conv2d`` with the built-in activation after it.

    Raises
    ------
    TypeError
        If a layer is not a :class:`~gpunn.nn.Module`.

    Examples
    --------
    >>> model = gn.nn.Sequential(gn.nn.Linear(4, 8, rng=0), gn.nn.ReLU(), gn.nn.Linear(8, 3, rng=1))
    >>> model
    Sequential(
      (0): Linear(4, 8)
      (1): ReLU()
      (2): Linear(8, 3)
    )
    >>> scores = model.forward(np.ones((5, 4)))
    >>> scores.shape
    (5, 3)
    >>> model.backward(np.ones((5, 3))) is None  # the parameters' gradients, no input gradient
    True
    >>> model[0].W.grad.shape
    (4, 8)
    >>> model.forward(np.ones((5, 3)))
    Traceback (most recent call last):
    ...
    ValueError: layer 0: Linear(4, 8) expects input of shape (N, 4), got (5, 3)
    """

    def __init__(self, *layers: Module, fuse: bool = True):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential layer {i} must be a gpunn.nn.Module, got {type(layer).__name__}")
        self.layers = list(layers)
        self.fuse = bool(fuse)
        self._plan = None  # (the layers it was made for, their fused steps): see _steps

    def append(self, layer: Module) -> "Sequential":
        """Add ``layer`` at the end, moved to this model's device and dtype.

        Parameters
        ----------
        layer : Module
            The layer to add.

        Returns
        -------
        Sequential
            This model, for chaining.

        Raises
        ------
        TypeError
            If ``layer`` is not a :class:`~gpunn.nn.Module`.

        Examples
        --------
        >>> model = gn.nn.Sequential(gn.nn.Linear(4, 8, rng=0)).append(gn.nn.Tanh())
        >>> len(model), model[-1]
        (2, Tanh())
        """
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential layer must be a gpunn.nn.Module, got {type(layer).__name__}")
        self.layers.append(layer.to(self.device, self.dtype))
        return self

    def _steps(self):
        """(index, layer, activation fused into it or None), in order: worked out once per list of layers."""
        key = (self.fuse, *map(id, self.layers))
        if self._plan is None or self._plan[0] != key:
            self._plan = (key, self._fused_steps())
        return self._plan[1]

    def _fused_steps(self):
        steps, i = [], 0
        while i < len(self.layers):
            layer, nxt = self.layers[i], self.layers[i + 1] if i + 1 < len(self.layers) else None
            if self.fuse and getattr(layer, "fusable", False) and isinstance(nxt, Activation) and nxt.fusable:
                steps.append((i, layer, nxt))
                i += 2
            else:
                steps.append((i, layer, None))
                i += 1
        return steps

    def forward(self, x):
        """Run ``x`` through every layer, first to last; a fusable layer and its activation run as one step.

        Parameters
        ----------
        x : ndarray
            The input batch, (N, ...), in the shape the first layer expects (NumPy or CuPy).

        Returns
        -------
        ndarray
            The last layer's output, (N, ...), on the model's device.

        Raises
        ------
        ValueError
            If the model has no layers, or a layer refuses its input (the message starts with the
            layer's position, ``layer 2: ...``); a layer's ``TypeError`` is located the same way.
        """
        if not self.layers:
            raise ValueError("Sequential has no layers")
        steps = self._steps()
        for i, layer, act in steps:
            try:
                x = layer.forward(x) if act is None else layer.forward_fused(x, act)
            except (ValueError, TypeError) as e:
                raise _located(i, e) from e
        self._cache = steps
        return x

    def backward(self, dout, input_grad: bool = False):
        """Backpropagate through every layer; the gradient w.r.t. the input only with ``input_grad=True``.

        Each layer accumulates its parameters' gradients; the upstream gradient goes from the last
        layer to the first.

        Parameters
        ----------
        dout : ndarray
            The gradient of the loss w.r.t. the last layer's output, its shape.
        input_grad : bool, default=False
            Whether to compute and return the gradient w.r.t. the model's input (for a saliency
            map, or a Sequential used as one block inside another).

        Returns
        -------
        ndarray or None
            The gradient w.r.t. the input, the input's shape, with ``input_grad=True``; else None.

        Examples
        --------
        >>> model = gn.nn.Sequential(gn.nn.Linear(4, 3, rng=0), gn.nn.ReLU())
        >>> _ = model.forward(np.ones((2, 4)))
        >>> model.backward(np.ones((2, 3)), input_grad=True).shape
        (2, 4)
        """
        for i, layer, act in reversed(self._saved()):
            wanted = input_grad or i > 0
            try:
                dout = backward(layer, dout, wanted) if act is None else layer.backward_fused(dout, act, wanted)
            except (ValueError, TypeError) as e:
                raise _located(i, e) from e
        return dout

    def __getitem__(self, i):
        if not isinstance(i, slice):
            return self.layers[i]
        part = Sequential(*self.layers[i])
        part.device, part.dtype = self.device, self.dtype
        return part

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)" if inner else "Sequential()"


def _located(i: int, error: Exception) -> Exception:
    """A bad-input error of layer ``i``, its message prefixed with the layer's position."""
    return type(error)(f"layer {i}: {error}")
