"""The one factory for elementwise gates: a gate's scalar rules made into its fused CPU and CUDA kernels.

A gate (``gpunn/nn/activations.py``) writes each rule twice, in its own class: in ``xp`` code on whole
arrays (what a student reads, and the reference) and for one element, ``f_scalar(x, k)`` and
``df_scalar(g, s, k)`` (``s``: what the gate saved, its output or its input). :class:`GateKernels` turns
the scalar pair into the kernels of every op family that fuses a gate: each family registers a builder
with :func:`family` (``kernels/activations.py``: the gate alone and the affine layer's bias epilogue;
``kernels/conv_epilogue.py``: the convolution's). The kernels are made when the gate class is defined,
compiled on first call, and cached on disk (:class:`RuleCache`), so a new process loads them.

``k``: the gate's numbers in the arrays' dtype, a named tuple ``(zero, half, one, <the gate's own>)``,
e.g. ``k.alpha``. A float literal in a scalar rule would be float64 and pull a float32 kernel into
float64 arithmetic (on a GPU, at a fraction of the speed): the rules use ``k``'s fields instead.

float16 arrays (mixed precision, CUDA only) get float32 numbers: the CUDA kernels widen each load
(``k.zero + x[i]``: float16 plus float32 is float32, in Numba as in NumPy), so a rule computes in float32
and only the stored result is rounded to float16.
"""

from __future__ import annotations

import collections
import hashlib
import inspect
from typing import Callable

import numba
import numpy as np
from numba import cuda
from numba.core.caching import FunctionCache

from .checks import compute_dtype
from .launch import Kernels

FAMILIES: list[Callable] = []  # builders, (GateKernels) -> {name: Kernels}, registered by the op families
BUILT: dict[str, object] = {}  # "<Class>.<kernel>" -> CUDA kernel of gpunn's own classes, for the offline compiler
OTHERS: dict[str, object] = {}  # the same for classes defined elsewhere (a user's gate): compiled where they run
BASE_NUMBERS = ("zero", "half", "one")


def family(build: Callable) -> Callable:
    """Decorator: ``build(made)`` returns an op family's kernels for one gate; every gate defined later gets them."""
    FAMILIES.append(build)
    return build


class RuleKernels:
    """Kernels made from the scalar rules of one class (a gate, an update rule), compiled on first call.

    ``numbers(dtype, values)`` gives the named tuple of numbers the rules read (``k``, ``h``): 0, 1/2, 1 and
    the class's ``numbers`` in the arrays' dtype (a True/False one stays a bool). :meth:`cpu`, :meth:`cuda`
    and :meth:`both` compile a kernel body, cached on disk by the rules' source.
    """

    def __init__(self, owner: type, rules: tuple):
        self.owner, self.name = owner, owner.__qualname__
        self.fields = BASE_NUMBERS + tuple(owner.numbers)
        self.Numbers = owner.Numbers = _numbers_type(owner, self.fields)  # found by name where it is unpickled
        self.salt = _rules_salt(owner, self.fields, rules)  # None: the rules cannot be read back (no disk cache)
        self._numbers: dict = {}

    def numbers(self, dtype: np.dtype, values: tuple):
        """The rules' numbers for arrays of ``dtype``: 0, 1/2, 1 and ``values`` (in the class's ``numbers`` order),
        in the dtype the kernels compute in (float32 for float16 arrays)."""
        key = (dtype, values)
        k = self._numbers.get(key)
        if k is None:
            cast = compute_dtype(dtype).type
            k = self._numbers[key] = self.Numbers(cast(0), cast(0.5), cast(1),
                                                   *(v if isinstance(v, bool) else cast(v) for v in values))
        return k

    def cpu(self, fn: Callable, parallel: bool = False, fastmath=False):
        """``fn`` (a kernel body calling the compiled rules) compiled for the CPU, cached by the rules' source."""
        dispatcher = numba.njit(parallel=parallel, fastmath=fastmath)(fn)
        if self.salt is not None:
            dispatcher._cache = RuleCache(dispatcher.py_func, self.salt)
        return dispatcher

    def cuda(self, fn: Callable):
        """``fn`` compiled as a CUDA kernel, cached by the rules' source (where numba-cuda caches: on a real GPU)."""
        kernel = cuda.jit(fn)
        if self.salt is not None and hasattr(kernel, "enable_caching"):  # Numba's simulator has no cache
            kernel._cache = _cuda_rule_cache(kernel.py_func, self.salt)
        return kernel

    def both(self, cpu_fn: Callable, cuda_fn: Callable, fastmath=False) -> Kernels:
        """The :class:`~gpunn.kernels.launch.Kernels` of one op direction: ``cpu_fn`` on one thread and on all, ``cuda_fn`` on a GPU.

        ``cpu_fn`` loops with ``prange``: compiled twice, it runs serially, or on Numba's threads.
        """
        return Kernels(self.cpu(cpu_fn, fastmath=fastmath), self.cuda(cuda_fn),
                       self.cpu(cpu_fn, parallel=True, fastmath=fastmath))

    def add(self, name: str, kernels: Kernels) -> None:
        """Keep ``kernels`` as attribute ``name``, and its CUDA kernel where the offline compiler finds it."""
        setattr(self, name, kernels)
        ours = self.owner.__module__.startswith("gpunn.") and "<locals>" not in self.name
        (BUILT if ours else OTHERS)[f"{self.name}.{name}"] = kernels.cuda

    def __repr__(self):
        return f"<kernels of {self.name}: {', '.join(n for n in vars(self) if isinstance(getattr(self, n), Kernels))}>"


