"""Gradient checking: compare analytic gradients with centered finite differences.

The checks copy the layer or model, cast the copy to float64 (float32 rounding
would swamp the differences) and return the largest relative error found, so the
caller's own model is never touched. Rules of thumb in float64 (cs231n's): below
1e-7 is right; up to 1e-4 is fine where the function has kinks (ReLU, hinge) near
the checked point; up to 1e-2 is suspicious; above that, the backward pass is wrong.
"""

from __future__ import annotations

import copy

import numpy as np

from .devices import array_module, device_of, on_device, to_numpy
from .nn.losses import Loss
from .nn.module import Module, backward
from .nn.regularization import decayed, l2_penalty, l2_penalty_gradient
from .validation import check_int, check_number

__all__ = ["GradCheck", "check_expression", "check_layer", "check_loss", "check_model", "check_sparse",
           "numerical_gradient", "rel_error"]

FLOAT64 = np.dtype(np.float64)


def rel_error(a, b) -> float:
    """The largest difference of two gradients relative to their scale: ``max |a - b| / max(max |a|, max |b|, 1e-8)``.

    Parameters
    ----------
    a, b : array_like
        Arrays of one shape (NumPy or CuPy), e.g. an analytic and a numerical gradient.

    Returns
    -------
    float
        0 for equal arrays; rules of thumb in float64 are in this module's description.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> gn.gradcheck.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.002]))
    0.0009990...
    """
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


