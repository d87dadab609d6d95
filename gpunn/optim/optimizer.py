"""Optimizer: the base of the first-order update rules.

An optimizer holds a list of :class:`~gpunn.nn.Parameter`, its hyperparameters,
and per-parameter state arrays (momentum buffers, moment estimates) created on
the parameter's device at the first step. Subclasses define ``_update`` in terms
of one op from :mod:`gpunn.ops`, which updates weights and state in place.
"""

from __future__ import annotations

import numpy as np

from ..devices import device_of, to_numpy
from ..nn.parameter import Parameter
from ..nn.regularization import l2_penalty, l2_penalty_array
from ..validation import check_number


class Optimizer:
    """Base class: ``step()``, ``zero_grad()``, ``state_dict()`` / ``load_state_dict()``.

    ``weight_decay`` is the L2 strength lambda (penalty (lambda / 2) ||w||^2). It applies
    to parameters marked ``decay`` (weights, not biases) unless ``decay_biases=True``.
    """

    state_names: tuple[str, ...] = ()
    decoupled = False  # True where weight decay shrinks the weights directly rather than adding lambda w to g

    def __init__(self, params, lr: float, weight_decay: float = 0.0, decay_biases: bool = False):
        if isinstance(params, Parameter) or not hasattr(params, "__iter__"):
            raise TypeError("params must be an iterable of Parameters, e.g. model.parameters()")
        params = list(params)
        if not params:
            raise ValueError("params is empty: the optimizer has nothing to train")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a gpunn.nn.Parameter, got {type(p).__name__}")
        self.params = params
        self.lr = check_number("lr", lr, low=0, low_open=True)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)
        self.decay_biases = bool(decay_biases)
        self.steps = 0
        self.state: list[dict] = [{} for _ in params]
        self._hypers: dict = {}  # (device, dtype, decayed) -> [values, array on the device]

    def check_trains(self, model) -> None:
        """Every parameter this optimizer updates must be one of ``model``'s (else training changes nothing in it).

        It may hold only some of them: the others are not trained (frozen on purpose).
        """
        mine = {id(p) for p in model.parameters()}
        foreign = [i for i, p in enumerate(self.params) if id(p) not in mine]
        if foreign:
            shown = ", ".join(f"params[{i}] {self.params[i].shape}" for i in foreign[:3])
            raise ValueError(f"optimizer must update the model's parameters, but {len(foreign)} of its "
                             f"{len(self.params)} are not the model's: {shown}{', ...' if len(foreign) > 3 else ''}; "
                             "build it from model.parameters()")

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (the next backward pass starts afresh)."""
        for p in self.params:
            p.zero_grad()

    def penalty(self) -> float:
        """The L2 term this optimizer's weight decay adds to the objective: (lambda / 2) sum ||w||^2.

        0 for decoupled decay (AdamW), which shrinks the weights without being the gradient of a loss term.
        """
        return 0.0 if self.decoupled else l2_penalty(self.params, self.weight_decay, self.decay_biases)

    def penalty_array(self):
        """:meth:`penalty` as a 0-d array on the parameters' device (None where it is 0), read by no one yet."""
        return None if self.decoupled else l2_penalty_array(self.params, self.weight_decay, self.decay_biases)

    def step(self, skip=None) -> None:
        """Update every parameter that has a gradient. Checks them all before changing any.

        ``lr`` may be 0 here (a schedule such as cosine annealing can reach it: the step then
        changes nothing); a user-given ``lr`` must be > 0 when the optimizer is made.
        ``skip``: an int64 array on the parameters' device (the Trainer's divergence flag); where
        skip[0] != 0 the update kernels change nothing. It is read on the device, not here, so the
        host never waits for the GPU; ``steps`` still counts the call (the Trainer corrects it).
        """
        lr = check_number("lr", self.lr, low=0)
        todo = []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if tuple(p.grad.shape) != p.shape:
                raise ValueError(f"params[{i}].grad has shape {tuple(p.grad.shape)}, its data {p.shape}")
            if device_of(p.grad) != device_of(p.data):
                raise ValueError(f"params[{i}].grad is on {device_of(p.grad)}, its data on {device_of(p.data)}")
            todo.append(i)
        self.steps += 1
        for i in todo:
            p = self.params[i]
            decay = self.weight_decay if (p.decay or self.decay_biases) else 0.0
            with device_of(p.data):  # its state arrays are made, and its update runs, on its own GPU
                self._update(p, self._state_arrays(i), lr, decay, skip)

    def _update(self, p: Parameter, state: dict, lr: float, weight_decay: float, skip=None) -> None:
        raise NotImplementedError

    def _hyper(self, p: Parameter, values: tuple, decayed: bool):
        """The step's kernel scalars (``gpunn.ops.*_hyper``) in an array kept on p's device, refilled when they change.

        The fused kernels read their learning rate and bias corrections from it, not from launch
        arguments: a CUDA graph captured around a step replays with each step's values.
        """
        key = (device_of(p.data), p.dtype, decayed)
        held = self._hypers.get(key)
        if held is None:
            held = self._hypers[key] = [values, device_of(p.data).asarray(np.array(values, dtype=p.dtype))]
        elif held[0] != values:
            device_of(p.data).write(held[1], np.asarray(values, dtype=p.dtype))  # queued in order on the device
            held[0] = values
        return held[1]

    def _state_arrays(self, i: int) -> dict:
        """Parameter i's state arrays, made as zeros on first use and kept on the parameter's device."""
        p, state = self.params[i], self.state[i]
        dev = device_of(p.data)
        for name in self.state_names:
            a = state.get(name)
            if a is None:
                state[name] = dev.xp.zeros_like(p.data)
            elif device_of(a) != dev or a.dtype != p.dtype:
                state[name] = dev.asarray(a, dtype=p.dtype)  # the model was moved after the last step
        return state

    # ---------------------------------------------------------------- saving and loading
    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay, "decay_biases": self.decay_biases}

    def state_dict(self) -> dict:
        """Hyperparameters, step count and state arrays (NumPy copies on the host)."""
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "steps": self.steps,
            "state": [{k: to_numpy(v).copy() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, sd: dict) -> "Optimizer":
        """Restore from :meth:`state_dict`. Checks type, count and shapes first; on error nothing changes."""
        if not isinstance(sd, dict) or not {"type", "hyperparameters", "steps", "state"} <= sd.keys():
            raise ValueError("state dict is not an optimizer state (needs type, hyperparameters, steps, state)")
        if sd["type"] != type(self).__name__:
            raise ValueError(f"state dict is for {sd['type']}, this optimizer is {type(self).__name__}")
        if len(sd["state"]) != len(self.params):
            raise ValueError(f"state dict has state for {len(sd['state'])} parameters, this optimizer has {len(self.params)}")
        new_state = []
        for i, (p, s) in enumerate(zip(self.params, sd["state"])):
            arrays = {}
            for k, v in s.items():
                if k not in self.state_names:
                    raise ValueError(f"state[{i}] has unknown entry {k!r}; {type(self).__name__} keeps {self.state_names}")
                v = np.asarray(v)
                if tuple(v.shape) != p.shape:
                    raise ValueError(f"state[{i}][{k!r}] has shape {tuple(v.shape)}, the parameter {p.shape}")
                arrays[k] = device_of(p.data).asarray(v, dtype=p.dtype)
            new_state.append(arrays)
        hyper = dict(sd["hyperparameters"])
        unknown = hyper.keys() - self.hyperparameters().keys()
        if unknown:
            raise ValueError(f"state dict has unknown hyperparameters {sorted(unknown)} for {type(self).__name__}")
        check_number("lr", hyper.get("lr", self.lr), low=0)  # 0 where a schedule had reached it
        for k, v in hyper.items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.steps = int(sd["steps"])
        self.state = new_state
        return self

    def device_state(self) -> dict:
        """Step count, learning rate and copies of the state arrays on their device (no host transfer)."""
        return {"steps": self.steps, "lr": self.lr, "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_device_state(self, saved: dict) -> None:
        """Put back what :meth:`device_state` took from this same optimizer."""
        self.steps, self.lr = saved["steps"], saved["lr"]
        self.state = [{k: v.copy() for k, v in s.items()} for s in saved["state"]]

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"
