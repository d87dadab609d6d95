"""Optimizer: the base of the first-order update rules.

An optimizer holds a list of :class:`~gpunn.nn.Parameter`, its hyperparameters, and per-parameter state
arrays (momentum buffers, moment estimates) made on the parameter's device at the first step. A rule is
defined once, in its class: ``update`` in ``xp`` code on whole arrays (the lecture's formula) and ``rule``,
the same for one element, from which the kernels are made when the class is defined
(``gpunn/kernels/optimizers.py``). Its hyperparameters and their defaults are written once, in
``__init__``'s signature; ``numbers`` names those the rule reads (as ``h.<name>``).

:meth:`Optimizer.step` updates every parameter with one call of the op ``update_step``: one launch on a
GPU, one pass on the CPU, however many parameters there are. The step count lives on the parameters'
device and the kernels advance it, so a step makes no host-to-device write and no host read.

In mixed precision the optimizer updates each parameter's float32 ``master`` (``Parameter.weights``) and
keeps its state in float32, from the float16 gradient of the float16 copy, which the same launch
rewrites; with a loss scaler (``step(scaler=...)``) the launch unscales the gradients, or skips the step
where they overflowed (``gpunn/loss_scaler.py``).
"""

from __future__ import annotations

import inspect
from operator import attrgetter, itemgetter

import numpy as np

from .. import ops
from ..devices import device_of, to_numpy
from ..loss_scaler import unit_state
from ..kernels.elementwise import defines_its_rules
from ..kernels.optimizers import UpdateKernels
from ..nn.parameter import Parameter
from ..nn.regularization import l2_penalty, l2_penalty_array
from ..validation import check_number

# A rule's scalar twin must come from the class that gives its xp formula (else the kernels would compute
# another rule); what the rule reads (its numbers, state and per-step numbers) from that class or above it.
RULES_TOGETHER = (("update", "rule"),)
RULES_READ = ("numbers", "state_names", "per_step")
# C callables: mapped over the parameters, they run no Python frame each
_DATA, _GRAD, _CONTIGUOUS = attrgetter("data"), attrgetter("grad"), attrgetter("data.flags.c_contiguous")
_MASTER = attrgetter("master")