@on_device(lambda f, x, *rest: device_of(x))
def numerical_gradient(f, x, df=None, h: float = 1e-5):
    """Centered-difference gradient of ``sum(f() * df)`` with respect to ``x``.

    ``x`` is nudged in place by +h and -h one coordinate at a time and restored: ``(f(x + h) -
    f(x - h)) / 2h`` per coordinate, 2 calls of ``f`` each.

    Parameters
    ----------
    f : callable
        Takes no arguments and reads ``x``; returns an array (or a number).
    x : array
        The point, NumPy or CuPy, changed in place during the call and restored.
    df : array, default=None
        The upstream gradient, ``f()``'s shape; None means ones (for a scalar ``f``, the plain
        derivative).
    h : float, default=1e-05
        The step, > 0.

    Returns
    -------
    array
        The gradient, same shape, dtype and device as ``x``.

    Raises
    ------
    ValueError
        If ``h`` is not positive.

    Examples
    --------
    >>> x = np.array([1.0, -2.0])
    >>> gn.gradcheck.numerical_gradient(lambda: (x ** 2).sum(), x)    # 2 x
    array([ 2., -4.])
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


@on_device(lambda f, x, *rest: device_of(x))
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
    """Check ``analytic`` at ``num_checks`` random coordinates only, for parameters too big to check whole.

    Parameters
    ----------
    f : callable
        Takes no arguments, reads ``x`` and returns a scalar.
    x : array
        The point, nudged in place and restored.
    analytic : array
        The gradient to check, ``x``'s shape.
    num_checks : int, default=10
        How many random coordinates.
    h : float, default=1e-05
        The finite-difference step, > 0.
    seed : int, default=None
        Picks the coordinates; None: fresh ones each call.

    Returns
    -------
    float
        The relative error (:func:`rel_error`) over the sampled coordinates.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((50, 40))
    >>> gn.gradcheck.check_sparse(lambda: float((x ** 3).sum()), x, 3 * x ** 2, seed=0) < 1e-7
    True
    """
    return joint_rel_error([sampled_gradients(f, x, analytic, num_checks, h, seed)])


def _float64_copy(module: Module) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"expected a gpunn.nn.Module, got {type(module).__name__}")
    return copy.deepcopy(module).to(dtype=FLOAT64)


class GradCheck(float):
    """The result of a gradient check: the largest relative error (a float), with a per-part report.

    Each part's error is relative to the scale of its own gradient, floored at ``FLOOR`` of the
    largest part's scale: a gradient that is zero in exact arithmetic (a bias feeding batchnorm)
    holds only rounding noise, which is not an error. ``str()`` prints the table with cs231n's
    reading of the largest error.

    Parameters
    ----------
    pairs : dict of str to tuple of array
        (analytic, numerical) gradients of each part, by name.
    checked : dict of str to tuple of int
        (coordinates checked, coordinates in all) of each part.

    Attributes
    ----------
    errors : dict of str to float
        Each part's relative error ("input", or a parameter's dotted name).
    checked : dict of str to tuple of int
        As given.

    Raises
    ------
    ValueError
        If a part's two gradients differ in shape.

    Examples
    --------
    >>> check = gn.gradcheck.check_layer(gn.nn.Linear(3, 2, rng=0), np.ones((4, 3)))
    >>> float(check) < 1e-7, sorted(check.errors)
    (True, ['W', 'b', 'input'])
    >>> print(check)                                   # doctest: +ELLIPSIS
    part   rel. error  coordinates checked
    input  ...
    largest relative error ... (correct)
    """

    FLOOR = 1e-2

    def __new__(cls, pairs: dict, checked: dict):
        arrays = {name: (to_numpy(a).astype(np.float64), to_numpy(n).astype(np.float64)) for name, (a, n) in pairs.items()}
        for name, (a, n) in arrays.items():
            if a.shape != n.shape:
                raise ValueError(f"{name}: the analytic gradient has shape {a.shape}, the numerical one {n.shape}")
        scales = {name: max(np.abs(a).max(initial=0), np.abs(n).max(initial=0)) for name, (a, n) in arrays.items()}
        floor = max(max(scales.values(), default=0.0) * cls.FLOOR, 1e-8)
        errors = {name: float(np.abs(a - n).max(initial=0) / max(scales[name], floor))
                  for name, (a, n) in arrays.items()}
        report = super().__new__(cls, max(errors.values(), default=0.0))
        report.errors, report.checked = errors, dict(checked)
        return report

    def __str__(self):
        width = max((len(n) for n in self.errors), default=4)
        lines = [f"{'part':<{width}}  rel. error  coordinates checked"]
        for name, err in self.errors.items():
            done, total = self.checked[name]
            lines.append(f"{name:<{width}}  {err:10.2e}  {'all ' + str(total) if done == total else f'{done} of {total} (sampled)'}")
        lines.append(f"largest relative error {float(self):.2e} ({verdict(float(self))})")
        return "\n".join(lines)

    def __repr__(self):
        return f"GradCheck({float(self):.3e}, " + ", ".join(f"{k}={v:.2e}" for k, v in self.errors.items()) + ")"


def verdict(error: float) -> str:
    """cs231n's reading of a float64 relative error."""
    if error < 1e-7:
        return "correct"
    if error < 1e-4:
        return "fine if the function has kinks (ReLU, hinge) near the checked point, suspicious otherwise"
    if error < 1e-2:
        return "suspicious: probably a bug"
    return "wrong: the backward pass does not match the forward pass"


AUTO_FULL = 200  # num_checks="auto": parameters this small are checked in full, larger ones sampled
AUTO_SAMPLES = 20


def _gradient_pair(name: str, f, x, analytic, num_checks, h, seed, df=None):
    """(analytic values, numerical values) and (checked, total) for one part, in full or at sampled coordinates."""
    if analytic is None:
        raise ValueError(f"{name} has no gradient after backward: the layer that owns it did not "
                         f"accumulate into {name}.grad (Parameter.accumulate)")
    if tuple(analytic.shape) != tuple(x.shape):
        raise ValueError(f"{name}.grad has shape {tuple(analytic.shape)}, {name} has shape {tuple(x.shape)}")
    size = int(np.prod(x.shape))
    if num_checks == "auto":
        num_checks = None if size <= AUTO_FULL else AUTO_SAMPLES
    if num_checks is None or num_checks >= size:
        return (analytic, numerical_gradient(f, x, df, h)), (size, size)
    if df is not None:
        dfn = to_numpy(df)
        g = lambda: float((to_numpy(f()) * dfn).sum())  # noqa: E731
    else:
        g = f
    numeric, exact = sampled_gradients(g, x, analytic, num_checks, h, seed)
    return (exact, numeric), (num_checks, size)


