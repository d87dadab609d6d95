"""sgemm at the README step's shapes on every BLAS a pip install brings, timed interleaved (issue 28, item 7).

Peers, each at 1 and 2 threads, in one process on the same arrays:

- ``numpy``: NumPy's bundled OpenBLAS (``np.matmul``), what gpunn runs today;
- ``openblas-new``: a newer OpenBLAS build from PyPI (``scipy-openblas32``), its ``cblas_sgemm``;
- ``mkl``: Intel's MKL from PyPI (the ``mkl`` package's ``libmkl_rt``) as gpunn runs it (kernels/mkl_gemm.py);

The two ``cblas_sgemm`` peers are called through gpunn's Numba kernel (kernels/mkl_gemm.py), NumPy's through
``np.matmul``: each pays a few microseconds per call, which shows only at the step's smallest products.
- ``torch``: PyTorch's CPU matmul (MKL / oneDNN) on tensors that share the NumPy arrays' memory.

A peer whose package is missing is left out. The products are the five of each README net's step (forward
X W1, a W2; backward a^T ds, ds W2^T, X^T da), with the transposed operands passed as NumPy views, as the
step passes them, each written into a preallocated C-ordered ``out``. Each result is checked against a float64
product: the error column is max |C - C64| / (|A| |B|) over the elements, the componentwise bound a float32
GEMM meets (about K * 2^-24 at worst, a few 1e-7 in practice).

With ``--step``, the README step itself (bench/test_train_step.py's) instead: gpunn as installed today (NumPy's
OpenBLAS) against gpunn with its products on MKL (kernels/mkl_gemm.py), with the GEMM floor on each BLAS and
PyTorch beside them, interleaved as bench/conftest.py does.

Run: python bench/blas_gemm.py [--rounds 15] [--json out.json]
     python bench/blas_gemm.py --step [--rounds 15]
     python bench/blas_gemm.py [--step] --threads 1 --cpu-time   (one thread, by CPU time: for a busy machine)
(needs: pip install mkl scipy-openblas32 torch; each missing one is skipped)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import ThreadpoolController

PAUSE_S = 0.3  # MKL's OpenMP threads spin 0.2 s after a call (KMP_BLOCKTIME), OpenBLAS's about 0.1 s

# (M, K, N): C (M x N) = A (M x K) B (K x N); "T" marks an operand passed as a transposed view
NETS = {"3072-100-10 b200": (3072, 100, 10, 200), "3072-1024-10 b256": (3072, 1024, 10, 256)}


def products(d, h, c, n):
    """The step's five products as (name, A shape as stored, A transposed?, B shape as stored, B transposed?)."""
    return [
        ("X W1", (n, d), False, (d, h), False),
        ("a W2", (n, h), False, (h, c), False),
        ("a^T ds", (n, h), True, (n, c), False),
        ("ds W2^T", (n, c), False, (h, c), True),
        ("X^T da", (n, d), True, (n, h), False),
    ]


CASES = [(net, *p) for net, (d, h, c, n) in NETS.items() for p in products(d, h, c, n)]
CASES.append(("issue 28", "256x3072x1024", (256, 3072), False, (3072, 1024), False))


class CBLAS:
    """``cblas_?gemm`` of a shared library (LP64: 32-bit integers), called as gpunn calls MKL's: through
    kernels/mkl_gemm.py's Numba kernel at the function's address, so every library pays the same call cost."""

    def __init__(self, lib, sgemm: str, dgemm: str):
        self.address = {np.dtype(np.float32): ctypes.cast(getattr(lib, sgemm), ctypes.c_void_p).value,
                        np.dtype(np.float64): ctypes.cast(getattr(lib, dgemm), ctypes.c_void_p).value}

    def matmul(self, a, b, out):
        """``out[...] = a @ b`` for 2-D arrays of one float dtype, ``out`` C-ordered."""
        from gpunn.kernels.mkl_gemm import _gemm

        assert _gemm(self.address[a.dtype], a, b, out)
        return out


def mkl_library():
    """(libmkl_rt, gpunn's MKL matmul) where the ``mkl`` wheel is installed and gpunn uses it, else None."""
    from gpunn.kernels import mkl_gemm

    if not mkl_gemm.available():
        return None
    return mkl_gemm._mkl().lib, lambda a, b, out: mkl_gemm.matmul(a, b, out)


