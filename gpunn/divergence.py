"""The divergence flag: the first step whose loss or gradients were not finite, recorded on the device.

Checking the loss on the host would stop the GPU at every step. Instead each step adds, on
the device, whether loss + sum of g.g is finite (it is NaN or infinite exactly when the loss
or a gradient is, or when gradients pass ~1e19 in float32, which is divergence too), and the
first bad step's number sticks. The update kernels read the same array and change nothing
from that step on (``Optimizer.step(skip=flag.state)``), as PyTorch's fused optimizers read
``found_inf``. The host reads the flag only when it chooses: every ``log_every`` steps and at
the end of each epoch.
"""

from __future__ import annotations

import numpy as np

from .devices import Device


class DivergenceFlag:
    """``state``: int64 [first bad step (1-based; 0 while none), steps checked], on ``device``."""

    def __init__(self, device: Device):
        self.device = device
        self.state = device.asarray(np.zeros(2, np.int64))

    def reset(self) -> None:
        """Forget past steps (at the start of an epoch); steps are counted from 1 again."""
        self.state[...] = 0

    def check(self, loss, grads) -> None:
        """Count one step; record it if it is the first whose ``loss`` or ``grads`` are not finite. No host read."""
        xp = self.device.xp
        total = loss
        for g in grads:
            flat = g.reshape(-1)
            total = total + flat @ flat
        self.state[1] += 1
        first = ~xp.isfinite(total) & (self.state[0] == 0)
        self.state[0] = xp.where(first, self.state[1], self.state[0])
