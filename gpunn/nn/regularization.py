"""L2 regularization: the penalty (lambda / 2) sum ||W||^2 that cs231n adds to the data loss.

The optimizers apply its gradient, lambda W, inside their fused update (``weight_decay``);
these functions give the penalty's value, so the full objective (data loss + penalty)
can be reported and gradient-checked with the same definition.
"""

from __future__ import annotations

from ..devices import to_numpy
from .parameter import Parameter


def decayed(parameters, decay_biases: bool = False) -> list[Parameter]:
    """The parameters the penalty applies to: those marked ``decay`` (weights), or all with ``decay_biases``.

    Parameters
    ----------
    parameters : iterable of Parameter
        The candidates (``model.parameters()``).
    decay_biases : bool, default=False
        Whether biases and normalisation parameters (``decay`` False) are penalised too.

    Returns
    -------
    list of Parameter
        The chosen parameters, in the order given.
    """
    return [p for p in parameters if p.decay or decay_biases]


def l2_penalty_array(parameters, reg: float, decay_biases: bool = False):
    """(reg / 2) * sum of ||p||^2 over the decayed parameters, as a 0-d array on their device (no host read).

    Parameters
    ----------
    parameters : iterable of Parameter
        The model's parameters; those :func:`decayed` chooses are summed.
    reg : float
        The regularization strength lambda.
    decay_biases : bool, default=False
        Whether parameters with ``decay`` False count too.

    Returns
    -------
    ndarray or None
        The penalty, a 0-d array in the weights' dtype on their device (from the float32 masters in
        mixed precision); None where ``reg`` is 0 or no parameter is chosen.
    """
    chosen = decayed(parameters, decay_biases)
    if not reg or not chosen:
        return None
    # the weights themselves (in mixed precision the float32 masters: a float16 sum of squares overflows at 65504)
    total = sum(p.weights.reshape(-1) @ p.weights.reshape(-1) for p in chosen)
    return total * total.dtype.type(0.5 * reg)


def l2_penalty(parameters, reg: float, decay_biases: bool = False) -> float:
    """(reg / 2) * sum of ||p||^2 over the decayed parameters, as a Python float (reads the device once).

    Parameters
    ----------
    parameters : iterable of Parameter
        The model's parameters; those :func:`decayed` chooses are summed.
    reg : float
        The regularization strength lambda.
    decay_biases : bool, default=False
        Whether parameters with ``decay`` False count too.

    Returns
    -------
    float
        The penalty; 0.0 where ``reg`` is 0 or no parameter is chosen.

    Examples
    --------
    >>> from gpunn.nn.regularization import l2_penalty
    >>> layer = gn.nn.Linear(2, 2, rng=0)
    >>> layer.W.assign(np.ones((2, 2), np.float32))
    >>> l2_penalty(layer.parameters(), reg=0.1)  # 0.1 / 2 * 4; the bias is not decayed
    0.2...
    """
    total = l2_penalty_array(parameters, reg, decay_biases)
    return 0.0 if total is None else float(to_numpy(total))


def l2_penalty_gradient(p: Parameter, reg: float):
    """The penalty's gradient w.r.t. one decayed parameter: reg * W.

    Parameters
    ----------
    p : Parameter
        A parameter the penalty applies to.
    reg : float
        The regularization strength lambda.

    Returns
    -------
    ndarray
        reg times the weights (the float32 masters in mixed precision): their shape, dtype and device.
    """
    return p.weights * p.weights.dtype.type(reg)
