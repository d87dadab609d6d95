"""Every public callable's docstring has its numpydoc sections, or the docs build fails.

What is checked, for each public name of :data:`api_reference.PUBLIC_MODULES` (a module's ``__all__``)
and each public method and property a public class defines itself:

- numpydoc's own validation (:func:`numpydoc.validate.validate`), the checks in :data:`NUMPYDOC_CHECKS`:
  a docstring with a summary, known sections in numpydoc's order, every parameter documented with a
  type and a description and no parameter that does not exist, a Returns (or Yields) section where
  the code returns (or yields) something;
- a parameter with a default says it on its type line (``epochs : int, default=100``), and a stated
  default that is a Python literal equals the signature's;
- the Raises section names every exception class the callable raises itself (``raise ValueError(...)``
  in its own body);
- an Examples section with ``>>>`` lines (run by the doctest builder like every example in the docs)
  for each estimator, layer, loss, optimizer and the Trainer (:func:`needs_examples`), and for every
  callable of the kNN API and the command line (:data:`EXAMPLE_MODULES`).

Modules being rewritten are listed in :data:`PENDING`: their callables are not checked yet. The list
is temporary. To see what each pending module still lacks::

    python docs/_ext/docstring_sections.py --pending

and ``python docs/_ext/docstring_sections.py`` prints what the build would refuse. A pending module
that lacks nothing fails the build too, so that it leaves the list.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import textwrap
import types
from pathlib import Path

# Temporary: the modules being rewritten this round (their docstrings come with the rewrite). A module
# here is not checked; remove it when it has its sections (the build says when one lacks nothing).
PENDING = []

# numpydoc's checks that apply to every callable (numpydoc.validate.ERROR_MSGS has the rest, which are
# matters of style: capitals, full stops, See Also)
NUMPYDOC_CHECKS = {
    "GL06",  # unknown section
    "GL07",  # sections out of order
    "GL08",  # no docstring
    "SS01",  # no summary
    "PR01",  # a parameter not documented
    "PR02",  # a documented parameter the signature does not have
    "PR03",  # parameters in another order than the signature's
    "PR04",  # a parameter without a type
    "PR07",  # a parameter without a description
    "PR10",  # "name: type" without the space numpydoc needs to read it
    "RT01",  # returns something, no Returns section
    "RT03",  # a return value without a description
    "YD01",  # yields, no Yields section
}

# every public callable of these modules has an Examples section
EXAMPLE_MODULES = ("gpunn.knn", "gpunn.neighbors", "gpunn.cli")


def _public_modules() -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from api_reference import PUBLIC_MODULES

    return PUBLIC_MODULES


def needs_examples(obj, module: str) -> bool:
    """Estimators, layers, losses, optimizers and the Trainer are used from their examples; the kNN API and CLI too."""
    if module.startswith(EXAMPLE_MODULES) and (inspect.isclass(obj) or inspect.isfunction(obj)):
        return True
    if not inspect.isclass(obj):
        return False
    from sklearn.base import BaseEstimator

    import gpunn as gn

    return issubclass(obj, (BaseEstimator, gn.nn.Module, gn.nn.Loss, gn.optim.Optimizer, gn.Trainer))


def defining_module(obj) -> str:
    """The module whose source holds ``obj`` (a method's: its function's)."""
    target = obj.fget if isinstance(obj, property) else obj
    return getattr(target, "__module__", None) or type(target).__module__


def is_pending(module: str, pending) -> str | None:
    """The entry of ``pending`` that covers ``module`` (itself or a package above it), or None."""
    return next((p for p in pending if module == p or module.startswith(p + ".")), None)


def callables(modules) -> list[tuple[str, object]]:
    """(documented name, object) for every public callable: the modules' ``__all__`` and their classes' members
    (their own, and those inherited from gpunn's private bases, as their pages show them).

    An object exported twice (``gpunn.KNeighborsClassifier`` and ``gpunn.neighbors.KNeighborsClassifier``) is
    listed once, under its first name.
    """
    found, seen = [], set()
    public = {id(getattr(importlib.import_module(m), n)) for m in modules
              for n in getattr(importlib.import_module(m), "__all__", [])}

    def add(name, obj):
        if id(obj) not in seen:
            seen.add(id(obj))
            found.append((name, obj))

    def shown_members(cls):
        """The members its page shows: its own, and those of gpunn's private bases (as api_reference has it)."""
        members = {}
        for base in cls.__mro__:
            if base is not cls and (id(base) in public or not base.__module__.startswith("gpunn")):
                break
            for member_name, member in vars(base).items():
                members.setdefault(member_name, member)
        return members.items()

    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType):
                continue
            qualified = f"{module_name}.{name}"
            if inspect.isclass(obj):
                add(qualified, obj)
                for member_name, member in shown_members(obj):
                    if member_name.startswith("_") or re.fullmatch(r"set_\w+_request", member_name):
                        continue  # private, or scikit-learn's generated metadata routing
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if _documented_by_its_base(obj, member_name, member):
                        continue
                    if inspect.isfunction(member) or isinstance(member, property):
                        add(f"{qualified}.{member_name}", member)
            elif callable(obj):
                add(qualified, obj)
    return found


