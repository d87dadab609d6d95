"""Print a Markdown table of interleaved medians and ratios from a pytest-benchmark JSON file.

Usage: python bench/report.py bench.json
For each benchmark, every peer's median is divided by the median of the benchmark's base
(``extra_info["base"]``, normally gpunn): a ratio above 1 means gpunn is that many times faster.
``bench/tables.py`` writes the documentation's tables from the same rows (:func:`timings`, :func:`notes`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import NamedTuple

NOTES = {  # extra_info entries shown below the timings, with what they mean
    "fraction_of_copy_bandwidth": "fraction of np.copyto's bandwidth",
    "accuracy": "test accuracy: mean (min-max) over seeds 0-4",
    "samples_per_s": "samples per second",
    "same_neighbours": "share of queries whose neighbours equal the peer's",
    "recall_at_10": "recall@10 against exact search",
    "build_seconds": "index build (s)",
    "1 process": "one MPI process (medians)",
    "2 processes": "two MPI processes (medians)",
}


def load(path) -> dict:
    with open(path) as f:
        return json.load(f)


def machine(data: dict) -> str:
    """The CPU and Python that pytest-benchmark recorded."""
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {})
    return f"{cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical CPUs, Python {info.get('python_version', '?')}"


class Row(NamedTuple):
    """One implementation's timing in one benchmark."""

    group: str
    impl: str
    ms: float  # median over the rounds
    ratio: float  # its median / the base's median: above 1, the base (gpunn) is faster
    is_base: bool
    low_ms: float | None  # the fastest and slowest round (None where the samples were not recorded)
    high_ms: float | None
    q1_ms: float | None  # the middle half of the rounds: first and third quartiles
    q3_ms: float | None
    samples: int | None  # how many samples the median is of (a round's block mean each, where interleaved)
    within_spread: bool  # the middle half of this row or of the base is wider than the difference of their medians


def timings(data: dict) -> list[Row]:
    """A :class:`Row` for every implementation of every interleaved benchmark."""
    rows = []
    for b in data["benchmarks"]:
        info = b["extra_info"]
        medians, base, samples = info.get("interleaved"), info.get("base"), info.get("samples", {})
        if not medians:
            continue
        quartiles = {impl: quartile_pair(ts) for impl, ts in samples.items() if ts}
        iqr = {impl: q3 - q1 for impl, (q1, q3) in quartiles.items()}
        for impl, t in medians.items():
            ts = samples.get(impl)
            q1, q3 = quartiles.get(impl, (None, None))
            margin = abs(t - medians[base])
            wide = impl != base and max(iqr.get(impl, 0.0), iqr.get(base, 0.0)) > margin
            ms = (lambda v: None if v is None else v * 1e3)
            rows.append(Row(b["group"], impl, t * 1e3, t / medians[base], impl == base,
                            ms(min(ts)) if ts else None, ms(max(ts)) if ts else None, ms(q1), ms(q3),
                            len(ts) if ts else info.get("rounds"), wide))
    return rows


def quartile_pair(samples: list) -> tuple[float, float]:
    """The first and third quartiles of the samples (the middle half lies between them)."""
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


def milliseconds(value: float) -> str:
    """A time in ms with three significant digits, trailing zeros kept (1.00, 0.0544, 17.6, 1,041)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:#.3g}"


def peers(data: dict) -> list[tuple[str, dict, list[str]]]:
    """(implementation, {"threads", "blas"}, the benchmarks that recorded it so) for each distinct record."""
    found = {}
    for b in data["benchmarks"]:
        for impl, info in b["extra_info"].get("peers", {}).items():
            key = (impl, info.get("threads"), info.get("blas"))
            found.setdefault(key, (impl, info, []))[2].append(b["group"])
    return list(found.values())


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
    print("| benchmark | implementation | median (ms) | middle half (ms) | min-max (ms) | samples | time / base time | |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in timings(data):
        half = f"{milliseconds(r.q1_ms)}-{milliseconds(r.q3_ms)}" if r.q1_ms is not None else "?"
        spread = f"{milliseconds(r.low_ms)}-{milliseconds(r.high_ms)}" if r.low_ms is not None else "?"
        print(f"| {r.group} | {r.impl}{' (base)' if r.is_base else ''} | {milliseconds(r.ms)} | {half} | {spread} | "
              f"{r.samples} | {r.ratio:.2f}x | {'spread wider than the difference' if r.within_spread else ''} |")
    rows = notes(data)
    if rows:
        print("\n| benchmark | measure | values |\n|---|---|---|")
        for group, what, value in rows:
            print(f"| {group} | {what} | {value} |")
    for impl, info, groups in peers(data):
        print(f"{impl} ({', '.join(groups)}): {info['threads']} threads, {info['blas']}")


if __name__ == "__main__":
    main()