def _num_checks(num_checks):
    if num_checks is None or num_checks == "auto":
        return num_checks
    return check_int("num_checks", num_checks, low=1)


@on_device(lambda layer, *rest: layer.device)
def check_layer(layer: Module, x, h: float = 1e-5, seed: int = 0, num_checks="auto") -> GradCheck:
    """Check ``layer``'s backward against numerical gradients, with respect to its input and every parameter.

    The checked function is ``sum(forward(x) * dout)`` for a random ``dout``, on a float64 copy of
    the layer (the layer itself is not touched). Random layers (dropout) are reseeded before each
    forward so every evaluation uses the same mask.

    Parameters
    ----------
    layer : gpunn.nn.Module
        The layer (or model) to check.
    x : array_like
        An input batch.
    h : float, default=1e-05
        The finite-difference step, > 0.
    seed : int, default=0
        Seeds ``dout``, the sampled coordinates and random layers.
    num_checks : "auto", int or None, default="auto"
        "auto": parts of at most 200 entries in full, larger ones at 20 random coordinates; None:
        every coordinate; an int: that many random coordinates per part.

    Returns
    -------
    GradCheck
        The largest relative error, with a per-part report.

    Raises
    ------
    TypeError
        If ``layer`` is not a :class:`gpunn.nn.Module`.
    ValueError
        If a parameter got no gradient or one of the wrong shape (named), or ``num_checks`` or
        ``h`` is out of range.

    Examples
    --------
    >>> gn.gradcheck.check_layer(gn.nn.Sequential(gn.nn.Linear(4, 3, rng=0), gn.nn.Tanh()),
    ...                          np.random.default_rng(0).standard_normal((5, 4))) < 1e-7
    True
    """
    num_checks = _num_checks(num_checks)
    layer = _float64_copy(layer)
    x = layer.device.asarray(x, dtype=FLOAT64)

    def f():
        return layer.seed(seed).forward(x)

    out = f()
    dout = layer.device.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    layer.zero_grad()
    dx = backward(layer, dout, input_grad=True)
    parts = [("input", x, dx)] + [(name, p.data, p.grad) for name, p in layer.named_parameters()]
    pairs, checked = {}, {}
    for name, data, grad in parts:
        pairs[name], checked[name] = _gradient_pair(name, f, data, grad, num_checks, h, seed, dout)
    return GradCheck(pairs, checked)