def new_openblas_library():
    """(the scipy-openblas32 library, its CBLAS matmul) or None where it is not installed."""
    try:
        import scipy_openblas32
    except ImportError:
        return None
    path = os.path.join(scipy_openblas32.get_lib_dir(), f"lib{scipy_openblas32.get_library()}.so")
    lib = ctypes.CDLL(path)
    return lib, CBLAS(lib, "scipy_cblas_sgemm", "scipy_cblas_dgemm").matmul


MKL_BRANCHES = {1: "COMPATIBLE", 2: "SSE2", 3: "SSE3", 4: "SSSE3", 5: "SSE4_1", 6: "SSE4_2", 7: "AVX", 8: "AVX2",
                9: "AVX512_MIC", 10: "AVX512", 11: "AVX512_MIC_E1", 12: "AVX512_E1", 13: "AVX512_E2",
                14: "AVX512_E3", 15: "AVX512_E4", 16: "AVX2_E1", 17: "AVX512_E5", 18: "AVX10"}


class Peer:
    """One BLAS at one thread count: ``call(a, b, out)`` and ``set_threads()`` before its timed block."""

    def __init__(self, name, threads, call, set_threads, blas):
        self.name, self.threads, self.call, self._set, self.blas = name, threads, call, set_threads, blas

    def set_threads(self):
        self._set(self.threads)


def peers(thread_counts=(1, 2)) -> list[Peer]:
    """Every BLAS installed here, at each thread count, with its threadpoolctl description."""
    np.ones((2, 2)) @ np.ones((2, 2))
    found = []
    mkl = mkl_library()
    new = new_openblas_library()
    try:
        import torch
    except ImportError:
        torch = None
    controller = ThreadpoolController()
    info = {os.path.realpath(c.filepath): c for c in controller.lib_controllers}

    def controlled(path):
        return info[os.path.realpath(path)]

    home = os.path.realpath(os.path.dirname(np.__file__))
    numpy_blas = next(c for c in controller.lib_controllers
                      if c.user_api == "blas" and os.path.realpath(c.filepath).startswith(home))
    described = {"numpy": f"{numpy_blas.internal_api} {numpy_blas.version} {numpy_blas.architecture}"}
    calls = {"numpy": (lambda a, b, out: np.matmul(a, b, out=out), numpy_blas.set_num_threads)}
    if new is not None:
        ctl = controlled(new[0]._name)
        described["openblas-new"] = f"{ctl.internal_api} {ctl.version} {ctl.architecture}"
        calls["openblas-new"] = (new[1], ctl.set_num_threads)
    if mkl is not None:
        lib = mkl[0]
        lib.mkl_cbwr_get_auto_branch.restype = ctypes.c_int
        lib.MKL_Set_Num_Threads.argtypes = [ctypes.c_int]
        ctl = next(c for c in ThreadpoolController().lib_controllers if c.internal_api == "mkl"
                   and "libmkl_rt" in c.filepath and "torch" not in c.filepath)
        branch = MKL_BRANCHES.get(lib.mkl_cbwr_get_auto_branch(), "?")
        described["mkl"] = f"{ctl.internal_api} {ctl.version} {branch} ({ctl.threading_layer} threads)"
        calls["mkl"] = (mkl[1], lib.MKL_Set_Num_Threads)
    if torch is not None:
        described["torch"] = (f"torch {torch.__version__} "
                              f"{'mkl' if torch.backends.mkl.is_available() else 'no-mkl'} "
                              f"{torch.backends.cpu.get_cpu_capability()}")

        def torch_call(a, b, out):
            torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
            return out

        calls["torch"] = (torch_call, torch.set_num_threads)
    for name, (call, set_threads) in calls.items():
        for t in thread_counts:
            found.append(Peer(name, t, call, set_threads, described[name]))
    return found


def case_arrays(case, rng):
    _, _, a_shape, a_t, b_shape, b_t = case
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    a, b = (a.T if a_t else a), (b.T if b_t else b)
    return a, b, np.empty((a.shape[0], b.shape[1]), np.float32)


