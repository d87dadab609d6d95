"""The docs build's own checks, each on a small Sphinx project built for real: it must fail where the check says.

- docs/_ext/docstring_sections.py: a public callable without its numpydoc sections, with a default its
  docstring misstates, raising what its Raises section does not name, or an estimator without examples;
- docs/_ext/benchmark_tables.py: a benchmark table older than the code it measures;
- docs/_ext/mentions.py: a path mentioned that does not exist.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "docs" / "_ext"


def build(src: Path, conf: str, index: str, builder: str = "doctest") -> subprocess.CompletedProcess:
    """``sphinx -b BUILDER -W --keep-going`` on a project of one page, as docs/build.py runs it."""
    (src / "conf.py").write_text(f"import sys\nsys.path[:0] = [{str(src)!r}, {str(EXT)!r}]\n" + textwrap.dedent(conf))
    (src / "index.rst").write_text(textwrap.dedent(index))
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", builder, "-W", "--keep-going", "-q", "-E",
                           str(src), str(src / "_build")], capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- numpydoc sections

SECTIONS_CONF = """
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "numpydoc", "docstring_sections"]
docstring_sections_modules = ["tinypkg"]
docstring_sections_pending = {pending!r}
numpydoc_show_class_members = False
"""
INDEX = """
Tiny
====

.. automodule:: tinypkg
   :members:
"""
GOOD = '''
"""A tiny package."""
from sklearn.base import BaseEstimator

__all__ = ["scale", "Doubler"]


def scale(x, factor=2.0):
    """Multiply ``x`` by ``factor``.

    Parameters
    ----------
    x : float
        The value.
    factor : float, default=2.0
        The factor; not 0.

    Returns
    -------
    float
        ``x * factor``.

    Raises
    ------
    ValueError
        If ``factor`` is 0.
    """
    if factor == 0:
        raise ValueError("factor must not be 0")
    return x * factor


class Doubler(BaseEstimator):
    """Double every value.

    Parameters
    ----------
    offset : float, default=0.0
        Added after doubling.

    Examples
    --------
    >>> from tinypkg import Doubler
    >>> Doubler(1.0).apply(3.0)
    7.0
    """

    def __init__(self, offset=0.0):
        self.offset = offset

    def apply(self, x):
        """Double ``x`` and add the offset.

        Parameters
        ----------
        x : float
            The value.

        Returns
        -------
        float
            ``2 x + offset``.
        """
        return 2 * x + self.offset
'''


def sections_build(tmp_path, source: str, pending=()):
    (tmp_path / "tinypkg.py").write_text(source)
    return build(tmp_path, SECTIONS_CONF.format(pending=list(pending)), INDEX)


def test_sections_complete_build_passes(tmp_path):
    done = sections_build(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("change, expected", [
    (("    Parameters\n    ----------\n    x : float\n        The value.\n    factor : float, default=2.0\n"
      "        The factor; not 0.\n\n", ""), "tinypkg.scale: PR01 Parameters {"),
    (("    factor : float, default=2.0\n", "    factor : float\n"), "tinypkg.scale: DF01 parameter 'factor' has default"),
    (("    factor : float, default=2.0\n", "    factor : float, default=3.0\n"),
     "tinypkg.scale: DF02 parameter 'factor': the docstring says default=3.0, the signature's default is 2.0"),
    (("    Raises\n    ------\n    ValueError\n        If ``factor`` is 0.\n", ""),
     "tinypkg.scale: RS01 raises ValueError"),
    (("    Returns\n    -------\n    float\n        ``x * factor``.\n\n", ""), "tinypkg.scale: RT01 No Returns"),
    (("    Examples\n    --------\n    >>> from tinypkg import Doubler\n    >>> Doubler(1.0).apply(3.0)\n    7.0\n", ""),
     "tinypkg.Doubler: EX01 no Examples section"),
    (("    offset : float, default=0.0\n", "    offset: float, default=0.0\n"), "PR10"),
])
def test_a_missing_or_wrong_section_fails_the_build(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    done = sections_build(tmp_path, GOOD.replace(old, new, 1))
    assert done.returncode != 0 and expected in done.stderr, done.stderr


def test_examples_run_and_a_wrong_output_fails(tmp_path):
    done = sections_build(tmp_path, GOOD.replace("    7.0\n", "    8.0\n"))
    assert done.returncode != 0 and "Failed example" in done.stdout + done.stderr


def test_a_pending_module_waits_until_it_lacks_nothing(tmp_path):
    bare = GOOD.replace("    Parameters\n    ----------\n    x : float\n        The value.\n    factor", "    factor")
    assert sections_build(tmp_path, bare, pending=["tinypkg"]).returncode == 0
    done = sections_build(tmp_path, GOOD, pending=["tinypkg"])
    assert done.returncode != 0 and "tinypkg is in docstring_sections.PENDING but lacks no section" in done.stderr


# --------------------------------------------------------------------------- benchmark tables

TABLE_CONF = """
extensions = ["benchmark_tables"]
exclude_patterns = ["_build", "performance"]
benchmark_tables_root = {root!r}
benchmark_tables_stale_allowed = {allowed!r}
"""
TABLE_INDEX = """
Tables
======

