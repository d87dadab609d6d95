"""Compile gpunn's CUDA kernels with NVIDIA's compiler, without a GPU, and judge what comes out.

Each kernel is compiled by numba-cuda (NVVM) to PTX for sm_80 and sm_90 with the argument types its
launches passed (recorded by :mod:`simulated_gpu.kernel_launches` while the simulated-GPU tests ran),
then linked by nvJitLink to machine code, whose report gives registers, spills, stack and shared
memory. :func:`problems` names what a GPU would pay for:

- a kernel that does not compile;
- any spill, stack frame or local memory;
- a float64 instruction in a float32 or float16 variant (a constant or a conversion that left float32);
- a 64-bit integer division or remainder in an innermost loop (about a hundred instructions per element).

Run as a program (without ``NUMBA_ENABLE_CUDASIM``): it reads launches as JSON and writes reports.

    python tests/simulated_gpu/offline_compile.py build/cuda-launches.json --markdown   # bench/GPU.md's table
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CCS = ((8, 0), (9, 0))
CACHE = Path(os.environ.get("GPUNN_CUDA_COMPILE_CACHE", Path(__file__).resolve().parents[2] / "build" / "cuda-compile"))
_PTXAS = {
    "registers": r"Used (\d+) registers", "spill_stores": r"(\d+) bytes spill stores",
    "spill_loads": r"(\d+) bytes spill loads", "stack": r"(\d+) bytes stack frame",
    "smem": r"(\d+) bytes smem", "lmem": r"(\d+) bytes lmem",
}
# Per SM: threads, warps, blocks, 32-bit registers, shared memory usable by blocks (bytes).
SM_LIMITS = {(8, 0): (2048, 64, 32, 65536, 167936), (9, 0): (2048, 64, 32, 65536, 233472)}


def numba_type(desc):
    """The Numba type a launch recorded (simulated_gpu.kernel_launches.describe): arrays, scalars, (named) tuples."""
    import numba
    import numpy as np

    if desc[0] == "array":
        _, dtype, ndim, layout = desc
        return numba.types.Array(numba.from_dtype(np.dtype(dtype)), ndim, layout)
    if desc[0] == "tuple":
        members = [numba_type(d) for d in desc[1]]
        if not desc[2]:
            same = all(m == members[0] for m in members)
            return numba.types.UniTuple(members[0], len(members)) if same and members else numba.types.Tuple(members)
        module, qualname = desc[2].split(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        same = all(m == members[0] for m in members)
        return numba.types.NamedUniTuple(members[0], len(members), cls) if same else numba.types.NamedTuple(members,
                                                                                                              cls)
    return getattr(numba.types, desc[1])


def kernel_function(module: str, qualname: str):
    """The Python function of a kernel, from the locator kernel_launches recorded (``a.b``, ``NAME[i]``, ``NAME['k']``)."""
    return kernel_dispatcher(module, qualname).py_func


def kernel_dispatcher(module: str, qualname: str):
    """The kernel's numba-cuda dispatcher, from the locator kernel_launches recorded."""
    obj = importlib.import_module(module)
    name, _, index = qualname.partition("[")
    for part in name.split("."):
        obj = getattr(obj, part)
    if index:
        index = index.rstrip("]")
        obj = obj[index.strip("'")] if index.startswith("'") else list(obj.values())[int(index)]
    return obj


def _ptx_for(fn, signature, cc) -> str:
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    # Device functions are compiled for the current device's architecture: there is none here, so say which.
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    ptx, _ = cuda.compile_ptx(fn, tuple(numba_type(d) for d in signature), cc=cc)
    return ptx


