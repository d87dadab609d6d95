"""Linear: the affine gate y = x W + b."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE
from ..validation import check_int
from .init import as_rng, init_std, normal_weights
from .module import Module, computes_as
from .parameter import Parameter


class Linear(Module):
    """y = x W + b for x of shape (N, in_features); W is (in_features, out_features), b is (out_features,).

    The affine gate. Forward ``y = x W + b``, b broadcast over the batch (saves x); backward, from the
    upstream gradient dout (N, out_features)::

        dW = x^T dout        accumulated into W.grad
        db = dout summed over the batch
        dx = dout W^T        returned, (N, in_features)

    Weights are drawn from N(0, std^2) on the host in float64 (the same seed gives the same weights
    on every device and dtype) and stored in the layer's dtype (float32 until :meth:`~gpunn.nn.Module.to`
    says otherwise); biases start at 0 and are not weight-decayed.

    Parameters
    ----------
    in_features : int
        Input features per sample, >= 1.
    out_features : int
        Output features per sample, >= 1.
    init : {"he", "xavier"} or float, default="he"
        The weights' standard deviation: "he" sqrt(2 / in_features) (for ReLU nets), "xavier"
        sqrt(2 / (in_features + out_features)), or a positive float.
    bias : bool, default=True
        Whether to add the bias b; without it ``b`` is None.
    rng : None, int or numpy.random.Generator, default=None
        Where the weights come from: an int seed or a Generator for reproducible weights, None for
        fresh entropy.

    Attributes
    ----------
    W : Parameter
        The weights, (in_features, out_features).
    b : Parameter or None
        The bias, (out_features,); None with ``bias=False``.

    Raises
    ------
    ValueError
        If ``in_features`` or ``out_features`` is below 1 or ``init`` is not "he", "xavier" or a
        positive float. A forward pass raises it too for an input not of shape (N, in_features).
    TypeError
        If ``in_features`` or ``out_features`` is not an integer, or ``rng`` is not a seed or a
        Generator.

    Examples
    --------
    >>> layer = gn.nn.Linear(3, 2, rng=0)
    >>> layer
    Linear(3, 2)
    >>> layer.W.shape, layer.b.shape
    ((3, 2), (2,))
    >>> y = layer.forward(np.ones((4, 3)))
    >>> y.shape, y.dtype
    ((4, 2), dtype('float32'))
    >>> dx = layer.backward(np.ones((4, 2)))
    >>> dx.shape
    (4, 3)
    >>> layer.W.grad  # x^T dout: each entry sums 4 ones
    array([[4., 4.],
           [4., 4.],
           [4., 4.]], dtype=float32)
    >>> layer.b.grad
    array([4., 4.], dtype=float32)
    """

    def __init__(self, in_features: int, out_features: int, init="he", bias: bool = True, rng=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        self.out_features = check_int("out_features", out_features, low=1)
        std = init_std(init, self.in_features, self.out_features)
        w = normal_weights((self.in_features, self.out_features), std, as_rng(rng))
        self.W = Parameter(w.astype(DEFAULT_DTYPE))
        self.b = Parameter(np.zeros(self.out_features, DEFAULT_DTYPE), decay=False) if bias else None

    def forward(self, x):
        x = self._checked(x)
        self._cache = x
        y = ops.matmul(x, self.W.data)  # x W
        if self.b is not None:
            y += self.b.data  # + b, broadcast over the batch
        return y

    def backward(self, dout, input_grad: bool = True):
        x = self._saved()
        dout = self._upstream(dout, (x.shape[0], self.out_features))
        self.W.accumulate(ops.matmul(x.T, dout))  # dW = x^T dout
        if self.b is not None:
            self.b.accumulate(dout.sum(axis=0))  # db = dout summed over the batch
        return ops.matmul(dout, self.W.data.T) if input_grad else None  # dx = dout W^T

    # ------------------------------------------------------------------ fused with the activation after it
    def forward_fused(self, x, act):
        """``act(x W + b)`` for the activation gate that follows: the bias and f share one pass over x W.

        The result equals ``act.forward(self.forward(x))``; each gate still keeps what its own backward
        needs. :class:`~gpunn.nn.Sequential` calls it for a layer and an activation whose ``fusable``
        are both true.

        Parameters
        ----------
        x : ndarray
            The input, (N, in_features).
        act : Activation
            The activation gate that follows this layer.

        Returns
        -------
        ndarray
            f(x W + b), (N, out_features), in the layer's dtype.
        """
        x = self._checked(x)
        z = ops.matmul(x, self.W.data)
        if self.b is not None:
            y = ops.bias_activation(z, self.b.data, act)  # f(z + b) in one pass; z holds z + b
        else:
            y = ops.activation(z, act)
        self._cache = x
        act._cache = y if act.backward_from == "output" else z
        return y

    def backward_fused(self, dout, act, input_grad: bool = True):
        """Backward of f(x W + b) from the gradient w.r.t. its output: dz and db in one pass, then the GEMMs.

        After :meth:`forward_fused` with the same ``act``. Accumulates dW and db as :meth:`backward` does.

        Parameters
        ----------
        dout : ndarray
            The upstream gradient w.r.t. the activation's output, (N, out_features).
        act : Activation
            The activation gate passed to :meth:`forward_fused`.
        input_grad : bool, default=True
            Whether to compute the gradient w.r.t. the input (False skips its GEMM: a first layer
            fed with data needs none).

        Returns
        -------
        ndarray or None
            dx = dz W^T, (N, in_features), with dz = df(dout); None with ``input_grad=False``.
        """
        x, saved = self._saved(), act._saved()
        dz, db = ops.bias_activation_backward(act._upstream(dout, saved.shape), saved, act)
        self.W.accumulate(ops.matmul(x.T, dz))
        if self.b is not None:
            self.b.accumulate(db)
        return ops.matmul(dz, self.W.data.T) if input_grad else None

    def _checked(self, x):
        x = self._input(x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        return x

    @property
    def fusable(self) -> bool:
        """True when this gate is Linear's own computation (a subclass overriding a pass runs its own code)."""
        return computes_as(self, Linear)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.b is not None else ", bias=False")
