"""The divergence flag: the first step whose loss or gradients were not finite, recorded on the device.

Checking the loss on the host would stop the GPU at every step. Instead each step checks, on
the device and in one launch over every gradient (``ops.nonfinite_check``), whether the loss and
each g * g are finite (NaN or infinite exactly when the loss or a gradient is, or when a gradient
passes ~1e19 in float32, which is divergence too), and the first bad step's number sticks. The
update kernels read the same array and change nothing from that step on
(``Optimizer.step(skip=flag.state)``), as PyTorch's fused optimizers read ``found_inf``. The host
reads the flag only when it chooses: every ``log_every`` steps and at the end of each epoch.

In mixed precision the same check is the loss scaler's (``gpunn/loss_scaler.py``): a non-finite
gradient is then an overflow of the scaled float16 gradients, which skips that one step and halves the
scale, not divergence. The flag records a step whose loss (float32, never scaled) is not finite, or
the scaler's ``max_consecutive_overflows``-th overflowed step in a row.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .devices import Device

_HALF = np.dtype(np.float16)


class DivergenceFlag:
    """``state``: int64 [first bad step (1-based; 0 while none), steps checked], on ``device``."""

    def __init__(self, device: Device):
        self.device = device
        self.state = device.asarray(np.zeros(2, np.int64))

    def reset(self) -> None:
        """Forget past steps (at the start of an epoch); steps are counted from 1 again."""
        self.state[...] = 0

    def check(self, loss, grads, scaler=None) -> None:
        """Count one step; record it if it is the first whose ``loss`` or ``grads`` are not finite. No host read.

        ``scaler``: a :class:`~gpunn.LossScaler` (mixed precision): the check also decides its step (see above).
        Gradients of float32 layers (batchnorm's) are checked by a first launch that only notes an overflow, the
        float16 ones by the launch that decides: one launch where all are float16.
        """
        loss = loss.reshape(1)
        if scaler is None:
            ops.nonfinite_check(loss, tuple(grads), self.state)
            return
        halves = tuple([g for g in grads if g.dtype == _HALF])
        others = tuple([g for g in grads if g.dtype != _HALF])
        if halves and others:
            ops.nonfinite_check(loss, others, self.state, scaler, False)
        ops.nonfinite_check(loss, halves or others, self.state, scaler, True)