def _documented_by_its_base(cls, name: str, member) -> bool:
    """True for an override with no docstring of its own whose base documents it: Sphinx shows the base's
    docstring there (autodoc inherits docstrings), so it is checked once, on the base. A gate's ``df`` names
    what it saved (``y``, or ``x``) where the base says ``saved``: the contract is the base's."""
    target = member.fget if isinstance(member, property) else member
    if (getattr(target, "__doc__", None) or "").strip():
        return False
    for base in cls.__mro__[1:]:  # the nearest base that documents it (an undocumented one is covered further up)
        inherited = base.__dict__.get(name)
        if inherited is None or inherited is member:
            continue
        if isinstance(inherited, (staticmethod, classmethod)):
            inherited = inherited.__func__
        inherited = inherited.fget if isinstance(inherited, property) else inherited
        if (getattr(inherited, "__doc__", None) or "").strip():
            return True
    return False


def _signature(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def _stated_default(type_line: str):
    """The default a parameter's type line states: ``int, default=100`` -> "100"; None where none is stated."""
    m = re.search(r"\bdefault(?:\s*[=:]\s*|\s+is\s+|\s+)(.+)$", type_line)
    if m:
        return m.group(1).strip()
    return "" if re.search(r"\boptional\b", type_line) else None


def default_problems(obj, doc) -> list[str]:
    """Parameters with a default whose type line does not state it, or states another literal."""
    sig = _signature(obj)
    if sig is None:
        return []
    problems = []
    documented = {p.name.split(":")[0].strip(): p.type for p in doc["Parameters"]}
    for name, param in sig.parameters.items():
        if param.default is inspect.Parameter.empty or name not in documented:
            continue  # no default, or not documented at all (numpydoc's PR01 says so)
        stated = _stated_default(documented[name])
        if not stated:
            problems.append(f"DF01 parameter {name!r} has default {param.default!r}; its type line does not say "
                            f"it: write `{name} : {documented[name] or 'type'}, default={param.default!r}`")
            continue
        try:
            value = ast.literal_eval(stated)
        except (ValueError, SyntaxError):
            continue  # not a literal (np.float32, "the model's device"): read by people, not compared here
        default = param.default
        if type(default).__name__ == "DefaultValue":  # autodoc_preserve_defaults put the source text in its place
            try:
                default = ast.literal_eval(default.name)
            except (ValueError, SyntaxError):
                continue
        if value != default or type(value) is not type(default):
            problems.append(f"DF02 parameter {name!r}: the docstring says default={stated}, "
                            f"the signature's default is {param.default!r}")
    return problems


def _own_raises(obj) -> dict[str, int]:
    """{exception class name: line} for each ``raise Name(...)`` / ``raise Name`` in the callable's own body."""
    target = obj.fget if isinstance(obj, property) else obj
    if inspect.isclass(target):
        target = target.__dict__.get("__init__")
        if target is None:
            return {}
    try:
        lines, first = inspect.getsourcelines(target)
    except (OSError, TypeError):
        return {}
    tree = ast.parse(textwrap.dedent("".join(lines)))
    body = tree.body[0]
    raised = {}

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) and not top:
                continue  # a nested function raises when it is called, not this one
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = exc.id if isinstance(exc, ast.Name) else exc.attr if isinstance(exc, ast.Attribute) else None
                if name and name[0].isupper():
                    raised.setdefault(name, first + child.lineno - 1)
            visit(child, False)

    visit(body, True)
    return raised


