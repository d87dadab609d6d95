"""Jacobians: from backward passes, and by centered differences (the reference)."""

from __future__ import annotations

import numpy as np

from ..devices import array_module
from .core import Tensor, no_grad, tensor


def jacobian(f, x):
    """The Jacobian d f(x) / d x from backward passes, one per output element.

    Each pass has a one-hot upstream gradient: row i of the Jacobian is the gradient of output i.

    Parameters
    ----------
    f : callable
        Maps a :class:`Tensor` to a Tensor.
    x : Tensor or array_like
        The point; a Tensor's value is used (the caller's tensor keeps its ``grad``).

    Returns
    -------
    array
        Shape ``f(x).shape + x.shape``, on ``x``'s device.

    Raises
    ------
    TypeError
        If ``f`` does not return a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> W = ag.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float64", requires_grad=False)
    >>> ag.jacobian(lambda x: W @ x, np.array([1.0, -1.0]))             # d(W x)/dx = W
    array([[1., 2.],
           [3., 4.],
           [5., 6.]])
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
    """The Jacobian d f(x) / d x by centered differences in float64: the reference :func:`jacobian` is checked against.

    Parameters
    ----------
    f : callable
        Maps a :class:`Tensor` to a Tensor.
    x : Tensor or array_like
        The point (copied to float64).
    h : float, default=1e-05
        The finite-difference step.

    Returns
    -------
    array
        float64, shape ``f(x).shape + x.shape``, on ``x``'s device.

    Raises
    ------
    TypeError
        If ``f`` does not return a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = np.array([0.5, -1.0])
    >>> np.allclose(ag.numerical_jacobian(ag.tanh, x), ag.jacobian(ag.tanh, x), atol=1e-6)
    True
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
