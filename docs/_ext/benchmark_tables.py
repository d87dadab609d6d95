"""``.. benchmark-table:: SUITE``: a table of ``bench/tables.py``, refused when it is older than the code it measures.

``bench/tables.py`` writes ``performance/SUITE.rst`` and, beside it, ``performance/json/SUITE.json``,
which records the commit the suite ran at and the repository files it measured (the gpunn files
its benchmarks ran, and the suite's own). The directive includes the table and asks git whether any
of those files differs between that commit and ``HEAD``: if one does, the figures describe code that
is no longer there, and the build fails (a warning, which ``-W`` makes an error) naming the files.

A table on the temporary ``benchmark_tables_stale_allowed`` list (docs/conf.py) is shown with a
warning box instead, until it is regenerated; a table on that list that is fresh fails the build,
so that the list empties.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def stale_reason(record: dict, root: Path) -> str | None:
    """Why the figures of ``record`` (a table's JSON) no longer describe the code at ``root``'s HEAD, or None."""
    measured = record.get("measured")
    if not measured or not measured.get("files"):
        return "it does not record which code it measured (it was made before bench/tables.py recorded that)"
    if measured.get("uncommitted"):
        return f"it measured uncommitted changes to {', '.join(measured['uncommitted'])}"
    commit = measured["commit"]
    if _git(root, "rev-parse", "--is-inside-work-tree").returncode != 0:
        return f"{root} is not a git checkout, so its code cannot be compared with the commit measured"
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return f"the commit it measured, {commit[:10]}, is not in this checkout's history (a shallow clone?)"
    diff = _git(root, "diff", "--name-only", commit, "HEAD", "--", *measured["files"])
    if diff.returncode != 0:
        return f"git diff failed: {diff.stderr.strip()}"
    changed = diff.stdout.split()
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        return (f"{len(changed)} of the {len(measured['files'])} files it measured changed after commit {commit[:10]}: "
                f"{shown}")
    return None


class BenchmarkTable(SphinxDirective):
    required_arguments = 1

    def run(self):
        suite = self.arguments[0]
        folder = Path(self.env.srcdir) / self.config.benchmark_tables_dir
        table, record = folder / f"{suite}.rst", folder / "json" / f"{suite}.json"
        for path in (table, record):
            if not path.exists():
                raise self.error(f"benchmark-table {suite}: {path} does not exist (python bench/tables.py --suites "
                                 f"{suite} writes it)")
            self.env.note_dependency(str(path))
        root = Path(self.config.benchmark_tables_root or Path(self.env.srcdir).parent)
        reason = stale_reason(json.loads(record.read_text()), root)
        allowed = suite in self.config.benchmark_tables_stale_allowed
        where = self.get_location()
        lines = table.read_text().splitlines()
        if reason and not allowed:
            logger.warning(f"the {suite} table is older than the code it measures: {reason}; "
                           f"python bench/tables.py --suites {suite} regenerates it", location=where)
        elif not reason and allowed:
            logger.warning(f"the {suite} table is fresh: take it off benchmark_tables_stale_allowed", location=where)
        if reason:
            lines = [".. warning::", "",
                     f"   This table is older than the code it measures: {reason}. Its figures may no longer hold; "
                     f"``python bench/tables.py --suites {suite}`` regenerates it.", ""] + lines
        self.state_machine.insert_input(lines, str(table))
        return []


def setup(app):
    app.add_config_value("benchmark_tables_dir", "performance", "env")
    app.add_config_value("benchmark_tables_root", "", "env")  # the git checkout; default: the docs' parent
    app.add_config_value("benchmark_tables_stale_allowed", [], "env")
    app.add_directive("benchmark-table", BenchmarkTable)
    return {"parallel_read_safe": True}
