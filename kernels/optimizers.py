"""Optimizer updates: every parameter of a model updated by one launch (one parallel region on the CPU).

What an update rule computes is defined once, by its optimizer class (``gpunn/optim/``): ``update`` on
whole arrays in ``xp`` code (the lecture's formula, and this op's reference), and the same rule for one
element, ``rule(w, g, *state, h, s, wd)``, from which :class:`UpdateKernels` makes the multi-tensor kernels
when the class is defined (``kernels/elementwise.py``'s factory, cached on disk). ``h`` holds the
hyperparameters in the parameters' dtype; ``s`` the numbers that change with the step count (Adam's bias
corrections), computed once per launch by the class's ``per_step(h, t)``; ``wd`` is the tensor's L2 strength
(0 for a parameter that is not decayed).

The step count lives on the device, beside the parameters (``steps``: one element of their dtype), and
the kernels read it, so nothing is written from the host per step. ``skip`` (int64, on the device): where
``skip[0] != 0`` the launch changes nothing and the count stays (the Trainer's divergence flag, read there
and never on the host, as PyTorch's fused optimizers read ``found_inf``). The thread that finishes last
advances the count (:func:`~gpunn.kernels.launch.finished_last`).

Mixed precision (a loss scaler's step): ``ws`` and the state are the float32 master weights, ``gs`` the
scaled float16 gradients of the model's float16 copies ``copies``. The scaled kernels read the loss
scaler's state (``kernels/multi_tensor.py``: FOUND, INV_SCALE), skip the step where the check found an
overflow (the count stays, as PyTorch's ``GradScaler`` never calls the optimizer's step then), else unscale
each gradient as they read it (g * 1/scale, in float32), update the master and state, and write the
master's float16 copy. No host read: the scale lives on the device.
"""

from __future__ import annotations

from operator import attrgetter

import numba
import numpy as np
from numba import cuda, prange

from .arrays import array_module
from .checks import small_array
from .elementwise import RuleKernels
from .launch import PARALLEL_MIN_SIZE, Kernels, configured, counters, cpu_threads, finished_last
from .multi_tensor import _SIZE, FOUND, INV_SCALE, SCALE_SLOTS, chunk_table, flat_arrays, grid
from .op import op


class UpdateKernels(RuleKernels):
    """The multi-tensor update kernels of one optimizer class, by the number of state arrays its rule keeps.

    ``by_states[n]``: the :class:`~gpunn.kernels.launch.Kernels` for ``rule`` (``len(state_names)`` states),
    and for ``rule_without_state`` where the class has one (SGD without momentum keeps no buffer);
    ``scaled[n]``: the CUDA kernel of a loss-scaled step (mixed precision: float32 masters, float16 copies).
    """

    def __init__(self, optimizer: type):
        rules = [(len(optimizer.state_names), optimizer.rule)]
        if "rule_without_state" in optimizer.__dict__:
            rules.append((0, optimizer.rule_without_state))
        super().__init__(optimizer, (optimizer.per_step, *(r for _, r in rules)))
        self.by_states, self.scaled = {}, {}
        for n, rule in rules:
            self.by_states[n] = kernels = _update_kernels(self, n, rule, optimizer.per_step)
            self.add(f"update_{n}", kernels)
            # on the CPU mixed precision is refused (no fast float16 GEMM there): a CUDA kernel only
            self.scaled[n] = scaled = Kernels(None, self.cuda(_SCALED[n](cuda.jit(device=True)(rule),
                                                                         cuda.jit(device=True)(optimizer.per_step))))
            self.add(f"update_{n}_scaled", scaled)


def _update_kernels(made: UpdateKernels, n: int, rule, per_step) -> Kernels:
    """The CPU and CUDA kernels applying ``rule`` (with ``n`` state arrays) to every chunk of a multi-tensor table."""
    r, step_numbers = numba.njit(inline="always")(rule), numba.njit(inline="always")(per_step)
    r_dev, step_dev = cuda.jit(device=True)(rule), cuda.jit(device=True)(per_step)
    cpu, cuda_ = _BODIES[n]
    return made.both(cpu(r, step_numbers), cuda_(r_dev, step_dev))


# Kernel bodies by the number of state arrays. Each reads the step count t (the count so far + 1), computes
# the rule's per-step numbers once, then updates every element of every chunk; on the CPU the count is
# advanced after the loop, on CUDA by the last thread to finish. On the CPU each chunk is taken as views
# counted from 0: LLVM vectorises that loop, not one indexing the whole arrays from the chunk's start
# (3x slower on 3M float32, measured).