def raises_problems(obj, doc) -> list[str]:
    listed = " ".join(f"{p.name} {p.type}" for p in doc["Raises"])
    return [f"RS01 raises {name} (line {line}) but its Raises section does not name it"
            for name, line in _own_raises(obj).items() if not re.search(rf"\b{name}\b", listed)]


def examples_problems(doc) -> list[str]:
    examples = "\n".join(doc["Examples"])
    if not examples.strip():
        return ["EX01 no Examples section: give one with >>> lines (it runs when the docs are built)"]
    if ">>>" not in examples:
        return ["EX02 the Examples section has no >>> line to run"]
    return []


def problems(name: str, obj) -> list[str]:
    """What the docstring of ``obj`` (documented as ``name``) lacks: one line per problem, with its code."""
    from numpydoc.docscrape import get_doc_object
    from numpydoc.validate import validate

    target = obj.fget if isinstance(obj, property) else obj
    if getattr(target, "__name__", "") == "<lambda>":
        return ["GL08 a lambda has no docstring: define it with def and give it one"]
    doc = get_doc_object(target)
    report = validate(doc)
    found = [f"{code} {message}" for code, message in report["errors"] if code in NUMPYDOC_CHECKS
             and not (code == "RT01" and isinstance(obj, property))]  # a property's summary says what it is
    if isinstance(obj, property) or not (inspect.getdoc(target) or "").strip():
        return found  # a property documents what it is; a callable with no docstring is GL08 alone
    found += default_problems(target, doc) + raises_problems(obj, doc)
    if needs_examples(target, defining_module(obj)):
        found += examples_problems(doc)
    return found


def where(obj) -> str:
    """``path:line`` of ``obj``'s definition, for messages."""
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    try:
        path = Path(inspect.getsourcefile(target)).resolve()
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        return "?"
    try:
        path = path.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"{path}:{line}"


def report(modules, pending) -> tuple[dict, dict]:
    """({name: problems} of the checked callables, {pending module: {name: problems}})."""
    checked, waiting = {}, {p: {} for p in pending}
    for name, obj in callables(modules):
        entry = is_pending(defining_module(obj), pending)
        found = problems(name, obj)
        if entry is not None:
            waiting[entry][name] = found
        elif found:
            checked[name] = found
    return checked, waiting


# --------------------------------------------------------------------------- in the docs build


def check(app, env) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    modules = app.config.docstring_sections_modules or _public_modules()
    checked, waiting = report(modules, app.config.docstring_sections_pending)
    objects = dict(callables(modules))
    for name, found in checked.items():
        for line in found:
            logger.warning(f"{name}: {line}", location=where(objects[name]), type="docstring", subtype="sections")
    for module, names in waiting.items():
        if names and not any(names.values()):  # a module with no public callable has nothing to wait for
            logger.warning(f"{module} is in docstring_sections.PENDING but lacks no section: take it off the list",
                           type="docstring", subtype="pending")


def setup(app):
    app.add_config_value("docstring_sections_modules", [], "env")  # default: api_reference.PUBLIC_MODULES
    app.add_config_value("docstring_sections_pending", PENDING, "env")
    app.connect("env-check-consistency", check)
    return {"parallel_read_safe": True}


# --------------------------------------------------------------------------- from the command line


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="What the public callables' docstrings lack (numpydoc sections).")
    ap.add_argument("--pending", action="store_true", help="what each module still on PENDING lacks")
    args = ap.parse_args(argv)
    checked, waiting = report(_public_modules(), PENDING)
    shown = {m: {n: f for n, f in names.items() if f} for m, names in waiting.items()} if args.pending else \
        {"checked by the docs build": checked}
    objects = dict(callables(_public_modules()))
    total = 0
    for module, names in shown.items():
        count = sum(map(len, names.values()))
        total += count
        print(f"{module}: {count} problem{'s' if count != 1 else ''} in {len(names)} callables")
        for name, found in names.items():
            print(f"  {name}  ({where(objects[name])})")
            for line in found:
                print(f"    {line}")
    return 1 if total and not args.pending else 0


if __name__ == "__main__":
    sys.exit(main())