class GateKernels(RuleKernels):
    """The fused kernels of one gate class, made from its scalar rules by every registered family.

    ``f`` and ``df`` are the rules compiled for inlining into CPU kernels, ``f_device`` and ``df_device``
    for CUDA; each family's kernels are attributes (``made.forward``, ``made.epilogue``, ...), each a
    :class:`~gpunn.kernels.launch.Kernels`. ``numbers(dtype, values)`` gives the ``k`` a kernel reads.
    """

    def __init__(self, gate: type):
        super().__init__(gate, (gate.f_scalar, gate.df_scalar))
        self.backward_from = gate.backward_from
        self.f = numba.njit(inline="always")(gate.f_scalar)
        self.df = numba.njit(inline="always")(gate.df_scalar)
        self.f_device = cuda.jit(device=True)(gate.f_scalar)
        self.df_device = cuda.jit(device=True)(gate.df_scalar)
        for build in FAMILIES:
            for name, kernels in build(self).items():
                self.add(name, kernels)


def defines_its_rules(cls: type, together: tuple, read: tuple = ()) -> bool:
    """True when each group of names in ``together`` comes from one class of ``cls``'s MRO, and each name in
    ``read`` (what the rules read) from that class or one it derives from.

    A gate that changes ``f`` but inherits ``f_scalar`` would get kernels computing its parent's rule: such
    a class has no kernels, and runs its ``xp`` rules.
    """
    def owner(name):
        return next(c for c in cls.__mro__ if name in c.__dict__)

    if not all(len({owner(name) for name in group}) == 1 for group in together):
        return False
    rules = owner(together[0][0])
    return all(owner(name) in rules.__mro__ for name in read)


def _numbers_type(owner: type, fields: tuple) -> type:
    """The named tuple type of the rules' numbers for ``owner``, reachable as ``owner.Numbers`` (Numba's disk cache
    pickles it by name).

    Its ``__name__`` is the owner's full name: Numba's dispatchers look an argument's type up by a fingerprint
    that holds a named tuple's class name and fields but not its class, so two gates' ``Numbers`` of one name
    and fields would share an entry, and every call of the second gate's kernels would be typed again in Python.
    """
    numbers = collections.namedtuple("Numbers", fields)
    numbers.__module__, numbers.__qualname__ = owner.__module__, f"{owner.__qualname__}.Numbers"
    numbers.__name__ = f"{owner.__module__}.{owner.__qualname__}.Numbers"
    return numbers


def _rules_salt(owner: type, fields: tuple, rules: tuple) -> str | None:
    """A digest of the rules' source and the numbers' names: the part of a cached kernel's key that says which
    rules it computes. None where the source cannot be read or the class cannot be pickled by name."""
    if "<locals>" in owner.__qualname__ or owner.__module__ == "__main__":
        return None
    try:
        source = "".join(inspect.getsource(rule) for rule in rules)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(f"{owner.__module__}.{owner.__qualname__}|{fields}|{source}".encode()).hexdigest()


class RuleCache(FunctionCache):
    """Numba's file cache for a kernel made by this factory, keyed by the gate's rules.

    Numba keys a closure's cached code by its bytecode and its pickled cells, and a compiled rule in a cell
    pickles with a random id (so nothing would ever be found again in a new process). The key here is the
    kernel's bytecode and a digest of the rules' source: the same gate finds its kernels; a changed rule
    compiles anew. The factory's own file is the index's source stamp, so a change to it clears them all.
    """

    def __init__(self, py_func, salt: str):
        self._salt = salt
        super().__init__(py_func)

    def _index_key(self, sig, codegen):
        code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
        return sig, codegen.magic_tuple(), (code, self._salt)


def _cuda_rule_cache(py_func, salt: str):
    """numba-cuda's file cache with :class:`RuleCache`'s key (numba-cuda adds its version and launch config)."""
    from numba.cuda.dispatcher import CUDACache

    class CUDARuleCache(CUDACache):
        def __init__(self, fn):
            self._salt = salt
            super().__init__(fn)

        def _index_key(self, sig, codegen):
            import numba_cuda

            code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
            key = (sig, codegen.magic_tuple(), numba_cuda.__version__, (code, self._salt))
            return key if self._launch_config_key is None else key + (("launch_config", self._launch_config_key),)

    return CUDARuleCache(py_func)
