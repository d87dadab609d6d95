"""Dynamic loss scaling for float16 training: PyTorch's ``GradScaler`` rule, kept and applied on the device.

float16 holds magnitudes from about 6e-8 to 65504: small gradients of a float16 backward pass underflow to
0. Scaling the loss by S (2^16 to begin with) scales every gradient by S and lifts them into range; the
update divides by S again. Too large an S makes some gradient overflow to infinity: that step is skipped
and S halved. After ``growth_interval`` good steps in a row S doubles, so it stays near the largest value
that does not overflow. This is ``torch.amp.GradScaler``'s rule, step for step (tests/test_loss_scaler.py
holds it to PyTorch's on the same overflows).

Nothing of it runs on the host during a step. The scaler's state is one float32 array on the device
(its layout: ``gpunn/kernels/multi_tensor.py``); the fused loss kernel multiplies the gradient by its
scale, the all-finite check's last thread decides the step and updates the scale, and the optimizer's
multi-tensor update reads the decision (skip, or unscale by 1/S) from the same array.

Overflow and divergence: an overflowed step is not divergence (the gradients of a sound model overflow
now and then at a large S). The Trainer's divergence flag still catches a loss that is not finite (the
loss is computed in float32 and never scaled, so scaling cannot be the cause), and counts
``max_consecutive_overflows`` overflowed steps in a row (S halved each time: 32 from 2^16 reach 2^-16,
where only gradients beyond 2^32 overflow) as divergence too.
"""

from __future__ import annotations

import math

import numpy as np

from .devices import Device
from .kernels.multi_tensor import FOUND, IN_A_ROW, INV_SCALE, SCALE, SCALE_SLOTS, SKIPPED, TRACKER, ScalerRule
from .validation import check_int, check_number

__all__ = ["LossScaler"]


