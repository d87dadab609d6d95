"""The API reference's rules: every public name documented, ops read as functions, private bases skipped.

- A public module's public names are its ``__all__``; every one that is not itself a module must be
  documented (autosummary, autofunction, ...) under the public module's path, e.g. ``gpunn.nn.Linear``,
  or the build fails.
- gpunn's ops (:class:`gpunn.kernels.op.Op` instances) are documented as the functions they wrap.
- A class's bases are shown as its nearest documented ones (``Linear``: ``Module``, not a private helper
  class), and scikit-learn's generated ``set_*_request`` methods are left to scikit-learn's documentation.
"""

from __future__ import annotations

import importlib
import types

from sphinx.ext.autodoc import FunctionDocumenter
from sphinx.util import logging

logger = logging.getLogger(__name__)

PUBLIC_MODULES = ["gpunn", "gpunn.nn", "gpunn.optim", "gpunn.autograd", "gpunn.data", "gpunn.distributed",
                  "gpunn.checkpoint", "gpunn.gradcheck", "gpunn.lessons", "gpunn.neighbors", "gpunn.knn", "gpunn.ops",
                  "gpunn.plots", "gpunn.preprocessing", "gpunn.cli"]


def public_names() -> list[str]:
    """Every public name, by its documented path ("gpunn.nn.Linear"); a module without ``__all__`` is an error."""
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            logger.warning(f"{module_name} has no __all__: say which of its names are public")
            continue
        names += [f"{module_name}.{n}" for n in exported if not isinstance(getattr(module, n), types.ModuleType)]
    return names


def documented_elsewhere() -> list[str]:
    """Names of the classes whose members a class's page leaves out: gpunn's public classes (each has its own
    page) and the classes gpunn builds on (scikit-learn's mixins, ``object``), whose documentation is theirs.

    A public class's page shows its own members and those it inherits from gpunn's private bases
    (``MLPClassifier.fit`` lives in ``gpunn.classifiers.TrainedClassifier``): for autodoc's
    ``inherited-members`` option, which leaves out the members of the classes named.
    """
    classes = [obj for obj in map(_resolve, public_names()) if isinstance(obj, type)]
    names = {"object"} | {c.__name__ for c in classes}
    for cls in classes:
        names |= {base.__name__ for base in cls.__mro__ if not base.__module__.startswith("gpunn")}
    return sorted(names)


def private_bases() -> list[str]:
    """Dotted names of gpunn's private classes that public classes build on (``gpunn.classifiers.TrainedClassifier``).

    They have no page; a signature that names one (an inherited ``fit`` returning it) shows it as text.
    """
    public = {id(obj) for obj in map(_resolve, public_names())}
    return sorted({f"{base.__module__}.{base.__qualname__}" for obj in map(_resolve, public_names())
                   if isinstance(obj, type) for base in obj.__mro__
                   if base.__module__.startswith("gpunn") and id(base) not in public})


def _resolve(name: str):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def check(app, env):
    documented = set(env.get_domain("py").objects)
    for name in public_names():
        if name not in documented:
            logger.warning(f"public name {name} is not in the API reference (docs/api/)")


class OpDocumenter(FunctionDocumenter):
    """An op (``gpunn.ops.activation``, ...) reads as the function it wraps: its reference's signature and docstring."""

    objtype = "op"
    directivetype = "function"
    priority = FunctionDocumenter.priority + 1

    @classmethod
    def can_document_member(cls, member, membername, isattr, parent):
        from gpunn.kernels.op import Op

        return isinstance(member, Op)


def public_bases(app, name, obj, options, bases: list) -> None:
    """Replace each base that is gpunn's but private (``gpunn.estimator.DeviceClassifier``) by its own bases."""
    bases[:] = _public(bases, set(public_names())) or [object]  # autodoc writes "Bases:" even for an empty list


def _public(bases: list, documented: set) -> list:
    shown = []
    for base in bases:
        if base.__module__.startswith("gpunn") and not any(d.endswith("." + base.__name__) for d in documented):
            more = _public([b for b in base.__bases__ if b is not object], documented)
            shown += [b for b in more if b not in shown]
        elif base not in shown and base is not object:  # "Bases: object" says nothing where there are others
            shown.append(base)
    return shown


def skip_member(app, what, name, obj, skip, options):
    if name.startswith("set_") and name.endswith("_request"):  # scikit-learn's metadata routing, generated
        return True
    return None


def setup(app):
    app.connect("env-check-consistency", check)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-skip-member", skip_member)
    app.add_autodocumenter(OpDocumenter)
    return {"parallel_read_safe": True}