def _cpu_0(rule, per_step):
    def update(ws, gs, table, decay, h, steps, skip):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        for c in prange(table.shape[0]):
            j, lo, hi = table[c, 0], table[c, 1], table[c, 2]
            w, g, wd = ws[j][lo:hi], gs[j][lo:hi], decay[j]
            for i in range(w.size):
                w[i] = rule(w[i], g[i], h, s, wd)
        steps[0] = t
    return update


def _cpu_1(rule, per_step):
    def update(ws, gs, s1, table, decay, h, steps, skip):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        for c in prange(table.shape[0]):
            j, lo, hi = table[c, 0], table[c, 1], table[c, 2]
            w, g, a, wd = ws[j][lo:hi], gs[j][lo:hi], s1[j][lo:hi], decay[j]
            for i in range(w.size):
                w[i], a[i] = rule(w[i], g[i], a[i], h, s, wd)
        steps[0] = t
    return update


def _cpu_2(rule, per_step):
    def update(ws, gs, s1, s2, table, decay, h, steps, skip):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        for c in prange(table.shape[0]):
            j, lo, hi = table[c, 0], table[c, 1], table[c, 2]
            w, g, a, b, wd = ws[j][lo:hi], gs[j][lo:hi], s1[j][lo:hi], s2[j][lo:hi], decay[j]
            for i in range(w.size):
                w[i], a[i], b[i] = rule(w[i], g[i], a[i], b[i], h, s, wd)
        steps[0] = t
    return update


