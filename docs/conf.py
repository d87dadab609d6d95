"""Sphinx configuration of gpunn's documentation (build it with ``python docs/build.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gpunn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# the pages run ``gpunn ...`` commands (sphinxcontrib-programoutput): the one installed beside this Python
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("MPLBACKEND", "Agg")

project = "gpunn"
author = "the gpunn contributors"
copyright = "gpunn contributors"
release = version = gpunn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",  # every example on the pages runs: python docs/build.py runs the doctest builder first
    "numpydoc",  # the docstrings are numpydoc's sections (Parameters, Returns, ...)
    "sphinxcontrib.programoutput",  # `gpunn ...` commands run while the docs build; their output is shown
    "lesson_pictures",  # .. lesson:: NAME runs the lesson and shows its pictures
    "api_reference",  # every public name is in the API reference, or the build fails
    "docstring_sections",  # every public callable has its numpydoc sections, or the build fails
    "benchmark_tables",  # .. benchmark-table:: SUITE, refused when older than the code it measures
    "mentions",  # every path and gpunn option README and the docs mention exists, or the build fails
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "performance"]  # performance/*.rst are included by the guide
root_doc = "index"
default_role = "code"  # `x` is code, as in the docstrings

# Broken references are errors (python docs/build.py passes -n -W). The inventories of NumPy, Python and
# scikit-learn are not fetched (intersphinx needs their sites; the build must work offline), so references
# to their names are not checked; every reference to a gpunn name is.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|cupy|cp|sklearn|scipy|dask|da|pathlib|os|collections|typing|numba|tqdm|mpi4py|argparse)(\..*)?"),
    (r"py:class", r"(Path|Callable|Iterable|Iterator|Sequence|Mapping|NamedTuple|array[_-]like|ndarray|optional)"),
    (r"py:class", r"(np\.)?(float32|float64|dtype|Generator|random\.Generator)"),
]

nitpick_ignore = [("py:class", name) for name in __import__("api_reference").private_bases()]

autosummary_generate = True
autosummary_imported_members = False
# a rule owner's Numbers (its kernels' named tuple type) is machinery, not API
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True, "exclude-members": "Numbers"}
# a class's page (_templates/autosummary/class.rst) shows the members it inherits from gpunn's private bases, not
# those of its public or foreign ones
autosummary_context = {"documented_elsewhere": ",".join(__import__("api_reference").documented_elsewhere())}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_member_order = "groupwise"
toc_object_entries_show_parents = "hide"  # the page's contents list fit(), not MLPClassifier.fit(): it fits the column
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_xref_param_type = False
# numpydoc's own validation hook checks by documented name; docs/_ext/docstring_sections.py runs the same
# validator over every public callable by the module that defines it (so modules being rewritten can wait),
# and adds the checks numpydoc has not: stated defaults, Raises, Examples.

# Temporary: tables made before bench/tables.py recorded the code they measure, or measured before the code
# changed. Each is shown with a warning box until `python bench/tables.py --suites NAME` regenerates it; a
# table here that is fresh fails the build (so the list empties).
benchmark_tables_stale_allowed = []

doctest_global_setup = """
import numpy as np
import gpunn as gn
np.set_printoptions(precision=4, suppress=True)
"""
doctest_default_flags = (__import__("doctest").ELLIPSIS | __import__("doctest").NORMALIZE_WHITESPACE)
trim_doctest_flags = True

html_theme = "pydata_sphinx_theme"
html_title = f"gpunn {version}"
html_static_path = ["_static"]
html_css_files = ["gpunn.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
