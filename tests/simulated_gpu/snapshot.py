"""Write real CuPy's API (names, and each callable's parameters) to ``cupy_api.json``: run where CuPy is installed.

The simulated GPU (:mod:`simulated_gpu.strict_cupy`) exposes only what this snapshot lists, with only
these parameters, so code that runs on it uses nothing real CuPy lacks. ``tests/test_simulated_gpu.py``
re-reads the installed CuPy in a subprocess and fails when the snapshot names something CuPy does not have.

    python tests/simulated_gpu/snapshot.py    # needs cupy-cuda12x or cupy-cuda13x; no GPU needed
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

# The namespaces gpunn may touch, by the attribute path from the ``cupy`` module ("" is cupy itself).
NAMESPACES = ("", "random", "linalg", "lib.stride_tricks", "cuda", "cuda.runtime")
CUPYX = ("",)
# Private names gpunn uses on purpose, by path: the compute type of CuPy's matrix products (its only switch for
# TF32, and for float16 products' accumulation), with the values of its constants.
PRIVATE = {
    "_core": ("get_compute_type", "set_compute_type"),
    "_core._routines_linalg": ("COMPUTE_TYPE_TBD", "COMPUTE_TYPE_DEFAULT", "COMPUTE_TYPE_PEDANTIC", "COMPUTE_TYPE_FP16",
                               "COMPUTE_TYPE_FP32", "COMPUTE_TYPE_FP64", "COMPUTE_TYPE_BF16", "COMPUTE_TYPE_TF32"),
}
_TYPE_WORDS = re.compile(r"^(?:(?:int|bint|bool|str|tuple|list|dict|object|Py_ssize_t|_ndarray_base|ndarray|"
                         r"unsigned|long|double|float|size_t|intptr_t)\s+)+")


def _split_params(text: str) -> list[str]:
    """Top-level comma-separated parts of a parameter list (commas inside brackets or quotes stay)."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _from_text(params_text: str) -> dict:
    """{"positional": count or -1 (any), "keywords": [...], "varkw": bool} from a signature's text."""
    positional, keywords, varkw, keyword_only = 0, [], False, False
    for part in _split_params(params_text.replace("\\*", "*")):
        name = _TYPE_WORDS.sub("", part.split("=")[0].split(":")[0].strip()).strip()
        if name in ("self", "cls"):
            continue
        if name == "/":
            keywords = []  # everything before "/" is positional-only
        elif name == "*":
            keyword_only = True
        elif name.startswith("**"):
            varkw = True
        elif name.startswith("*"):
            positional, keyword_only = -1, True
        else:
            if not keyword_only and positional != -1:
                positional += 1
            keywords.append(name)
    return {"positional": positional, "keywords": keywords, "varkw": varkw}


def parameters(obj) -> dict | None:
    """The parameters of a CuPy callable, from its signature or (Cython, ufuncs) its docstring's first line."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        doc = (getattr(obj, "__doc__", None) or "").strip()
        m = re.match(r"^[\w.]*\((.*)\)(?:\s*->.*)?$", doc.splitlines()[0]) if doc else None
        return _from_text(m.group(1)) if m else None
    return _from_text(str(sig)[1:str(sig).rindex(")")])


def describe(obj) -> dict:
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if isinstance(obj, type):
        return {"kind": "type"}
    if callable(obj):
        if type(obj).__name__ == "ufunc":
            return {"kind": "ufunc", "params": parameters(obj), "methods": ufunc_methods(obj)}
        return {"kind": "function", "params": parameters(obj)}
    return {"kind": "value"}


UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "at", "outer")


def ufunc_methods(ufunc) -> list[str]:
    """The ufunc's methods CuPy takes: those that reach the device on arrays over a dummy pointer.

    The others raise ``NotImplementedError`` ("`cupy_maximum.reduce` is not supported yet") before
    touching it, which is what the stand-in must do too.
    """
    import cupy
    import numpy as np

    mem = cupy.cuda.UnownedMemory(0x10000, 1024, owner=None, device_id=0)
    a = cupy.ndarray((4, 2), np.float32, cupy.cuda.MemoryPointer(mem, 0))
    idx = cupy.ndarray((2,), np.int64, cupy.cuda.MemoryPointer(mem, 0))
    calls = {"reduce": lambda f: f(a), "accumulate": lambda f: f(a), "reduceat": lambda f: f(a, idx),
             "at": lambda f: f(a, idx, 1.0), "outer": lambda f: f(a, a)}
    taken = []
    for method in UFUNC_METHODS:
        fn = getattr(ufunc, method, None)
        if fn is None:
            continue
        try:
            calls[method](fn)
        except NotImplementedError:
            continue
        except Exception:  # noqa: BLE001 (accepted, then no driver: CuPy takes it)
            pass
        taken.append(method)
    return taken


def private(root) -> dict:
    """The names of :data:`PRIVATE` that the installed CuPy has, described, constants with their values."""
    out = {}
    for path, names in PRIVATE.items():
        obj = root
        for part in path.split("."):
            obj = getattr(obj, part)
        out[path] = {}
        for name in names:
            if hasattr(obj, name):
                value = getattr(obj, name)
                out[path][name] = {**describe(value), **({"value": int(value)} if isinstance(value, int) else {})}
    return out


def namespace(root, path: str) -> dict:
    obj = root
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return {name: describe(getattr(obj, name)) for name in dir(obj)
            if not name.startswith("_") and name not in ("annotations", "np", "numpy")}


def snapshot() -> dict:
    import cupy
    import cupyx

    return {
        "cupy_version": cupy.__version__,
        "cupy": {path: namespace(cupy, path) for path in NAMESPACES},
        "cupyx": {path: namespace(cupyx, path) for path in CUPYX},
        "ndarray": members(cupy.ndarray),
        "random.Generator": members(cupy.random.Generator),
        "private": private(cupy),
    }


# Protocols beside the public names: items and length, and the exports numba-cuda reads (DLPack, CUDA Array Interface).
PROTOCOLS = ("__getitem__", "__setitem__", "__len__", "__iter__", "__dlpack__", "__dlpack_device__",
             "__cuda_array_interface__")


def members(cls) -> dict:
    """A class's public methods (with parameters) and attributes, plus the protocols in :data:`PROTOCOLS`."""
    out = {}
    for name in dir(cls):
        if name.startswith("_") and name not in PROTOCOLS:
            continue
        attr = getattr(cls, name)
        out[name] = {"kind": "method", "params": parameters(attr)} if callable(attr) else {"kind": "attribute"}
    return out


if __name__ == "__main__":
    out = Path(__file__).with_name("cupy_api.json")
    data = snapshot()
    if len(sys.argv) > 1 and sys.argv[1] == "-":
        json.dump(data, sys.stdout, indent=None, sort_keys=True)
    else:
        out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {out} (CuPy {data['cupy_version']})")