.. benchmark-table:: demo
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def measured_repo(tmp_path):
    """A git repository whose table measured pkg/fast.py at its first commit."""
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "fast.py").write_text("def f():\n    return 1\n")
    (repo / "pkg" / "other.py").write_text("")
    (repo / "docs" / "performance" / "json").mkdir(parents=True)
    (repo / "docs" / "performance" / "demo.rst").write_text("The table: 1.00 ms.\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "code")
    record = {"measured": {"commit": git(repo, "rev-parse", "HEAD"), "files": ["pkg/fast.py"], "uncommitted": []}}
    (repo / "docs" / "performance" / "json" / "demo.json").write_text(json.dumps(record))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the table")
    return repo


def table_build(repo: Path, allowed=()):
    return build(repo / "docs", TABLE_CONF.format(root=str(repo), allowed=list(allowed)), TABLE_INDEX, "html")


def test_a_fresh_table_passes_and_other_changes_keep_it_fresh(measured_repo):
    assert table_build(measured_repo).returncode == 0
    (measured_repo / "pkg" / "other.py").write_text("x = 1\n")
    git(measured_repo, "commit", "-qam", "code it does not measure")
    done = table_build(measured_repo)
    assert done.returncode == 0, done.stderr
    assert "The table: 1.00 ms." in (measured_repo / "docs" / "_build" / "index.html").read_text()


def test_a_table_older_than_its_code_fails_the_build(measured_repo):
    (measured_repo / "pkg" / "fast.py").write_text("def f():\n    return 2\n")
    git(measured_repo, "commit", "-qam", "faster")
    done = table_build(measured_repo)
    assert done.returncode != 0
    assert "the demo table is older than the code it measures: 1 of the 1 files it measured changed" in done.stderr
    assert "pkg/fast.py" in done.stderr


def test_a_stale_table_on_the_list_shows_a_warning_and_a_fresh_one_must_leave_it(measured_repo):
    assert "take it off benchmark_tables_stale_allowed" in table_build(measured_repo, ["demo"]).stderr
    (measured_repo / "pkg" / "fast.py").write_text("def f():\n    return 2\n")
    git(measured_repo, "commit", "-qam", "faster")
    done = table_build(measured_repo, ["demo"])
    assert done.returncode == 0, done.stderr
    assert "This table is older than the code it measures" in (measured_repo / "docs" / "_build" / "index.html").read_text()


def test_a_table_that_does_not_say_what_it_measured_fails(measured_repo):
    (measured_repo / "docs" / "performance" / "json" / "demo.json").write_text("{}")
    done = table_build(measured_repo)
    assert done.returncode != 0 and "does not record which code it measured" in done.stderr


# --------------------------------------------------------------------------- mentioned paths

def test_a_path_that_does_not_exist_fails_the_build(tmp_path):
    (tmp_path / "docs").mkdir()
    conf = f"extensions = ['mentions']\nmentions_root = {str(tmp_path)!r}\n"
    (tmp_path / "README.md").write_text("Run `python tools/make.py`.\n")
    done = build(tmp_path / "docs", conf, "Docs\n====\n", "html")
    assert done.returncode != 0 and "`tools/make.py` does not exist (mentioned in README.md)" in done.stderr
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "make.py").write_text("")
    assert build(tmp_path / "docs", conf, "Docs\n====\n", "html").returncode == 0