def error(a, b, out) -> float:
    """max |C - C64| / (|A| |B|): the componentwise error against a float64 product."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = np.abs(a64) @ np.abs(b64)
    return float(np.max(np.abs(out - a64 @ b64) / np.maximum(scale, np.finfo(np.float64).tiny)))


CLOCK = [time.perf_counter]  # --cpu-time: time.process_time, which a busy machine's other processes do not inflate


def interleave(candidates: list[Peer], fn_args, rounds: int, target_s: float = 0.03):
    """{peer index: [seconds per call per round]}: blocks of calls, order alternating, a pause before each."""
    clock = CLOCK[0]
    order = list(range(len(candidates)))
    # size the block so one takes about target_s on the fastest peer
    candidates[0].set_threads()
    start = time.perf_counter()
    for _ in range(3):
        candidates[0].call(*fn_args)
    block = max(5, min(2000, int(target_s / max((time.perf_counter() - start) / 3, 1e-7))))
    times = {i: [] for i in order}
    for r in range(rounds):
        for i in order if r % 2 == 0 else order[::-1]:
            peer = candidates[i]
            peer.set_threads()
            time.sleep(PAUSE_S)
            peer.call(*fn_args)
            start = clock()
            for _ in range(block):
                peer.call(*fn_args)
            times[i].append((clock() - start) / block)
    return times


def run(rounds: int, cases=CASES, thread_counts=(1, 2)):
    all_peers = peers(thread_counts)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = []
    for case in cases:
        a, b, out = case_arrays(case, rng)
        errors = {}
        for peer in all_peers:
            out[...] = np.nan
            peer.set_threads()
            peer.call(a, b, out)
            errors[peer.name] = error(a, b, out)
        times = interleave(all_peers, (a, b, out), rounds)
        m, k = a.shape
        n = b.shape[1]
        for i, peer in enumerate(all_peers):
            ts = times[i]
            rows.append({"net": case[0], "product": case[1], "mkn": f"{m}x{k}x{n}", "peer": peer.name,
                         "blas": peer.blas, "threads": peer.threads, "median_ms": statistics.median(ts) * 1e3,
                         "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3, "error": errors[peer.name]})
        print(f"done {case[0]} {case[1]}", file=sys.stderr, flush=True)
    return rows, load_before, os.getloadavg()


def table(rows) -> str:
    """A Markdown table: each product's peers, ratio = NumPy's median at its best thread count / this one's."""
    lines = ["| net | product (MxKxN) | peer | threads | median ms (min-max) | NumPy best / this | max rel. error |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    keys = list(dict.fromkeys((r["net"], r["product"]) for r in rows))
    for key in keys:
        mine = [r for r in rows if (r["net"], r["product"]) == key]
        numpy_best = min(r["median_ms"] for r in mine if r["peer"] == "numpy")
        best = {p: min(r["median_ms"] for r in mine if r["peer"] == p) for p in dict.fromkeys(r["peer"] for r in mine)}
        for r in mine:
            star = " *" if r["median_ms"] == best[r["peer"]] else ""
            lines.append(f"| {r['net']} | {r['product']} ({r['mkn']}) | {r['peer']} | {r['threads']}{star} | "
                         f"{r['median_ms']:.4f} ({r['min_ms']:.4f}-{r['max_ms']:.4f}) | "
                         f"{numpy_best / r['median_ms']:.2f} | {r['error']:.1e} |")
    return "\n".join(lines)


def step_peers(d, h, c, n):
    """The README step on each BLAS (gpunn's ops.matmul on NumPy's OpenBLAS and on MKL), its GEMM floor on
    each, and PyTorch, as zero-argument callables."""
    import test_train_step as ts
    from conftest import with_torch

    from gpunn.kernels import mkl_gemm

    X, y = ts.data(d, n, c)
    step, floor = ts.gpunn_step(d, h, c, X, y), ts.gemm_floor(d, h, c, X, y)

    def on(fn, mkl: bool):
        def run():
            with mkl_gemm.use_mkl(mkl):
                return fn()

        return run

    W1, _, W2, _ = ts.weights(d, h, c)
    a = np.maximum(X @ W1, 0)
    ds = np.random.default_rng(2).standard_normal((n, c)).astype(np.float32)
    da = ds @ W2.T
    mm = mkl_gemm.matmul

    def mkl_floor():
        mm(X, W1), mm(a, W2), mm(a.T, ds), mm(ds, W2.T), mm(X.T, da)
        return np.float32(0)

    impls = {"gpunn (OpenBLAS)": on(step, False), "gpunn (MKL)": on(step, True),
             "GEMM floor (OpenBLAS)": floor, "GEMM floor (MKL)": mkl_floor}
    if CLOCK[0] is not time.perf_counter:  # PyTorch's idle OpenMP threads spin: its CPU time is not its work
        return impls
    found = {name: make for name, make in with_torch({}, ts.torch_step).items()}
    return {**impls, **{name: make(d, h, c, X, y) for name, make in found.items()}}


def convnet_step_peers():
    """cs231n's ConvNet step (bench/test_conv.py), whose parallel kernels run between the GEMMs, on each BLAS."""
    import test_conv as tc

    from gpunn.kernels import mkl_gemm

    step = tc.gpunn_convnet_step(*tc.step_data())

    def on(mkl: bool):
        def run():
            with mkl_gemm.use_mkl(mkl):
                return step()

        return run

    return {"gpunn (OpenBLAS)": on(False), "gpunn (MKL)": on(True)}


def run_step(rounds: int):
    """{net: {peer: [seconds per step per round]}} for the README nets and the ConvNet, timed interleaved."""
    import test_train_step as ts

    from gpunn.kernels import mkl_gemm

    if not mkl_gemm.available():
        raise SystemExit(f"MKL is not in use: {mkl_gemm.status()}")
    out = {}
    nets = {net: (lambda shape=shape: step_peers(*shape)) for net, shape in ts.NETS.items()}
    nets["ConvNet b64"] = convnet_step_peers
    for net, make in nets.items():
        peers = make()
        for fn in peers.values():
            assert np.isfinite(float(fn()))
        candidates = [Peer(name, 0, lambda *_, fn=fn: fn(), lambda t: None, "") for name, fn in peers.items()]
        times = interleave(candidates, (), rounds, target_s=0.05)
        out[net] = {name: times[i] for i, name in enumerate(peers)}
        print(f"done {net}", file=sys.stderr, flush=True)
    return out


def step_table(results) -> str:
    lines = ["| net | peer | median ms (min-max) | gpunn (OpenBLAS) / this |", "| --- | --- | --- | --- |"]
    for net, peers in results.items():
        base = statistics.median(peers["gpunn (OpenBLAS)"])
        for name, ts in peers.items():
            med = statistics.median(ts)
            lines.append(f"| {net} | {name} | {med * 1e3:.3f} ({min(ts) * 1e3:.3f}-{max(ts) * 1e3:.3f}) | "
                         f"{base / med:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--step", action="store_true", help="time the README step on each BLAS")
    parser.add_argument("--threads", type=int, help="every BLAS (and PyTorch) at this many threads only")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by the process's CPU time, not the wall clock: with --threads 1, a measure of "
                             "the work that other processes on a busy machine do not inflate")
    parser.add_argument("--json", help="write the rows and load averages here")
    args = parser.parse_args()
    if args.cpu_time:
        if args.threads != 1:
            parser.error("--cpu-time needs --threads 1 (waiting threads spin, and spinning is CPU time)")
        CLOCK[0] = time.process_time
    if args.step:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        before = os.getloadavg()
        if args.threads:
            from threadpoolctl import threadpool_limits

            from gpunn.kernels import mkl_gemm

            mkl_gemm.available()  # load MKL first, so that the limit reaches it
            threadpool_limits(args.threads)
            import numba

            numba.set_num_threads(args.threads)
            try:
                import torch

                torch.set_num_threads(args.threads)
            except ImportError:
                pass
        results = run_step(args.rounds)
        after = os.getloadavg()
        from gpunn.kernels import mkl_gemm
        print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
              f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}; {os.cpu_count()} CPUs; {mkl_gemm.status()}")
        print(f"threads: {[(i['internal_api'], i['num_threads']) for i in ThreadpoolController().info()]}; "
              f"clock: {CLOCK[0].__name__}")
        print(step_table(results))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"step": results, "load_before": before, "load_after": after}, f, indent=1)
        return
    rows, before, after = run(args.rounds, thread_counts=(args.threads,) if args.threads else (1, 2))
    described = {r["peer"]: r["blas"] for r in rows}
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}; {os.cpu_count()} CPUs; clock: {CLOCK[0].__name__}")
    for peer, blas in described.items():
        print(f"- {peer}: {blas}")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "load_before": before, "load_after": after, "peers": described}, f, indent=1)


if __name__ == "__main__":
    main()
