"""Print a Markdown table of medians and ratios from a pytest-benchmark JSON file.

Usage: python bench/report.py bench.json [--base gpunn]
Each group's entries are compared with the ``--base`` implementation (``extra_info["impl"]``):
a ratio above 1 means the base is that many times faster than that entry.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json_file")
    ap.add_argument("--base", default="gpunn")
    args = ap.parse_args()
    with open(args.json_file) as f:
        data = json.load(f)
    groups = defaultdict(dict)
    for b in data["benchmarks"]:
        groups[b["group"]][b["extra_info"].get("impl", b["name"])] = b["stats"]["median"]
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw", platform.processor())
    print(f"Machine: {cpu}, {info.get('cpu', {}).get('count', '?')} logical CPUs, Python {info.get('python_version')}\n")
    print(f"| benchmark | implementation | median (ms) | time / {args.base} time |")
    print("|---|---|---:|---:|")
    for group, medians in groups.items():
        base = medians.get(args.base)
        for impl, t in medians.items():
            ratio = f"{t / base:.2f}x" if base else "-"
            print(f"| {group} | {impl} | {t * 1e3:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
