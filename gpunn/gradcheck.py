"""Gradient checking: compare analytic gradients with centered finite differences.

The checks copy the layer or model, cast the copy to float64 (float32 rounding
would swamp the differences) and return the largest relative error found, so the
caller's own model is never touched. Rules of thumb in float64: below 1e-7 is
right; 1e-5 to 1e-3 is suspicious unless the function has kinks (ReLU, hinge) near
the checked point; above that, the backward pass is wrong.
"""

from __future__ import annotations

import copy

import numpy as np

from .devices import array_module, to_numpy
from .nn.losses import Loss
from .nn.module import Module
from .validation import check_int, check_number

FLOAT64 = np.dtype(np.float64)


def rel_error(a, b) -> float:
    """max |a - b| / max(max |a|, max |b|, 1e-8): the error relative to the gradients' scale."""
    return joint_rel_error([(a, b)])


def joint_rel_error(pairs) -> float:
    """:func:`rel_error` over several (analytic, numerical) pairs, against their common scale.

    A parameter whose gradient is identically zero (a bias feeding batchnorm) has
    only rounding noise in its numerical gradient; judged alone it would look wrong.
    Judged against the scale of the whole gradient, as here, it does not, while a
    wrong gradient in any part still shows.
    """
    pairs = [(to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)) for a, b in pairs]
    for a, b in pairs:
        if a.shape != b.shape:
            raise ValueError(f"rel_error needs arrays of one shape, got {a.shape} and {b.shape}")
    pairs = [(a, b) for a, b in pairs if a.size]
    if not pairs:
        return 0.0
    scale = max(max(np.abs(a).max(), np.abs(b).max()) for a, b in pairs)
    return float(max(np.abs(a - b).max() for a, b in pairs) / max(scale, 1e-8))


def numerical_gradient(f, x, df=None, h: float = 1e-5):
    """Centered-difference gradient of ``sum(f() * df)`` w.r.t. ``x``, same shape and device as ``x``.

    ``f`` takes no arguments and reads ``x``, which is nudged in place by +-h one
    coordinate at a time and restored. ``df`` is the upstream gradient (the shape of
    ``f()``'s output); ``None`` means ones (for a scalar ``f``, the plain derivative).
    """
    h = check_number("h", h, low=0, low_open=True)
    xp = array_module(x)
    grad = xp.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx].item()
        x[idx] = old + h
        plus = xp.array(f(), copy=True)
        x[idx] = old - h
        minus = xp.array(f(), copy=True)
        x[idx] = old
        diff = plus - minus
        grad[idx] = (diff if df is None else diff * df).sum() / (2 * h)
    return grad


def sampled_gradients(f, x, analytic, num_checks: int = 10, h: float = 1e-5, seed=None):
    """(numerical, analytic) values of a scalar ``f``'s gradient at ``num_checks`` random coordinates of ``x``."""
    num_checks = check_int("num_checks", num_checks, low=1)
    h = check_number("h", h, low=0, low_open=True)
    rng = np.random.default_rng(seed)
    analytic = to_numpy(analytic)
    numeric, exact = np.empty(num_checks), np.empty(num_checks)
    for k in range(num_checks):
        idx = tuple(int(rng.integers(n)) for n in x.shape)
        old = x[idx].item()
        x[idx] = old + h
        plus = float(f())
        x[idx] = old - h
        minus = float(f())
        x[idx] = old
        numeric[k], exact[k] = (plus - minus) / (2 * h), analytic[idx]
    return numeric, exact


def check_sparse(f, x, analytic, num_checks: int = 10, h: float = 1e-5, seed=None) -> float:
    """Relative error of ``analytic`` at ``num_checks`` random coordinates, for parameters too big to check whole."""
    return joint_rel_error([sampled_gradients(f, x, analytic, num_checks, h, seed)])


def _float64_copy(module: Module) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"expected a gpunn.nn.Module, got {type(module).__name__}")
    return copy.deepcopy(module).to(dtype=FLOAT64)


def check_layer(layer: Module, x, h: float = 1e-5, seed: int = 0) -> float:
    """Relative error between ``layer``'s backward and numerical gradients (see :func:`joint_rel_error`).

    Checks the gradient w.r.t. the input and every parameter, for the loss
    sum(forward(x) * dout) with a random ``dout``. Random layers (dropout) are
    reseeded before each forward so every evaluation uses the same mask.
    """
    layer = _float64_copy(layer)
    x = layer.device.asarray(x, dtype=FLOAT64)

    def f():
        return layer.seed(seed).forward(x)

    out = f()
    dout = layer.device.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    layer.zero_grad()
    dx = layer.backward(dout)
    pairs = [(dx, numerical_gradient(f, x, dout, h))]
    pairs += [(p.grad, numerical_gradient(f, p.data, dout, h)) for p in layer.parameters()]
    return joint_rel_error(pairs)


def check_loss(loss: Loss, scores, y=None, h: float = 1e-5) -> float:
    """Relative error between ``loss.backward()`` and the numerical gradient w.r.t. the scores."""
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a gpunn.nn.Loss, got {type(loss).__name__}")
    xp = array_module(scores)
    s = xp.asarray(scores, dtype=FLOAT64).copy()
    loss.forward(s, y)
    analytic = loss.backward()
    return rel_error(analytic, numerical_gradient(lambda: loss.forward(s, y), s, None, h))


def check_model(model: Module, loss: Loss, X, y, h: float = 1e-5, num_checks: int | None = None,
                seed: int = 0) -> float:
    """Relative error of the gradient of ``loss(model(X), y)`` w.r.t. every parameter (see :func:`joint_rel_error`).

    ``num_checks=None`` checks every coordinate; an int checks that many random
    coordinates per parameter (see :func:`check_sparse`), for big models.
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a gpunn.nn.Loss, got {type(loss).__name__}")
    model = _float64_copy(model)
    X = model.device.asarray(X, dtype=FLOAT64)

    def f():
        return loss.forward(model.seed(seed).forward(X), y)

    f()
    model.zero_grad()
    model.backward(loss.backward())
    if num_checks is None:
        return joint_rel_error([(p.grad, numerical_gradient(f, p.data, None, h)) for p in model.parameters()])
    return joint_rel_error([sampled_gradients(f, p.data, p.grad, num_checks, h, seed) for p in model.parameters()])


# --------------------------------------------------------------------------- autograd expressions


def check_expression(f, *inputs, h: float = 1e-5, seed: int = 0) -> float:
    """Relative error between autograd's gradients of ``f(*tensors)`` and numerical ones, in float64.

    ``inputs`` are arrays (or autograd Tensors, whose values are used); each becomes a
    float64 tensor on its own device. The checked function is sum(f(...) * dout) for a
    random ``dout``, so every output element's gradient counts. See :func:`joint_rel_error`.
    """
    from . import autograd as ag

    if not inputs:
        raise ValueError("check_expression needs at least one input array")
    arrays = [ag.tensor(x, dtype=FLOAT64).data.copy() for x in inputs]
    leaves = [ag.tensor(a) for a in arrays]
    out = f(*leaves)
    if not isinstance(out, ag.Tensor):
        raise TypeError(f"f must return an autograd Tensor, got {type(out).__name__}")
    xp = array_module(out.data)
    dout = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(dout)

    def value():
        with ag.no_grad():
            return f(*[ag.Tensor(a) for a in arrays]).data

    pairs = [(xp.zeros_like(a) if t.grad is None else t.grad, numerical_gradient(value, a, dout, h))
             for t, a in zip(leaves, arrays)]
    return joint_rel_error(pairs)
