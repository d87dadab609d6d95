"""Run the benchmark suites the documentation quotes and write its performance tables.

Usage:
    python bench/tables.py                 # every suite below: about an hour on 2 cores
    python bench/tables.py --suites knn    # only these suites (the other tables stay as they are)
    python bench/tables.py --no-run        # rewrite the tables from the JSON already there

Each suite runs as ``pytest bench/test_SUITE.py --benchmark-json=docs/performance/json/SUITE.json``
(peers interleaved in one run: ``bench/conftest.py``); this script adds the machine's description to
that JSON (CPU, cores, library versions, BLAS, load average before and after) and writes
``docs/performance/SUITE.rst``: the machine, the date and the table of medians and ratios that
``bench/report.py`` computes. Every figure in the documentation comes from these files; the guide
includes them and states none of its own.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import report

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "performance"
# suite -> what its table shows; the order of the performance page
SUITES = {
    "train_step": "One SGD training step of a two-layer ReLU net",
    "kernels": "Fused activation kernels, forward + backward, 16M float32",
    "fit": "Fitting the classifiers with their defaults beside scikit-learn's",
    "conv": "Convolutions and the ConvNet's training step",
    "knn": "k-nearest neighbours",
    "autograd": "Autograd expressions",
    "trainer_epoch": "The Trainer's overhead over a loop written by hand",
    "dask_knn": "k-nearest neighbours on a Dask cluster",
    "distributed": "Data-parallel training over MPI",
}
LIBRARIES = ["numpy", "numba", "scipy", "scikit-learn", "torch", "faiss-cpu", "dask", "mpi4py", "mpich", "cupy-cuda12x",
             "cupy-cuda13x", "pytest-benchmark"]


def environment() -> dict:
    """What the figures depend on besides the code: versions of gpunn's peers and dependencies, and NumPy's BLAS."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    import numpy  # noqa: F401 (loads the BLAS that threadpoolctl describes)
    from threadpoolctl import threadpool_info

    blas = [f"{p['internal_api']} {p['version']} ({p.get('architecture') or '?'}, {p['num_threads']} threads)"
            for p in threadpool_info() if p["user_api"] == "blas"]
    return {"versions": versions, "blas": blas, "system": f"{platform.system()} {platform.release()}"}


def run_suite(suite: str) -> Path:
    """Run bench/test_SUITE.py with its JSON into docs/performance/json/; adds the environment and the load."""
    out = OUT / "json" / f"{suite}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", f"bench/test_{suite}.py", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={out}"], cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"bench/test_{suite}.py failed (exit {done.returncode}); its table is unchanged")
    data = report.load(out)
    data["environment"] = {**environment(), "load_average_before": load_before[0],
                           "load_average_after": os.getloadavg()[0], "suite_seconds": time.perf_counter() - start}
    out.write_text(json.dumps(data, indent=1))
    return out


def list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", "   :class: perf-table", ""]
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(f"   {'* -' if i == 0 else '  -'} {cell if cell else ' '}")
    return lines + [""]


def describe(data: dict) -> str:
    """One paragraph: when, on what, with which versions, under what load."""
    env = data.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    commit = data.get("commit_info", {})
    at = f"gpunn at commit ``{commit.get('id', '?')[:10]}``" + (" with local changes" if commit.get("dirty") else "")
    return (f"Measured {data.get('datetime', '?')[:10]} on {report.machine(data)}, {env.get('system', '?')}; "
            f"BLAS: {'; '.join(env.get('blas', [])) or '?'}; {versions}; {at}. "
            f"Load average {env.get('load_average_before', float('nan')):.1f} before the suite and "
            f"{env.get('load_average_after', float('nan')):.1f} after (other work shared the machine); "
            f"the suite ran {env.get('suite_seconds', float('nan')):.0f} s.")


def table(suite: str, data: dict) -> str:
    """The reStructuredText the performance page includes for one suite."""
    rows, last = [], None
    for group, impl, ms, ratio, is_base in report.timings(data):
        rows.append([f"{group}" if group != last else "", f"**{impl}**" if is_base else impl, report.show(ms),
                     "" if is_base else f"{ratio:.2f}"])
        last = group
    lines = [f".. Written by bench/tables.py from json/{suite}.json: do not edit.", "", describe(data), ""]
    lines += list_table(["benchmark", "implementation", "median (ms)", "time / gpunn's"], rows)
    notes = report.notes(data)
    if notes:
        lines += list_table(["benchmark", "measure", "value"], [list(n) for n in notes])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES), help="run only these")
    ap.add_argument("--no-run", action="store_true", help="rewrite the tables from the JSON files only")
    args = ap.parse_args()
    for suite in args.suites:
        path = OUT / "json" / f"{suite}.json"
        if not args.no_run:
            run_suite(suite)
        elif not path.exists():
            print(f"{suite}: no {path.relative_to(ROOT)} yet; run without --no-run")
            continue
        (OUT / f"{suite}.rst").write_text(table(suite, report.load(path)))
        print(f"wrote {(OUT / f'{suite}.rst').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