def _cuda_0(rule, per_step):
    def update(ws, gs, table, decay, h, steps, skip, done):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, wd = ws[j], gs[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                w[i] = rule(w[i], g[i], h, s, wd)
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


def _cuda_1(rule, per_step):
    def update(ws, gs, s1, table, decay, h, steps, skip, done):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, a, wd = ws[j], gs[j], s1[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                w[i], a[i] = rule(w[i], g[i], a[i], h, s, wd)
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


def _cuda_2(rule, per_step):
    def update(ws, gs, s1, s2, table, decay, h, steps, skip, done):
        if skip[0] != 0:
            return
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, a, b, wd = ws[j], gs[j], s1[j], s2[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                w[i], a[i], b[i] = rule(w[i], g[i], a[i], b[i], h, s, wd)
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


_BODIES = {0: (_cpu_0, _cuda_0), 1: (_cpu_1, _cuda_1), 2: (_cpu_2, _cuda_2)}


# The loss-scaled bodies (mixed precision): skipped where the check found an overflow, each gradient unscaled as it
# is read (float16 times a float32 inverse scale is float32), and the new master written to its float16 copy too
# (``copies`` is ``ws`` itself for float32 parameters, such as batchnorm's).

def _scaled_0(rule, per_step):
    def update(ws, gs, copies, table, decay, h, steps, skip, scaler, done):
        if skip[0] != 0 or scaler[FOUND] != h.zero:
            return
        inv = scaler[INV_SCALE]
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, out, wd = ws[j], gs[j], copies[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                new = rule(w[i], g[i] * inv, h, s, wd)
                w[i] = new
                out[i] = new
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


def _scaled_1(rule, per_step):
    def update(ws, gs, s1, copies, table, decay, h, steps, skip, scaler, done):
        if skip[0] != 0 or scaler[FOUND] != h.zero:
            return
        inv = scaler[INV_SCALE]
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, a, out, wd = ws[j], gs[j], s1[j], copies[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                new, a[i] = rule(w[i], g[i] * inv, a[i], h, s, wd)
                w[i] = new
                out[i] = new
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


def _scaled_2(rule, per_step):
    def update(ws, gs, s1, s2, copies, table, decay, h, steps, skip, scaler, done):
        if skip[0] != 0 or scaler[FOUND] != h.zero:
            return
        inv = scaler[INV_SCALE]
        t = steps[0] + h.one
        s = per_step(h, t)
        c = cuda.blockIdx.x
        while c < table.shape[0]:
            j = table[c, 0]
            w, g, a, b, out, wd = ws[j], gs[j], s1[j], s2[j], copies[j], decay[j]
            i = table[c, 1] + cuda.threadIdx.x
            while i < table[c, 2]:
                new, a[i], b[i] = rule(w[i], g[i] * inv, a[i], b[i], h, s, wd)
                w[i] = new
                out[i] = new
                i += cuda.blockDim.x
            c += cuda.gridDim.x
        if finished_last(done, 0, cuda.gridDim.x * cuda.blockDim.x):
            steps[0] = t
    return update


_SCALED = {0: _scaled_0, 1: _scaled_1, 2: _scaled_2}


# --------------------------------------------------------------------------- the op

@op(min_size={"cpu": 0})
def update_step(steps, optimizer, ws: tuple, gs: tuple, states: tuple, h, decay, skip=None, copies=None,
                scaler=None) -> None:
    """One update of every array in ``ws`` (and its state) by ``optimizer``'s rule, in place.

    ``steps``: the step count so far, a 1-element array of the parameters' dtype on their device; it
    advances by one unless ``skip[0] != 0`` (then nothing changes). ``gs``: the gradients, ``states``: one
    tuple of arrays per name in ``optimizer.state_names``, all shaped like ``ws``; ``h``: the rule's
    numbers (``optimizer.kernels.numbers``); ``decay``: each array's L2 strength, an array of their dtype.

    Mixed precision: ``scaler``, the loss scaler's float32 state (``kernels/multi_tensor.py``'s layout):
    where its FOUND is set nothing changes (and the count stays); else each gradient is unscaled by its
    INV_SCALE before the rule. ``copies``: float16 arrays shaped like ``ws`` that receive the new weights
    (the model's compute copies of the masters ``ws``); ``gs`` are then in their dtype.

    Parameters
    ----------
    steps : array of shape (1,), float16, float32 or float64 (NumPy or CuPy)
        The step count so far, in the parameters' dtype and on their device; advanced in place.
    optimizer : gpunn.optim.Optimizer
        The rule: its ``update`` (the reference), ``per_step``, ``state_names`` and ``kernels``.
    ws : tuple of arrays
        The weights (the float32 masters with ``copies``), C-contiguous, one dtype, one device; updated
        in place.
    gs : tuple of arrays
        Their gradients, shaped like ``ws`` (float16 with ``copies``, else the weights' dtype).
    states : tuple of tuples of arrays
        One tuple per name in ``optimizer.state_names``, each holding an array shaped like each weight
        (momentum, moments ...), in the weights' dtype; updated in place.
    h : tuple
        The rule's numbers for this dtype (``optimizer.kernels_numbers(dtype)``).
    decay : array of shape (len(ws),)
        Each weight's L2 strength, in the weights' dtype.
    skip : array of shape (1,) or more, int64, or None, default=None
        ``skip[0] != 0`` skips the update (the divergence flag); None: never skipped.
    copies : tuple of arrays or None, default=None
        float16 arrays shaped like ``ws`` that receive the new weights (mixed precision, with ``scaler``).
    scaler : array of shape (SCALE_SLOTS,), float32, or None, default=None
        The loss scaler's state: a step whose gradients overflowed is skipped, others are unscaled.

    Raises
    ------
    ValueError
        Where a kernel runs, if the arrays do not match (counts, shapes, dtypes, array types,
        contiguity), or ``copies`` come without a scaler or float32 weights.

    Examples
    --------
    >>> opt = gn.optim.SGD([gn.nn.Parameter(np.ones(3, np.float32))], lr=0.1)
    >>> w, g = np.ones(3, np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    >>> steps = np.zeros(1, np.float32)
    >>> gn.ops.update_step(steps, opt, (w,), (g,), (), opt.kernels_numbers(np.float32), np.zeros(1, np.float32))
    >>> w, steps
    (array([0.9, 0.8, 0.7], dtype=float32), array([1.], dtype=float32))
    """
    xp = array_module(steps)
    keep = None if skip is None else skip[0] == 0
    if scaler is not None:
        keep = (scaler[FOUND] == 0) if keep is None else keep & (scaler[FOUND] == 0)
    t = steps + steps.dtype.type(1)  # on the device: the host never reads the count
    s = optimizer.per_step(h, t[0])
    for i, (w, g) in enumerate(zip(ws, gs)):
        if scaler is not None:
            g = g.astype(w.dtype) * scaler[INV_SCALE]  # unscaled in the masters' dtype, as the kernels do
        state = [arrays[i] for arrays in states]
        if keep is None:
            optimizer.update(w, g, *state, h=h, s=s, wd=decay[i])
        else:
            new = [w.copy(), *(a.copy() for a in state)]
            with np.errstate(invalid="ignore", over="ignore"):  # a skipped step's values (from NaN or inf) are dropped
                optimizer.update(new[0], g, *new[1:], h=h, s=s, wd=decay[i])
            for target, value in zip([w, *state], new):
                xp.copyto(target, value, where=keep)
        if copies is not None:
            copies[i][...] = w  # rounded to the copy's dtype (on a skipped step: the unchanged master again)
    steps[...] = t if keep is None else xp.where(keep, t, steps)


def _arguments(steps, optimizer, ws, gs, states, decay, skip, copies=None, scaler=None):
    """The kernel's arrays: flat views, the chunk table, and the skip flag (a shared zero where there is none).

    A kernel writes through raw pointers: what does not fit is refused here, before anything is written.
    """
    _check(steps, optimizer, ws, gs, states, decay, skip, copies, scaler)
    scaled = scaler is not None
    kernels = (optimizer.kernels.scaled if scaled else optimizer.kernels.by_states)[len(states)]
    ws, gs = flat_arrays(ws), flat_arrays(gs)
    arrays = (ws, gs, *[flat_arrays(a) for a in states])
    if scaled:
        arrays += (ws if copies is None else flat_arrays(copies),)
    return kernels, (*arrays, chunk_table(ws), decay), _no_skip(steps) if skip is None else skip


def _check(steps, optimizer, ws, gs, states, decay, skip, copies=None, scaler=None) -> None:
    dt, kind = steps.dtype, type(steps)
    if len(states) not in optimizer.kernels.by_states:
        raise ValueError(f"update_step: {type(optimizer).__name__} keeps {optimizer.state_names} state arrays, "
                         f"got {len(states)}")
    shapes = list(map(_SHAPE, ws))
    named = (("gs", gs), *zip([f"states[{i}]" for i in range(len(states))], states))
    if copies is not None:
        named += (("copies", copies),)
    for name, arrays in named:
        if len(arrays) != len(ws) or list(map(_SHAPE, arrays)) != shapes:
            got = [tuple(a.shape) for a in arrays]
            raise ValueError(f"update_step: {name} must be {len(ws)} arrays shaped like ws {shapes}, got {got}")
    half = np.dtype(np.float16)  # the gradients of float16 copies are float16
    wanted = [(ws, dt), (gs, dt if copies is None else half), (copies or (), half)]
    wanted += [(arrays, dt) for arrays in states]
    for arrays, want in wanted:
        for a in arrays:
            if a.dtype != want or type(a) is not kind or not a.flags.c_contiguous:
                raise ValueError(f"update_step: every array must be a C-contiguous {want} array of the same kind as "
                                 f"steps (float16 gradients and copies of float32 masters), got a {a.dtype} "
                                 f"{type(a).__name__}")
    if copies is not None and (scaler is None or dt != np.float32):
        raise ValueError("update_step: copies (float16) are updated from float32 masters with a loss scaler's state")
    if decay.shape != (len(ws),) or decay.dtype != dt or steps.shape != (1,):
        raise ValueError(f"update_step: decay must be {dt} of shape ({len(ws)},) and steps of shape (1,), got "
                         f"{decay.dtype} {tuple(decay.shape)} and {tuple(steps.shape)}")
    if skip is not None and (skip.dtype != np.int64 or skip.ndim != 1 or skip.size < 1):
        raise ValueError(f"skip must be a 1-D int64 array (skip[0] != 0 skips the update), got {skip.dtype} "
                         f"{tuple(skip.shape)}")
    if scaler is not None and (scaler.dtype != np.float32 or scaler.shape != (SCALE_SLOTS,) or dt != np.float32):
        raise ValueError(f"update_step: scaler must be the loss scaler's float32 state ({SCALE_SLOTS} values) and the "
                         f"weights float32, got {scaler.dtype} {tuple(scaler.shape)} for {dt} weights")


_SHAPE = attrgetter("shape")
_NO_SKIP: dict = {}  # (array type, device) -> a 1-element int64 zero there, for updates called without a flag


def _no_skip(like):
    key = (type(like), getattr(like, "device", None))
    if key not in _NO_SKIP:
        _NO_SKIP[key] = array_module(like).zeros(1, np.int64)
    return _NO_SKIP[key]


@update_step.kernel("cpu")
def _update_step_cpu(steps, optimizer, ws, gs, states, h, decay, skip=None, copies=None, scaler=None):
    if optimizer.kernels is None or scaler is not None or copies is not None:
        return NotImplemented  # mixed precision runs on a GPU: on the CPU the reference is its definition
    kernels, arrays, skip = _arguments(steps, optimizer, ws, gs, states, decay, skip)
    if sum(map(_SIZE, ws)) < PARALLEL_MIN_SIZE:
        kernels.cpu(*arrays, h, steps, skip)
    else:
        with cpu_threads(PARALLEL_MIN_SIZE):
            kernels.cpu_parallel(*arrays, h, steps, skip)


@update_step.kernel("cuda")
def _update_step_cuda(steps, optimizer, ws, gs, states, h, decay, skip=None, copies=None, scaler=None):
    if optimizer.kernels is None:
        return NotImplemented
    kernels, arrays, skip = _arguments(steps, optimizer, ws, gs, states, decay, skip, copies, scaler)
    extra = () if scaler is None else (small_array(scaler, steps, "update_step: scaler", "the loss scaler's state",
                                                   lambda a: True),)
    configured(kernels.cuda, *grid(arrays[-2]))(*arrays, h, steps, skip, *extra, counters(steps, 1))