class LossScaler:
    """Dynamic loss scaling on the device, with PyTorch ``GradScaler``'s rule and defaults.

    Parameters
    ----------
    init_scale : float, default 65536.0
        The first loss scale, 2^16; a positive number, finite in float32.
    growth_factor : float, default 2.0
        What the scale is multiplied by after ``growth_interval`` good steps in a row (> 1). A growth that
        would overflow float32 is not made.
    backoff_factor : float, default 0.5
        What the scale is multiplied by when a step's gradients overflow, in (0, 1).
    growth_interval : int, default 2000
        Good steps in a row before the scale grows (>= 1).
    max_consecutive_overflows : int, default 32
        Overflowed steps in a row that count as divergence (>= 1): the Trainer stops as for a NaN loss.

    Raises
    ------
    ValueError
        An argument out of its range, naming it (a scale that is not a positive finite number, say).
    TypeError
        An argument that is not a number (or not an integer where one is needed).

    Examples
    --------
    >>> scaler = gn.LossScaler(init_scale=1024.0, growth_interval=100)
    >>> scaler
    LossScaler(init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=100, max_consecutive_overflows=32)
    >>> trainer = gn.Trainer(model, loss, opt, precision="mixed", loss_scaler=scaler)  # doctest: +SKIP
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, max_consecutive_overflows: int = 32):
        self.init_scale = _float32_scale("init_scale", init_scale)
        self.growth_factor = check_number("growth_factor", growth_factor, low=1, low_open=True)
        if self.growth_factor > float(np.finfo(np.float32).max):
            raise ValueError(f"growth_factor must be finite in float32, got {growth_factor}")
        self.backoff_factor = check_number("backoff_factor", backoff_factor, low=0, high=1, low_open=True,
                                           high_open=True)
        if np.float32(self.backoff_factor) == 0:
            raise ValueError(f"backoff_factor must be above 0 in float32, got {backoff_factor}")
        self.growth_interval = check_int("growth_interval", growth_interval, low=1)
        self.max_consecutive_overflows = check_int("max_consecutive_overflows", max_consecutive_overflows, low=1)
        for name in ("growth_interval", "max_consecutive_overflows"):  # counted in float32 on the device
            if getattr(self, name) > 2 ** 24:
                raise ValueError(f"{name} must be at most 2^24 (counted exactly in float32), got {getattr(self, name)}")
        f = np.float32
        self.rule = ScalerRule(f(self.growth_factor), f(self.backoff_factor), f(self.growth_interval),
                               f(self.max_consecutive_overflows), f(0), f(1))
        self.state = None  # the float32 state on the device (bind)
        self.device = None

    # ---------------------------------------------------------------- on the device
    def bind(self, device: Device) -> "LossScaler":
        """Keep the state on ``device``: made there at ``init_scale`` the first time, moved there after.

        Parameters
        ----------
        device : Device
            Where the training runs (the Trainer binds its scaler to its device).

        Returns
        -------
        LossScaler
            This scaler.
        """
        if self.state is None:
            self.state = device.asarray(initial_state(self.init_scale))
        elif self.device != device:
            self.state = device.asarray(device.read(self.state) if self.device.type == "cuda" else self.state)
        self.device = device
        return self

    @property
    def scale_array(self):
        """The loss scale as a 1-element float32 view on the device (what the fused loss multiplies the gradient by)."""
        return self.state[SCALE:SCALE + 1]

    def device_state(self):
        """A copy of the state on the device (no host transfer): to go back to if an epoch diverges.

        Returns
        -------
        array
            The float32 state, copied on the scaler's device.
        """
        return self.state.copy()

    def load_device_state(self, saved) -> None:
        """Put back what :meth:`device_state` took from this scaler (on its device).

        Parameters
        ----------
        saved : array
            What :meth:`device_state` returned.
        """
        self.state[...] = saved

    # ---------------------------------------------------------------- read on the host
    def _read(self) -> np.ndarray:
        if self.state is None:
            return initial_state(self.init_scale)
        return self.device.read(self.state)

    @property
    def scale(self) -> float:
        """The loss scale the next step will use (a host read of the device state)."""
        return float(self._read()[SCALE])

    @property
    def skipped_steps(self) -> int:
        """Steps skipped because their gradients overflowed, since the scaler was made (a host read)."""
        return int(self._read()[SKIPPED])

    def hyperparameters(self) -> dict:
        """The arguments the scaler was made with.

        Returns
        -------
        dict
            ``init_scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval`` and
            ``max_consecutive_overflows``.
        """
        return {"init_scale": self.init_scale, "growth_factor": self.growth_factor,
                "backoff_factor": self.backoff_factor, "growth_interval": self.growth_interval,
                "max_consecutive_overflows": self.max_consecutive_overflows}

    def state_dict(self) -> dict:
        """The scale, its growth tracker and the overflow counts (read from the device), and the hyperparameters.

        Returns
        -------
        dict
            ``scale`` (float), ``growth_tracker``, ``overflows_in_a_row`` and ``skipped_steps`` (ints), and
            ``hyperparameters`` (:meth:`hyperparameters`): JSON, as checkpoints hold it.
        """
        state = self._read()
        return {"scale": float(state[SCALE]), "growth_tracker": int(state[TRACKER]),
                "overflows_in_a_row": int(state[IN_A_ROW]), "skipped_steps": int(state[SKIPPED]),
                "hyperparameters": self.hyperparameters()}

    def load_state_dict(self, sd: dict) -> "LossScaler":
        """Restore the scale, tracker and counts of :meth:`state_dict` (this scaler keeps its own hyperparameters).

        Parameters
        ----------
        sd : dict
            What :meth:`state_dict` returned (its ``hyperparameters`` are not read).

        Returns
        -------
        LossScaler
            This scaler.

        Raises
        ------
        ValueError
            ``sd`` lacks an entry, or holds a scale that is not a positive finite float32 number, or a count
            below 0 (naming it). Everything is checked first: then nothing changes.
        TypeError
            A count that is not an integer.
        """
        if not isinstance(sd, dict) or not {"scale", "growth_tracker", "overflows_in_a_row", "skipped_steps"} <= sd.keys():
            raise ValueError("state dict is not a loss scaler's (needs scale, growth_tracker, overflows_in_a_row, "
                             "skipped_steps)")
        scale = _float32_scale("scale", sd["scale"])
        counts = [check_int(name, sd[name], low=0) for name in ("growth_tracker", "overflows_in_a_row", "skipped_steps")]
        state = initial_state(scale)
        state[TRACKER], state[IN_A_ROW], state[SKIPPED] = counts
        if self.state is None:
            self.init_scale = scale
        else:
            self.device.write(self.state, state)
        return self

    def __repr__(self):
        return f"LossScaler({', '.join(f'{k}={v}' for k, v in self.hyperparameters().items())})"


def initial_state(scale: float) -> np.ndarray:
    """A scaler's state (host, float32) at ``scale``, before any step: no overflow seen, the inverse scale 1/scale."""
    state = np.zeros(SCALE_SLOTS, np.float32)
    state[SCALE], state[INV_SCALE], state[FOUND] = scale, np.float32(1) / np.float32(scale), 0
    return state


def _float32_scale(name: str, value) -> float:
    """``value`` checked to be a positive number that float32 holds as a positive finite number."""
    value = check_number(name, value, low=0, low_open=True)
    with np.errstate(over="ignore"):  # beyond float32's range: refused just below
        f = np.float32(value)
    if not math.isfinite(value) or not np.isfinite(f) or f == 0:
        raise ValueError(f"{name} must be a positive finite number (in float32), got {value}")
    return float(f)


_UNIT: dict = {}  # device -> the state of a scale of 1 (no overflow): an unscaled step of float16 copies


def unit_state(device: Device):
    """The state of a scaler at scale 1 that never overflows, kept on ``device``: what the update kernels read for
    a mixed-precision model stepped without a scaler (nothing skipped, nothing unscaled)."""
    if device not in _UNIT:
        _UNIT[device] = device.asarray(initial_state(1.0))
    return _UNIT[device]
