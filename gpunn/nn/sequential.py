"""Sequential: layers applied in order, backpropagated in reverse."""

from __future__ import annotations

from .module import Module


class Sequential(Module):
    """A chain of layers: forward runs them first to last, backward last to first.

    Errors from a layer are re-raised with its position, e.g.
    ``layer 2: Linear(100, 10) expects input of shape (N, 100), got (200, 50)``.
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential layer {i} must be a gpunn.nn.Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def append(self, layer: Module) -> "Sequential":
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential layer must be a gpunn.nn.Module, got {type(layer).__name__}")
        self.layers.append(layer.to(self.device, self.dtype))
        return self

    def forward(self, x):
        if not self.layers:
            raise ValueError("Sequential has no layers")
        for i, layer in enumerate(self.layers):
            x = _located(i, layer.forward, x)
        self._cache = True
        return x

    def backward(self, dout, input_grad: bool = True):
        """Backpropagate through every layer; ``input_grad=False`` skips the first layer's input gradient."""
        self._saved()
        for i in reversed(range(len(self.layers))):
            dout = _located(i, self.layers[i].backward, dout, input_grad or i > 0)
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


def _located(i: int, fn, *args):
    """Call ``fn(*args)``, prefixing a bad-input error with the layer's position."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        raise type(e)(f"layer {i}: {e}") from e