class Optimizer:
    """Base class of the update rules: ``step()``, ``zero_grad()``, ``state_dict()`` / ``load_state_dict()``.

    A subclass names its state arrays (``state_names``) and the hyperparameters its rule reads
    (``numbers``), and defines the rule twice: :meth:`update` on whole arrays in ``xp`` code, and
    :meth:`rule` for one element, from which its kernels are made when the class is defined. A
    subclass with ``update`` alone has no kernels: its steps run ``update``.

    ``weight_decay`` is the L2 strength lambda (penalty (lambda / 2) ||w||^2). It applies
    to parameters marked ``decay`` (weights, not biases) unless ``decay_biases=True``.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to train, e.g. ``model.parameters()``; not empty.
    lr : float
        The learning rate, > 0.
    weight_decay : float, default=0.0
        The L2 strength lambda, >= 0.
    decay_biases : bool, default=False
        Whether weight decay applies to the parameters not marked ``decay`` (biases,
        normalisation scales and shifts) too.

    Attributes
    ----------
    params : list of Parameter
        The parameters it updates.
    state : list of dict
        Each parameter's state arrays by name (made as zeros at the first step, on the
        parameter's device).
    state_names : tuple of str
        The names of the state arrays the rule keeps per parameter (class attribute).
    numbers : tuple of str
        The hyperparameters the rule reads, as ``h.<name>`` (class attribute).
    decoupled : bool
        True where weight decay shrinks the weights directly rather than adding lambda w to
        the gradient (AdamW; class attribute).
    kernels : UpdateKernels or None
        The multi-tensor update kernels made from :meth:`rule`; None without a rule.

    Raises
    ------
    TypeError
        If ``params`` is not an iterable of Parameters (a single Parameter included), or a
        hyperparameter is not a number.
    ValueError
        If ``params`` is empty or a hyperparameter is outside its range.

    Examples
    --------
    A rule of one's own, sign descent w <- w - lr sign(g + lambda w), in ``xp`` code only:

    >>> class SignDescent(gn.optim.Optimizer):
    ...     def __init__(self, params, lr=0.1, weight_decay=0.0):
    ...         super().__init__(params, lr, weight_decay)
    ...     def update(self, w, g, *state, h, s, wd):
    ...         w -= h.lr * np.sign(g + wd * w)
    >>> w = gn.nn.Parameter(np.array([1.0, -2.0, 0.5], np.float32))
    >>> opt = SignDescent([w], lr=0.1)
    >>> w.grad = np.array([3.0, -0.1, 0.0], np.float32)
    >>> opt.step()
    >>> w.data, opt.steps
    (array([ 0.9, -1.9,  0.5], dtype=float32), 1)
    >>> opt
    SignDescent(lr=0.1, weight_decay=0.0)
    >>> opt.state_dict()["steps"], opt.hyperparameters()
    (1, {'lr': 0.1, 'weight_decay': 0.0})
    """

    state_names: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ("lr",)  # the hyperparameters the scalar rule reads, as h.<name>
    decoupled = False  # True where weight decay shrinks the weights directly rather than adding lambda w to g
    kernels = None  # its multi-tensor update kernels (UpdateKernels), made from its scalar rule

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not defines_its_rules(cls, RULES_TOGETHER, RULES_READ) or cls.rule is Optimizer.rule:
            cls.kernels = None
        elif "rule" not in cls.__dict__ and all(n not in cls.__dict__ for n in RULES_READ):
            cls.kernels = next(c for c in cls.__mro__ if "rule" in c.__dict__).kernels  # its parent's rule, unchanged
        else:
            cls.kernels = UpdateKernels(cls)

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
        self.state: list[dict] = [{} for _ in params]
        self._counts: dict = {}  # (device index, dtype, mixed) -> the step count there (1 element, on the device)
        self._decays: dict = {}  # (device, dtype, which params, strength) -> their L2 strengths, on the device

    # ------------------------------------------------------------------ the rule (a subclass's)
    def update(self, w, g, *state, h, s, wd) -> None:
        """The rule on whole arrays, in place: ``w`` and the ``state`` arrays from the gradient ``g``.

        A subclass defines it (the base raises); :meth:`~gpunn.optim.Optimizer.step` calls it for each parameter where
        the class has no kernels, and it is the reference the kernels are tested against.

        Parameters
        ----------
        w : array (NumPy or CuPy)
            The weights, updated in place (the float32 master in mixed precision).
        g : array
            The gradient, shaped like ``w``.
        *state : array
            The state arrays, one per name in ``state_names``, shaped like ``w``; updated in place.
        h : Numbers
            ``h.zero``, ``h.half``, ``h.one`` and the hyperparameters named in ``numbers``, as
            attributes (:meth:`~gpunn.optim.Optimizer.kernels_numbers`).
        s : tuple
            What :meth:`~gpunn.optim.Optimizer.per_step` gives for this step.
        wd : scalar
            This parameter's L2 strength (0 where it is not decayed).

        Raises
        ------
        NotImplementedError
            Always, in the base class.
        """
        raise NotImplementedError

    @staticmethod
    def rule(w, g, *state_and_numbers):
        """The same rule for one element: returns the new w (and new state values).

        A subclass defines it as a static method that Numba compiles (scalar arithmetic and
        ``math``, no arrays), with the signature ``rule(w, g, *state, h, s, wd)``: the arguments
        of :meth:`update` for one element. The class's CPU and CUDA kernels are made from it.

        Parameters
        ----------
        w : float
            One element of the weights.
        g : float
            The matching element of the gradient.
        *state_and_numbers : float and tuple
            The matching elements of the state arrays, one per name in ``state_names``, then
            ``h``, ``s`` and ``wd`` as :meth:`update` takes them.

        Returns
        -------
        float or tuple of float
            The new w, followed by the new state values where the rule keeps state.

        Raises
        ------
        NotImplementedError
            Always, in the base class.
        """
        raise NotImplementedError

    @staticmethod
    def per_step(h, t):
        """Numbers of the t-th step (t = 1, 2, ...) that every element shares, computed once per step.

        A subclass whose rule depends on the step count (Adam's bias corrections) defines it as a
        static method that Numba compiles, like :meth:`rule`.

        Parameters
        ----------
        h : Numbers
            The rule's numbers (:meth:`~gpunn.optim.Optimizer.kernels_numbers`).
        t : scalar
            The step's number, 1 for the first, in the weights' dtype.

        Returns
        -------
        tuple
            The ``s`` that :meth:`update` and :meth:`rule` read; empty in the base class.
        """
        return ()

    # ------------------------------------------------------------------ training
    def check_trains(self, model) -> None:
        """Every parameter this optimizer updates must be one of ``model``'s (else training changes nothing in it).

        It may hold only some of them: the others are not trained (frozen on purpose).

        Parameters
        ----------
        model : Module
            The model it is to train.

        Raises
        ------
        ValueError
            If any of its parameters is not one of ``model.parameters()`` (up to three are named).

        Examples
        --------
        >>> model, other = gn.nn.Linear(3, 2, rng=0), gn.nn.Linear(3, 2, rng=1)
        >>> gn.optim.SGD(model.parameters()).check_trains(model)
        >>> gn.optim.SGD(other.parameters()).check_trains(model)
        Traceback (most recent call last):
            ...
        ValueError: optimizer must update the model's parameters, but 2 of its 2 are not the model's: ...
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
            p.grad = None

    def penalty(self) -> float:
        """The L2 term this optimizer's weight decay adds to the objective: (lambda / 2) sum ||w||^2.

        0 for decoupled decay (AdamW), which shrinks the weights without being the gradient of a loss term.
        The sum runs over the decayed parameters (those marked ``decay``, or all with ``decay_biases``).

        Returns
        -------
        float
            The penalty (a host read of the device's sum).

        Examples
        --------
        >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
        >>> b = gn.nn.Parameter(np.array([3.0], np.float32), decay=False)
        >>> gn.optim.SGD([w, b], weight_decay=0.1).penalty()  # 0.1 / 2 * (1 + 4): b is not decayed
        0.25
        """
        return 0.0 if self.decoupled else l2_penalty(self.params, self.weight_decay, self.decay_biases)

    def penalty_array(self):
        """:meth:`penalty` as a 0-d array on the parameters' device, without a host read.

        Returns
        -------
        array of shape () or None
            The penalty in the weights' dtype, on their device; None where it is 0 (no decay, no
            decayed parameter, or decoupled decay).
        """
        return None if self.decoupled else l2_penalty_array(self.params, self.weight_decay, self.decay_biases)

    def step(self, skip=None, scaler=None) -> None:
        """Update every parameter that has a gradient. Checks them all before changing any.

        One launch per device and dtype updates all of them (:func:`gpunn.ops.update_step`); the
        step count advances on the device. ``lr`` may be 0 here (a schedule such as cosine
        annealing can reach it: the step then changes nothing); a user-given ``lr`` must be > 0
        when the optimizer is made. A gradient of another dtype than its weights, or not
        C-contiguous, is replaced by a contiguous copy in the weights' dtype first.

        Parameters
        ----------
        skip : array of shape (1,), int64, or None, default=None
            On the parameters' device (the Trainer's divergence flag): where ``skip[0] != 0`` the
            update changes nothing and the step count stays. It is read on the device, not here,
            so the host never waits for the GPU.
        scaler : LossScaler or None, default=None
            A :class:`~gpunn.LossScaler` whose check ran on this step's gradients (mixed
            precision): they are unscaled as they are read, or, where they overflowed, the step is
            skipped as a whole (the count stays, as PyTorch's ``GradScaler`` skips
            ``optimizer.step()``).

        Raises
        ------
        ValueError
            If a gradient's shape or device differs from its parameter's, or ``lr`` is negative;
            nothing is updated then.
        """
        check_number("lr", self.lr, low=0)
        groups: dict = {}
        for i, p in enumerate(self.params):
            g, w = p.grad, p.data
            if g is None:
                continue
            if g.shape != w.shape:
                raise ValueError(f"params[{i}].grad has shape {tuple(g.shape)}, its data {p.shape}")
            if type(g) is not type(w) or (type(w) is not np.ndarray and g.device != w.device):
                raise ValueError(f"params[{i}].grad is on {device_of(g)}, its data on {device_of(w)}")
            if g.dtype != w.dtype or not g.flags.c_contiguous:
                p.grad = _like(g, w)
            mixed = p.master is not None  # its weights are the float32 master, data their float16 copy
            groups.setdefault((type(w), getattr(w, "device", None), p.master.dtype if mixed else w.dtype, mixed),
                              []).append(i)
        state = None if scaler is None else scaler.state
        for (*_, mixed), which in groups.items():
            dev = device_of(self.params[which[0]].data)
            with dev:  # its state arrays are made, and its update runs, on its own GPU
                self._step_group(dev, which, skip, state, mixed)

    def _step_group(self, dev, which: list, skip, scaler, mixed: bool) -> None:
        """One update_step over the parameters ``which`` (one device, one dtype; float16 copies or none)."""
        params = list(map(self.params.__getitem__, which))
        if mixed and scaler is None:
            scaler = unit_state(dev)  # float16 copies stepped without loss scaling: scale 1, nothing skipped
        ws, gs, states = self._arrays(which, params, dev, mixed)
        dt = ws[0].dtype
        extra = (tuple(map(_DATA, params)) if mixed else None, scaler)
        run = ops.update_step if all(map(_CONTIGUOUS, params)) else ops.update_step.reference  # a user's strided
        run(self._count(dev, dt, mixed), self, ws, gs, states, self.kernels_numbers(dt), self._decay(dev, dt, which),
            skip, *extra)

    def _arrays(self, which: list, params: list, dev, mixed: bool = False) -> tuple:
        """(weights, gradients, state arrays by name) of the parameters ``which``, as ``update_step`` takes them.

        The weights are the float32 masters where the parameters have float16 copies (``mixed``)."""
        states = [self.state[i] for i in which]
        if self.state_names and not all(states):
            states = [self._state_arrays(i) for i in which]  # the first step: zeros on the parameters' device
        return (tuple(map(_MASTER if mixed else _DATA, params)), tuple(map(_GRAD, params)),
                tuple([tuple(map(itemgetter(name), states)) for name in self.state_names]))

    def kernels_numbers(self, dtype):
        """``h`` for arrays of ``dtype``: 0, 1/2, 1 and this optimizer's ``numbers`` (hyperparameters), cast.

        Parameters
        ----------
        dtype : dtype
            The weights' dtype (float32 or float64; float16 computes in float32).

        Returns
        -------
        Numbers
            ``zero``, ``half``, ``one`` and each name of ``numbers`` as attributes, in the dtype the
            kernels compute in (booleans stay booleans). Without kernels only 0, 1/2 and 1 are cast;
            the hyperparameters are as the optimizer holds them.

        Examples
        --------
        >>> w = gn.nn.Parameter(np.zeros(2, np.float32))
        >>> h = gn.optim.SGD([w], lr=0.1, momentum=0.9).kernels_numbers(np.float32)
        >>> h.lr, h.momentum, h.nesterov, h.one
        (np.float32(0.1), np.float32(0.9), False, np.float32(1.0))
        """
        values = tuple([getattr(self, name) for name in self.numbers])
        if self.kernels is None:
            cast = np.dtype(dtype).type
            return _Numbers(cast(0), cast(0.5), cast(1), dict(zip(self.numbers, values)))
        return self.kernels.numbers(np.dtype(dtype), values)

    def _count(self, dev, dt, mixed: bool = False):
        """The step count on ``dev`` in ``dt`` for parameters with float16 copies (``mixed``) or without: each group's
        own, since each launch advances its count (made at 0, or at the count the other groups keep)."""
        key = (dev.index, dt, mixed)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = dev.asarray(np.full(1, self._host_steps(), dt))
        return count

    def _host_steps(self) -> int:
        held = getattr(self, "_loaded_steps", 0)
        return int(to_numpy(next(iter(self._counts.values())))[0]) if self._counts else held

    @property
    def steps(self) -> int:
        """Steps taken: updates that ran (a skipped one does not count). Read from the device."""
        return self._host_steps()

    @steps.setter
    def steps(self, value: int) -> None:
        self._loaded_steps = int(value)
        for (_, dt, _), count in self._counts.items():
            device_of(count).write(count, np.full(1, value, dt))

    def _decay(self, dev, dt, which: list):
        """The L2 strength of each parameter in ``which`` (0 where it is not decayed), on ``dev``, kept."""
        key = (dev.index, dt, self.weight_decay, self.decay_biases, *which)
        held = self._decays.get(key)
        if held is not None:
            return held
        strengths = [self.weight_decay if (self.params[i].decay or self.decay_biases) else 0.0 for i in which]
        if len(self._decays) > 16:
            self._decays.clear()
        held = self._decays[key] = dev.asarray(np.array(strengths, dt))
        return held

    def _state_arrays(self, i: int) -> dict:
        """Parameter i's state arrays, made as zeros on first use and kept on the parameter's device, in its weights'
        dtype (float32 in mixed precision, as the masters)."""
        p, state = self.params[i], self.state[i]
        dev, w = device_of(p.data), p.weights
        for name in self.state_names:
            a = state.get(name)
            if a is None:
                state[name] = dev.xp.zeros_like(w)
            elif device_of(a) != dev or a.dtype != w.dtype:
                state[name] = dev.asarray(a, dtype=w.dtype)  # the model was moved (or cast) after the last step
        return state

    # ---------------------------------------------------------------- saving and loading
    def hyperparameters(self) -> dict:
        """Every argument of ``__init__`` but the parameters, as this optimizer holds it now.

        A subclass keeps each argument of its ``__init__`` as an attribute of the same name.

        Returns
        -------
        dict
            Argument name to current value, in the signature's order (``lr`` as a schedule left it).

        Examples
        --------
        >>> w = gn.nn.Parameter(np.zeros(2, np.float32))
        >>> gn.optim.Adam([w], lr=0.01).hyperparameters()
        {'lr': 0.01, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0.0, 'decay_biases': False}
        """
        names = list(inspect.signature(type(self).__init__).parameters)[2:]
        return {name: getattr(self, name) for name in names}

    def state_dict(self) -> dict:
        """Hyperparameters, step count and state arrays (NumPy copies on the host).

        Returns
        -------
        dict
            ``{"type": class name, "hyperparameters": dict, "steps": int, "state": list}``: the
            state is one dict per parameter, of its state arrays by name (empty before the first
            step). :meth:`load_state_dict` takes it back; ``gpunn.checkpoint`` saves it.

        Examples
        --------
        >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
        >>> opt = gn.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> w.grad = np.array([1.0, 1.0], np.float32)
        >>> opt.step()
        >>> sd = opt.state_dict()
        >>> sd["steps"], sd["state"]
        (1, [{'velocity': array([1., 1.], dtype=float32)}])
        """
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "steps": self.steps,
            "state": [{k: to_numpy(v).copy() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, sd: dict) -> "Optimizer":
        """Restore from :meth:`state_dict`. Checks type, count and shapes first; on error nothing changes.

        The state arrays are put on each parameter's device, in its weights' dtype.

        Parameters
        ----------
        sd : dict
            What :meth:`state_dict` returned, for an optimizer of the same class over parameters of
            the same shapes (lists where it held tuples, as JSON gives them back, are accepted).

        Returns
        -------
        Optimizer
            ``self``.

        Raises
        ------
        ValueError
            If ``sd`` is not an optimizer state, is for another class, holds state for another
            number of parameters, a state array of an unknown name or another shape, an unknown
            hyperparameter, or a negative ``lr``.

        Examples
        --------
        >>> w = gn.nn.Parameter(np.array([1.0, -2.0], np.float32))
        >>> opt = gn.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> w.grad = np.array([1.0, 1.0], np.float32)
        >>> opt.step()
        >>> again = gn.optim.SGD([w], lr=0.5, momentum=0.9).load_state_dict(opt.state_dict())
        >>> again, again.steps
        (SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, decay_biases=False), 1)
        """
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
                arrays[k] = device_of(p.data).asarray(v, dtype=p.weights.dtype)
            new_state.append(arrays)
        hyper = dict(sd["hyperparameters"])
        unknown = hyper.keys() - self.hyperparameters().keys()
        if unknown:
            raise ValueError(f"state dict has unknown hyperparameters {sorted(unknown)} for {type(self).__name__}")
        check_number("lr", hyper.get("lr", self.lr), low=0)  # 0 where a schedule had reached it
        for k, v in hyper.items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.state = new_state
        self.steps = int(sd["steps"])
        return self

    def device_state(self) -> dict:
        """Step counts, learning rate and copies of the state arrays on their device (no host transfer).

        For going back within a run (the Trainer's snapshot before each epoch); :meth:`state_dict`
        is for saving.

        Returns
        -------
        dict
            Opaque to callers: give it to :meth:`load_device_state` of this same optimizer.
        """
        return {"counts": {k: v.copy() for k, v in self._counts.items()}, "lr": self.lr,
                "loaded": getattr(self, "_loaded_steps", 0),
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_device_state(self, saved: dict) -> None:
        """Put back what :meth:`device_state` took from this same optimizer.

        Parameters
        ----------
        saved : dict
            What :meth:`device_state` returned; it is copied, so it may be loaded again.
        """
        self._counts = {k: v.copy() for k, v in saved["counts"].items()}
        self.lr, self._loaded_steps = saved["lr"], saved["loaded"]
        self.state = [{k: v.copy() for k, v in s.items()} for s in saved["state"]]

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class _Numbers:
    """The numbers of an optimizer without kernels (its own rule in xp code only), as attributes."""

    def __init__(self, zero, half, one, named: dict):
        self.zero, self.half, self.one = zero, half, one
        self.__dict__.update(named)


def _like(g, w):
    """The gradient ``g`` as a C-contiguous array of ``w``'s dtype (a user's strided or other-dtype gradient)."""
    xp = device_of(w).xp
    return xp.ascontiguousarray(g, dtype=w.dtype)