def _link(ptx: str, cc) -> str:
    """nvJitLink's report for the PTX linked to sm_XY machine code (ptxas's register and memory lines)."""
    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(2, [f"-arch=sm_{cc[0]}{cc[1]}", "-verbose"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        size = nvjitlink.get_info_log_size(handle)
        log = bytearray(size)
        nvjitlink.get_info_log(handle, log)
        return log.decode(errors="replace")
    finally:
        nvjitlink.destroy(handle)


def _instructions(ptx: str):
    for line in ptx.splitlines():
        line = line.split("//")[0].strip()
        if line and not line.startswith((".", "}", "{")) and not line.endswith(":"):
            yield line


def float64_instructions(ptx: str) -> int:
    return sum(1 for line in _instructions(ptx) if re.search(r"\.f64\b", line))


def _blocks(body: list[str]):
    """Basic blocks of one PTX function body: (label or None, instructions, successor labels or indices)."""
    blocks, current = [], [None, []]
    for line in body:
        if re.fullmatch(r"\$\w+:", line):
            blocks.append(current)
            current = [line[:-1], []]
        elif line:
            current[1].append(line)
            if re.search(r"\bbra\b|\bret\b|\bexit\b", line):
                blocks.append(current)
                current = [None, []]
    blocks.append(current)
    blocks = [b for b in blocks if b[0] is not None or b[1]]
    index = {b[0]: i for i, b in enumerate(blocks) if b[0] is not None}
    succ = []
    for i, (_, lines) in enumerate(blocks):
        last = lines[-1] if lines else ""
        m = re.search(r"\bbra(?:\.uni)?\s+(\$\w+);", last)
        out = [index[m.group(1)]] if m else []
        unconditional = re.match(r"(?:bra|ret|exit)\b", last) is not None
        if not unconditional and i + 1 < len(blocks):
            out.append(i + 1)  # falls through (or a predicated branch that is not taken)
        succ.append(out)
    return blocks, succ


def _innermost_loop_blocks(succ: list[list[int]]) -> set[int]:
    """Blocks of the innermost natural loops: for each back edge u -> h (h dominates u), the blocks that reach
    u without passing h; of those loops, the ones with no other loop inside. Their code runs per element."""
    n = len(succ)
    preds = [[] for _ in range(n)]
    for u, outs in enumerate(succ):
        for v in outs:
            preds[v].append(u)
    dom = [set(range(n)) for _ in range(n)]
    dom[0] = {0}
    changed = True
    while changed:
        changed = False
        for v in range(1, n):
            new = set.intersection(*(dom[p] for p in preds[v])) | {v} if preds[v] else {v}
            if new != dom[v]:
                dom[v], changed = new, True
    loops = {}
    for u, outs in enumerate(succ):
        for h in outs:
            if h in dom[u]:  # a back edge: its loop is h plus whatever reaches u without passing h
                body, stack = {h, u}, [u] if u != h else []
                while stack:
                    for p in preds[stack.pop()]:
                        if p not in body:
                            body.add(p)
                            stack.append(p)
                loops.setdefault(h, set()).update(body)
    innermost = [body for h, body in loops.items() if not any(g != h and g in body for g in loops)]
    return set().union(*innermost) if innermost else set()


def divisions_in_loops(ptx: str) -> int:
    """64-bit integer divisions and remainders inside innermost loops: per element, in each function's control flow.

    Division once per row, in a loop around the loop over a row's elements, is the price of a row's
    indices; inside the innermost loop it is paid for every element.
    """
    count = 0
    for body in re.findall(r"\{(.*?)\n\}", ptx, flags=re.S):
        lines = [line.split("//")[0].strip() for line in body.splitlines()]
        blocks, succ = _blocks([line for line in lines if line and not line.startswith(".")])
        for i in _innermost_loop_blocks(succ):
            count += sum(1 for line in blocks[i][1] if re.search(r"\b(?:div|rem)\.[su]64\b", line))
    return count


def occupancy(cc, threads: int, registers: int, smem: int) -> float:
    """Fraction of the SM's warps a launch of ``threads`` per block keeps busy (CUDA's occupancy calculation)."""
    max_threads, max_warps, max_blocks, regs, shared = SM_LIMITS[cc]
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(max(registers, 1) * 32 / 256) * 256
    by_regs = (regs // per_warp) // warps
    by_smem = shared // (math.ceil(smem / 128) * 128 + 1024) if smem else max_blocks
    blocks = min(max_blocks, max_warps // warps, by_regs, by_smem)
    return blocks * warps / max_warps


def compile_one(job: dict) -> dict:
    """Compile one (kernel, signature) for one architecture; the report is cached by source, signature and tools."""
    import numba_cuda

    cc = tuple(job["cc"])
    source = Path(importlib.import_module(job["module"]).__file__).read_bytes()
    judge = Path(__file__).read_bytes()  # a change in how reports are made or judged invalidates them
    key = hashlib.sha256(json.dumps([job, numba_cuda.__version__]).encode() + source + judge).hexdigest()[:32]
    cached = CACHE / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    report = {**job}
    try:
        dispatcher = kernel_dispatcher(job["module"], job["qualname"])
        # on disk where numba-cuda caches kernels: a new process loads them instead of compiling again
        report["disk_cache"] = any(c.__name__ == "CUDACache" for c in type(dispatcher._cache).__mro__)
        ptx = _ptx_for(dispatcher.py_func, job["signature"], cc)
        log = _link(ptx, cc)
    except Exception as e:  # the kernel does not compile: that is the finding
        report["error"] = f"{type(e).__name__}: {str(e).strip()[:2000]}"
    else:
        for name, pattern in _PTXAS.items():
            found = re.findall(pattern, log)
            report[name] = max((int(v) for v in found), default=0)
        report["float64"] = float64_instructions(ptx)
        report["div64_in_loops"] = divisions_in_loops(ptx)
        report["occupancy"] = occupancy(cc, job["threads"], report["registers"], report["smem"])
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(report))
    return report


def _flat(signature):
    """The argument descriptions with tuples' members in place of the tuples."""
    for d in signature:
        if d[0] == "tuple":
            yield from _flat(d[1])
        else:
            yield d


FLOATS = ("float16", "float32", "float64")


def variant(signature) -> str:
    """The dtype a compiled variant is judged and listed by: "float64" where an argument is float64, else "float16"
    where one is float16 (mixed precision: float16 arrays, float32 numbers), else "float32"; "-" without floats."""
    floats = {d[1] for d in _flat(signature) if d[1] in FLOATS}
    return next((f for f in ("float64", "float16", "float32") if f in floats), "-")


def float32_variant(signature) -> bool:
    """True when no argument is float64 but some are float16 or float32: then no instruction may be float64."""
    return variant(signature) in ("float16", "float32")


def problems(report: dict) -> list[str]:
    where = f"{report['module']}.{report['qualname']} sm_{report['cc'][0]}{report['cc'][1]} {signature_text(report)}"
    if "error" in report:
        return [f"{where}: does not compile: {report['error']}"]
    found = [f"{where}: {report[k]} bytes of {k}" for k in ("spill_stores", "spill_loads", "stack", "lmem") if report[k]]
    if not report.get("disk_cache"):
        found.append(f"{where}: not cached on disk (numba-cuda would compile it again in every process)")
    if report["float64"] and float32_variant(report["signature"]):
        found.append(f"{where}: {report['float64']} float64 instructions in a {variant(report['signature'])} variant")
    if report["div64_in_loops"]:
        found.append(f"{where}: {report['div64_in_loops']} 64-bit integer divisions/remainders per element "
                     "(in an innermost loop)")
    return found


def signature_text(report: dict) -> str:
    return "(" + ", ".join(_arg_text(d) for d in report["signature"]) + ")"


def _arg_text(d) -> str:
    if d[0] == "array":
        return f"{d[1]}[{d[2]}d{'' if d[3] == 'C' else ',' + d[3]}]"
    if d[0] == "tuple":
        return ("k" if d[2] else "") + "(" + ", ".join(_arg_text(m) for m in d[1]) + ")"
    return d[1]


def jobs_for(launches: list[dict]) -> list[dict]:
    return [{**launch, "cc": list(cc)} for launch in launches for cc in CCS]


def compile_all(launches: list[dict], workers: int = 2) -> list[dict]:
    jobs = jobs_for(launches)
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(compile_one, jobs))


def markdown(reports: list[dict]) -> str:
    rows = ["| kernel | dtype | arch | registers | shared memory (B) | spills (B) | threads/block | occupancy |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    worst = {}  # one row per kernel, dtype and architecture: the variant (argument layouts) using most registers
    for r in reports:
        key = (r["module"], r["qualname"], variant(r["signature"]), tuple(r["cc"]))
        if key not in worst or "error" in r or r.get("registers", 0) > worst[key].get("registers", 0):
            worst[key] = r
    for r in sorted(worst.values(), key=lambda r: (r["module"], r["qualname"], variant(r["signature"]), r["cc"])):
        if "error" in r:
            rows.append(f"| `{r['qualname']}` | {signature_text(r)} | sm_{r['cc'][0]}{r['cc'][1]} | does not compile |"
                        " | | | |")
            continue
        dtype = variant(r["signature"])
        rows.append(f"| `{r['module'].rsplit('.', 1)[-1]}.{r['qualname']}` | {dtype} | sm_{r['cc'][0]}{r['cc'][1]} | "
                    f"{r['registers']} | {r['smem']} | {r['spill_stores'] + r['spill_loads']} | {r['threads']} | "
                    f"{r['occupancy']:.0%} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    launches = json.loads(Path(argv[0]).read_text() if argv and argv[0] != "-" else sys.stdin.read())
    reports = compile_all(launches)
    if "--markdown" in argv:
        print(markdown(reports))
    else:
        json.dump(reports, sys.stdout)
    return 0


if __name__ == "__main__":
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit("offline_compile needs numba-cuda's real compiler: unset NUMBA_ENABLE_CUDASIM")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
