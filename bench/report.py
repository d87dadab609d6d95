"""Print a Markdown table of interleaved medians and ratios from a pytest-benchmark JSON file.

Usage: python bench/report.py bench.json
For each benchmark, every peer's median is divided by the median of the benchmark's base
(``extra_info["base"]``, normally gpunn): a ratio above 1 means gpunn is that many times faster.
"""

from __future__ import annotations

import argparse
import json


NOTES = {  # extra_info entries printed below the timings, with what they mean
    "same_neighbours": "share of queries whose neighbours equal the peer's",
    "recall_at_10": "recall@10 against exact search",
    "build_seconds": "index build (s)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json_file")
    args = ap.parse_args()
    with open(args.json_file) as f:
        data = json.load(f)
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {})
    print(f"Machine: {cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical CPUs, "
          f"Python {info.get('python_version', '?')}\n")
    print("| benchmark | implementation | median (ms) | time / base time |")
    print("|---|---|---:|---:|")
    for b in data["benchmarks"]:
        medians, base = b["extra_info"].get("interleaved"), b["extra_info"].get("base")
        if not medians:
            continue
        for impl, t in medians.items():
            mark = " (base)" if impl == base else ""
            print(f"| {b['group']} | {impl}{mark} | {t * 1e3:.2f} | {t / medians[base]:.2f}x |")
        if "fraction_of_copy_bandwidth" in b["extra_info"]:
            print(f"| {b['group']} | {base}: fraction of np.copyto bandwidth | | "
                  f"{b['extra_info']['fraction_of_copy_bandwidth']:.0%} |")
    notes = [(b["group"], key, value) for b in data["benchmarks"] for key, value in b["extra_info"].items()
             if key in NOTES]
    if notes:
        print("\n| benchmark | measure | values |\n|---|---|---|")
        for group, key, value in notes:
            shown = ", ".join(f"{impl} {v:.4g}" for impl, v in value.items()) if isinstance(value, dict) else f"{value:.4g}"
            print(f"| {group} | {NOTES[key]} | {shown} |")


if __name__ == "__main__":
    main()