@on_device(lambda loss, scores, *rest: device_of(scores))
def check_loss(loss: Loss, scores, y=None, h: float = 1e-5) -> float:
    """Check a loss's gradient with respect to the scores against a numerical one, in float64.

    Parameters
    ----------
    loss : gpunn.nn.Loss
        The loss.
    scores : array_like
        (N, C) scores (copied to float64).
    y : array_like, default=None
        The labels, as ``loss.forward`` takes them.
    h : float, default=1e-05
        The finite-difference step, > 0.

    Returns
    -------
    float
        The relative error (:func:`rel_error`).

    Raises
    ------
    TypeError
        If ``loss`` is not a :class:`gpunn.nn.Loss`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    >>> gn.gradcheck.check_loss(gn.nn.SoftmaxCrossEntropy(), scores, y) < 1e-7
    True
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a gpunn.nn.Loss, got {type(loss).__name__}")
    xp = array_module(scores)
    s = xp.asarray(scores, dtype=FLOAT64).copy()
    loss.forward(s, y)
    analytic = loss.backward()
    return rel_error(analytic, numerical_gradient(lambda: loss.forward(s, y), s, None, h))


@on_device(lambda model, *rest: model.device)
def check_model(model: Module, loss: Loss, X, y, reg: float = 0.0, h: float = 1e-5, num_checks="auto",
                seed: int = 0, decay_biases: bool = False) -> GradCheck:
    """Check the gradient of the objective ``loss(model(X), y) + (reg / 2) sum ||W||^2`` for every parameter.

    On a float64 copy of the model (the model itself is not touched). By default a big model is
    checked at sampled coordinates, so the check takes seconds.

    Parameters
    ----------
    model : gpunn.nn.Module
        The model.
    loss : gpunn.nn.Loss
        The data loss.
    X : array_like
        An input batch.
    y : array_like
        Its labels.
    reg : float, default=0.0
        The L2 strength: pass the optimizer's ``weight_decay``. The penalty covers the parameters
        marked ``decay`` (the weights), as the optimizers apply it; 0 checks the data loss alone.
    h : float, default=1e-05
        The finite-difference step, > 0.
    num_checks : "auto", int or None, default="auto"
        As in :func:`check_layer`.
    seed : int, default=0
        Seeds the sampled coordinates and random layers.
    decay_biases : bool, default=False
        Whether the penalty covers the biases too.

    Returns
    -------
    GradCheck
        ``print(result)`` shows each parameter's error by name and how many coordinates were checked.

    Raises
    ------
    TypeError
        If ``loss`` is not a :class:`gpunn.nn.Loss` or ``model`` not a :class:`gpunn.nn.Module`.
    ValueError
        If ``reg`` is negative, or a parameter got no gradient (named).

    Examples
    --------
    >>> model = gn.nn.Sequential(gn.nn.Linear(4, 8, rng=0), gn.nn.ReLU(), gn.nn.Linear(8, 3, rng=1))
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    >>> result = gn.gradcheck.check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y, reg=1e-2)
    >>> float(result) < 1e-5
    True
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a gpunn.nn.Loss, got {type(loss).__name__}")
    reg = check_number("reg", reg, low=0)
    num_checks = _num_checks(num_checks)
    model = _float64_copy(model)
    X = model.device.asarray(X, dtype=FLOAT64)
    params = model.named_parameters()
    penalized = {id(p) for p in decayed(model.parameters(), decay_biases)} if reg else set()

    def f():
        return loss.forward(model.seed(seed).forward(X), y) + l2_penalty(model.parameters(), reg, decay_biases)

    f()
    model.zero_grad()
    backward(model, loss.backward(), input_grad=False)
    pairs, checked = {}, {}
    for name, p in params:
        grad = p.grad
        if grad is not None and id(p) in penalized:
            grad = grad + l2_penalty_gradient(p, reg)
        pairs[name], checked[name] = _gradient_pair(name, f, p.data, grad, num_checks, h, seed)
    return GradCheck(pairs, checked)


# --------------------------------------------------------------------------- autograd expressions


def check_expression(f, *inputs, h: float = 1e-5, seed: int = 0) -> GradCheck:
    """Check autograd's gradients of ``f(*tensors)`` against numerical ones, in float64.

    The checked function is ``sum(f(...) * dout)`` for a random ``dout``, so every output
    element's gradient counts.

    Parameters
    ----------
    f : callable
        Takes one :class:`gpunn.autograd.Tensor` per input and returns a Tensor.
    *inputs : array_like or gpunn.autograd.Tensor
        The point; each becomes a float64 tensor on its own device (a Tensor's value is used).
    h : float, default=1e-05
        The finite-difference step, > 0.
    seed : int, default=0
        Seeds ``dout``.

    Returns
    -------
    GradCheck
        One part per input ("input 0", "input 1", ...).

    Raises
    ------
    ValueError
        Without inputs.
    TypeError
        If ``f`` does not return a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = np.random.default_rng(0).standard_normal((3, 4))
    >>> gn.gradcheck.check_expression(lambda t: ag.tanh(t) * t, x) < 1e-7
    True
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

    pairs = {f"input {i}": (xp.zeros_like(a) if t.grad is None else t.grad, numerical_gradient(value, a, dout, h))
             for i, (t, a) in enumerate(zip(leaves, arrays))}
    return GradCheck(pairs, {name: (a.size, a.size) for name, a in zip(pairs, arrays)})
