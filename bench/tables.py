"""Run the benchmark suites the documentation quotes and write its performance tables.

Usage:
    python bench/tables.py                 # every suite below, in order (about 40 minutes on 2 cores)
    python bench/tables.py --suites knn    # only these suites (the other tables stay as they are)
    python bench/tables.py --no-run        # rewrite the tables from the JSON already there

Each suite runs as ``pytest bench/test_SUITE.py --benchmark-json=docs/performance/json/SUITE.json``
(peers interleaved in one run: ``bench/conftest.py``). This script adds to that JSON what the figures
depend on besides the code (CPU, library versions, every BLAS loaded and the kernel it picked, the
load average before and after) and what code they measure (the commit, and the gpunn files the
benchmarks ran: ``bench/measured_files.py``), then writes ``docs/performance/SUITE.rst``: those facts,
the data, each peer's threads and BLAS, and per implementation the number of samples, the median
and the spread (the middle half of the samples, and the fastest and slowest). Every figure in the
documentation comes from these files.

The code measured must be committed: a table records the commit it measured, and the docs build
fails when a file it measured has changed in a later commit (``docs/_ext/benchmark_tables.py``).
So this script refuses to run with uncommitted changes under gpunn/, kernels/ or bench/.

Peers at their best: where a peer's OpenBLAS does not know this CPU and falls back to a generic
kernel (faiss-cpu's bundled OpenBLAS 0.3.15 picks ``Prescott`` on some CPUs), every suite runs with
``OPENBLAS_CORETYPE`` set to the kernel NumPy's own, newer OpenBLAS picks here, and the tables say so.
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
# the code a table measures besides what its benchmarks record: the suite's own file and the timing helpers
BENCH_FILES = ["bench/conftest.py", "bench/peers.py", "bench/measured_files.py"]
# OpenBLAS's fallback kernels: one of these on a modern x86 CPU means the library does not know the CPU
GENERIC_KERNELS = {"prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington",
                   "nehalem", "atom", "generic", "unknown", ""}
PEER_MODULES = ["numpy", "scipy.linalg", "torch", "faiss"]  # each loads its own BLAS (torch: MKL, not seen here)


def say(message: str) -> None:
    print(f"bench/tables.py: {message}", flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def blas_libraries(env: dict | None = None) -> list[dict]:
    """threadpoolctl's record of every BLAS the peers load, from a fresh process with ``env``."""
    code = ("import importlib, json\n"
            f"for m in {PEER_MODULES!r}:\n"
            "    try: importlib.import_module(m)\n"
            "    except ImportError: pass\n"
            "from threadpoolctl import threadpool_info\n"
            "print(json.dumps([p for p in threadpool_info() if p['user_api'] == 'blas']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def library_name(info: dict) -> str:
    """Whose BLAS it is, from its file's place: ``faiss_cpu.libs/libopenblas...`` -> faiss_cpu."""
    parts = Path(info["filepath"]).parts
    return next((p.removesuffix(".libs") for p in reversed(parts[:-1]) if p.endswith(".libs")), parts[-1])


def coretype_needed(libraries: list[dict]) -> tuple[str | None, str | None]:
    """(OPENBLAS_CORETYPE to set, why) where an OpenBLAS runs a generic kernel; (None, None) where none does.

    The kernel to ask for is the one NumPy's OpenBLAS picks on this CPU (NumPy ships a recent one).
    """
    openblas = [p for p in libraries if p["internal_api"] == "openblas"]
    generic = [p for p in openblas if (p.get("architecture") or "").lower() in GENERIC_KERNELS]
    native = next((p.get("architecture") for p in openblas if library_name(p).startswith("numpy")
                   and (p.get("architecture") or "").lower() not in GENERIC_KERNELS), None)
    if not generic or native is None:
        return None, None
    why = "; ".join(f"{library_name(p)}'s OpenBLAS {p['version']} picks its generic {p.get('architecture')} kernel"
                    for p in generic)
    return native, f"{why}, NumPy's OpenBLAS picks {native} on this CPU"


def environment(libraries: list[dict]) -> dict:
    """What the figures depend on besides the code: versions of gpunn's peers and dependencies, and every BLAS."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    blas = [f"{library_name(p)}: {p['internal_api']} {p['version']} ({p.get('architecture') or '?'}, "
            f"{p['num_threads']} threads)" for p in libraries]
    return {"versions": versions, "blas": blas, "system": f"{platform.system()} {platform.release()}"}


def uncommitted(paths: list[str]) -> list[str]:
    """Those of ``paths`` (files or directories) with changes git has not committed."""
    if not paths:
        return []
    return [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines()]


def run_suite(suite: str, env: dict, coretype_why: str | None, libraries: list[dict]) -> Path:
    """Run bench/test_SUITE.py into docs/performance/json/; add the environment, the load and the measured code."""
    out = OUT / "json" / f"{suite}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    commit = git("rev-parse", "HEAD")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", f"bench/test_{suite}.py", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={out}"], cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench/test_{suite}.py failed (exit {done.returncode}); its table is unchanged")
    seconds = time.perf_counter() - start
    data = report.load(out)
    files = sorted({f for b in data["benchmarks"] for f in b["extra_info"].get("measured_files", [])}
                   | {f"bench/test_{suite}.py", *BENCH_FILES})
    data["environment"] = {**environment(libraries), "load_average_before": load_before[0],
                           "load_average_after": os.getloadavg()[0], "suite_seconds": seconds,
                           "openblas_coretype": env.get("OPENBLAS_CORETYPE"), "openblas_coretype_why": coretype_why}
    data["measured"] = {"commit": commit, "files": files, "uncommitted": uncommitted(files)}
    out.write_text(json.dumps(data, indent=1))
    return out


def list_table(header: list[str], rows: list[list[str]], widths: str | None = None) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", "   :class: perf-table"] + \
        ([f"   :widths: {widths}"] if widths else []) + [""]
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(f"   {'* -' if i == 0 else '  -'} {cell if cell else ' '}")
    return lines + [""]


def describe(data: dict) -> str:
    """One paragraph: when, on what, with which versions and BLAS kernels, under what load, of which commit."""
    env = data.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    measured = data.get("measured") or {}
    commit = measured.get("commit") or data.get("commit_info", {}).get("id", "?")
    code = (f"gpunn at commit ``{commit[:10]}``, {len(measured['files'])} files measured (listed in the JSON)"
            if measured else f"gpunn at commit ``{commit[:10]}`` (the files measured were not recorded)")
    coretype = env.get("openblas_coretype")
    kernel = (f" Every OpenBLAS ran with ``OPENBLAS_CORETYPE={coretype}``: {env.get('openblas_coretype_why')}."
              if coretype else "")
    return (f"Measured {data.get('datetime', '?')[:10]} on {report.machine(data)}, {env.get('system', '?')}; "
            f"BLAS loaded: {'; '.join(env.get('blas', [])) or '?'}.{kernel} {versions}; {code}. "
            f"Load average {env.get('load_average_before', float('nan')):.1f} before the suite and "
            f"{env.get('load_average_after', float('nan')):.1f} after (other work shared the machine); "
            f"the suite ran {env.get('suite_seconds', float('nan')):.0f} s.")


def how_timed(info: dict) -> str:
    if "timing" in info:
        return info["timing"]
    if "rounds" in info:
        return f"{info['rounds']} rounds of {info.get('block', 1)} calls, interleaved in one process"
    return "not recorded"


def table(suite: str, data: dict) -> str:
    """The reStructuredText the performance page includes for one suite."""
    lines = [f".. Written by bench/tables.py from json/{suite}.json: do not edit.", "", describe(data), ""]
    setup = [[b["group"], b["extra_info"].get("data", "not recorded by the benchmark"), how_timed(b["extra_info"])]
             for b in data["benchmarks"] if b["extra_info"].get("interleaved")]
    lines += list_table(["benchmark", "data", "timing"], setup, "25 50 25")
    peers = report.peers(data)
    several = {impl for impl, _, _ in peers if sum(i == impl for i, _, _ in peers) > 1}
    rows = [[impl + (f" ({', '.join(groups)})" if impl in several else ""), str(info["threads"]), info["blas"]]
            for impl, info, groups in peers]
    recorded = {impl for impl, _, _ in peers}
    rows += [[n, "not recorded", "not recorded"] for n in dict.fromkeys(r.impl for r in report.timings(data))
             if n not in recorded]
    lines += list_table(["implementation", "threads", "BLAS"], rows, "25 10 65")
    rows, last = [], None
    ms = report.milliseconds
    for r in report.timings(data):
        recorded = r.low_ms is not None
        rows.append([r.group if r.group != last else "", f"**{r.impl}**" if r.is_base else r.impl, ms(r.ms),
                     f"{ms(r.q1_ms)}-{ms(r.q3_ms)}" if recorded else "not recorded",
                     f"{ms(r.low_ms)}-{ms(r.high_ms)}" if recorded else "not recorded", str(r.samples or "?"),
                     "" if r.is_base else f"{r.ratio:.2f}",
                     "middle halves wider than the difference" if r.within_spread else ""])
        last = r.group
    lines += list_table(["benchmark", "implementation", "median (ms)", "middle half (ms)", "min-max (ms)", "samples",
                         "time / gpunn's", "note"], rows)
    notes = report.notes(data)
    if notes:
        lines += list_table(["benchmark", "measure", "value"], [list(n) for n in notes])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES), help="run only these")
    ap.add_argument("--no-run", action="store_true", help="rewrite the tables from the JSON files only")
    ap.add_argument("--allow-uncommitted", action="store_true",
                    help="run with uncommitted changes to the code (the tables will fail the docs build)")
    args = ap.parse_args()
    env, why, libraries = dict(os.environ), None, []
    if not args.no_run:
        changed = uncommitted(["gpunn", "kernels", "bench"])
        if changed and not args.allow_uncommitted:
            raise SystemExit("bench/tables.py: commit these first (a table records the commit it measured): "
                             + ", ".join(changed))
        libraries = blas_libraries(env)
        coretype, why = coretype_needed(libraries)
        if "OPENBLAS_CORETYPE" in env:
            why = "set by whoever ran bench/tables.py"
        elif coretype:
            env["OPENBLAS_CORETYPE"] = coretype
            libraries = blas_libraries(env)  # what the suites will load: the kernels, as they report them then
            say(f"OPENBLAS_CORETYPE={coretype} for every suite: {why}")
        for line in environment(libraries)["blas"]:
            say(f"BLAS: {line}")
        previous = {s: report.load(OUT / "json" / f"{s}.json").get("environment", {}).get("suite_seconds")
                    for s in args.suites if (OUT / "json" / f"{s}.json").exists()}
        known = [t for t in previous.values() if t]
        if known:
            say(f"{len(args.suites)} suites; their last runs took {sum(known) / 60:.0f} min in all")
    for i, suite in enumerate(args.suites, 1):
        path = OUT / "json" / f"{suite}.json"
        if not args.no_run:
            last = previous.get(suite)
            say(f"[{i}/{len(args.suites)}] {suite}: pytest bench/test_{suite}.py"
                + (f" (last run: {last:.0f} s)" if last else ""))
            start = time.perf_counter()
            run_suite(suite, env, why if "OPENBLAS_CORETYPE" in env else None, libraries)
            say(f"[{i}/{len(args.suites)}] {suite}: done in {time.perf_counter() - start:.0f} s")
        elif not path.exists():
            say(f"{suite}: no {path.relative_to(ROOT)} yet; run without --no-run")
            continue
        (OUT / f"{suite}.rst").write_text(table(suite, report.load(path)))
        say(f"wrote {(OUT / f'{suite}.rst').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
