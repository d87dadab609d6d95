"""Print a Markdown table of interleaved medians and ratios from a pytest-benchmark JSON file.

Usage: python bench/report.py bench.json
For each benchmark, every peer's median is divided by the median of the benchmark's base
(``extra_info["base"]``, normally gpunn): a ratio above 1 means gpunn is that many times faster.
``bench/tables.py`` writes the documentation's tables from the same rows (:func:`timings`, :func:`notes`).
"""

from __future__ import annotations

import argparse
import json

NOTES = {  # extra_info entries shown below the timings, with what they mean
    "fraction_of_copy_bandwidth": "fraction of np.copyto's bandwidth",
    "accuracy": "test accuracy: mean (min-max) over seeds 0-4",
    "samples_per_s": "samples per second",
    "same_neighbours": "share of queries whose neighbours equal the peer's",
    "recall_at_10": "recall@10 against exact search",
    "build_seconds": "index build (s)",
    "1 processes": "one MPI process",
    "2 processes": "two MPI processes",
}


def load(path) -> dict:
    with open(path) as f:
        return json.load(f)


def machine(data: dict) -> str:
    """The CPU and Python that pytest-benchmark recorded."""
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {})
    return f"{cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical CPUs, Python {info.get('python_version', '?')}"


def timings(data: dict) -> list[tuple[str, str, float, float, bool]]:
    """(benchmark, implementation, median ms, time / base time, is base) for every interleaved median."""
    rows = []
    for b in data["benchmarks"]:
        medians, base = b["extra_info"].get("interleaved"), b["extra_info"].get("base")
        if not medians:
            continue
        for impl, t in medians.items():
            rows.append((b["group"], impl, t * 1e3, t / medians[base], impl == base))
    return rows


def show(value, key: str = "") -> str:
    """A note's value as text: shares as percentages, {mean, min, max} as 'mean (min-max)', dicts item by item."""
    if isinstance(value, dict) and set(value) == {"mean", "min", "max"}:
        return f"{value['mean']:.3f} ({value['min']:.3f}-{value['max']:.3f})"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show(v, k)}" for k, v in value.items())
    if isinstance(value, float) and ("share" in key or "fraction" in key):
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def notes(data: dict) -> list[tuple[str, str, str]]:
    """(benchmark, what, value as text) for the extra_info entries listed in :data:`NOTES`."""
    return [(b["group"], NOTES[key], show(value, key)) for b in data["benchmarks"]
            for key, value in b["extra_info"].items() if key in NOTES]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json_file")
    args = ap.parse_args()
    data = load(args.json_file)
    print(f"Machine: {machine(data)}\n")
    print("| benchmark | implementation | median (ms) | time / base time |")
    print("|---|---|---:|---:|")
    for group, impl, ms, ratio, is_base in timings(data):
        print(f"| {group} | {impl}{' (base)' if is_base else ''} | {ms:.2f} | {ratio:.2f}x |")
    rows = notes(data)
    if rows:
        print("\n| benchmark | measure | values |\n|---|---|---|")
        for group, what, value in rows:
            print(f"| {group} | {what} | {value} |")


if __name__ == "__main__":
    main()
