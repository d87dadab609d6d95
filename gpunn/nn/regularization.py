"""L2 regularization: the penalty (lambda / 2) sum ||W||^2 that cs231n adds to the data loss.

The optimizers apply its gradient, lambda W, inside their fused update (``weight_decay``);
these functions give the penalty's value, so the full objective (data loss + penalty)
can be reported and gradient-checked with the same definition.
"""

from __future__ import annotations

from .parameter import Parameter


def decayed(parameters, decay_biases: bool = False) -> list[Parameter]:
    """The parameters the penalty applies to: those marked ``decay`` (weights), or all with ``decay_biases``."""
    return [p for p in parameters if p.decay or decay_biases]


def l2_penalty(parameters, reg: float, decay_biases: bool = False) -> float:
    """(reg / 2) * sum of ||p||^2 over the decayed parameters, as a Python float (reads the device once)."""
    if not reg:
        return 0.0
    total = sum((p.data.reshape(-1) @ p.data.reshape(-1)) for p in decayed(parameters, decay_biases))
    return 0.5 * reg * float(total)


def l2_penalty_gradient(p: Parameter, reg: float):
    """The penalty's gradient w.r.t. one decayed parameter: reg * W."""
    return p.data * p.data.dtype.type(reg)
