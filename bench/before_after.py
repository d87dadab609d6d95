"""Time gpunn before and after a change, interleaved: two worker processes, one per version, taking turns.

Two versions of gpunn cannot share a process, so each runs in a worker of its own (the "after" one with
this interpreter, the "before" one with the interpreter of an environment where the earlier commit is
installed). The driver asks them in turn, in an order that alternates each round, to time a block of
calls of one case after a pause and an untimed warm call, as ``bench/conftest.py`` interleaves peers in
one process: drift and other load fall on both alike. Cases use only the API both versions share.

    git worktree add ../before <commit> && python -m venv ../venv-before && ../venv-before/bin/pip install -e ../before
    python bench/before_after.py --before ../venv-before/bin/python [--cases ...] [--rounds 15] [--json out.json]

It prints, per case, each side's median (and min-max) ms per call and the ratio before / after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PAUSE_S = 0.2


# --------------------------------------------------------------------------- the cases (run in the workers)

def _mlp_step(d, h, c, n, adam):
    """The README's loop on a two-layer ReLU net: Adam (lr 1e-3, weight decay 1e-4) or SGD (lr 1e-3)."""
    import numpy as np

    import gpunn as gn

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)
    model = gn.nn.Sequential(gn.nn.Linear(d, h, rng=1), gn.nn.ReLU(), gn.nn.Linear(h, c, rng=2))
    loss = gn.nn.SoftmaxCrossEntropy()
    opt = (gn.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4) if adam
           else gn.optim.SGD(model.parameters(), lr=1e-3))

    def step():
        opt.zero_grad()
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        return value

    return step


def _convnet_step():
    """cs231n's three-layer ConvNet (32 7x7 filters, 100 hidden), batch 64 of 3x32x32, SGD."""
    import numpy as np

    import gpunn as gn

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 64)
    model = gn.nn.three_layer_convnet((3, 32, 32), 10, 32, 7, 100, rng=1)
    loss, opt = gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        return value

    return step


def _gate(name, n=1 << 22):
    """One activation gate's forward and backward on 4M float32 (the fused kernels, or NumPy's tanh forward)."""
    import numpy as np

    import gpunn as gn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n // 1024, 1024)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    gate = gn.nn.ACTIVATIONS[name]()

    def step():
        gate.forward(x)
        return gate.backward(g)

    return step


def _knn(q, n, d, k, n_probe=None):
    """kNN on standard normal float32 rows (seed 0): exact L2 search (``algorithm="brute"``), or an IVF index of
    sqrt(n) lists probed ``n_probe`` at a time."""
    import numpy as np

    import gpunn as gn

    rng = np.random.default_rng(0)
    X, Q = rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((q, d), dtype=np.float32)
    params = {} if n_probe is None else {"algorithm": "ivf", "n_probe": n_probe, "random_state": 0}
    model = gn.KNeighborsClassifier(k, "l2", device="cpu", **params).fit(X, np.arange(n) % 10)
    return lambda: model.kneighbors(Q)


CASES = {
    "README loop 3072-100-10 b200 SGD": lambda: _mlp_step(3072, 100, 10, 200, adam=False),
    "README loop 3072-1024-10 b256 SGD": lambda: _mlp_step(3072, 1024, 10, 256, adam=False),
    "digits step 64-256-10 b64 Adam": lambda: _mlp_step(64, 256, 10, 64, adam=True),
    "ConvNet step b64": _convnet_step,
    "ReLU forward+backward 4M": lambda: _gate("relu"),
    "sigmoid forward+backward 4M": lambda: _gate("sigmoid"),
    "GELU forward+backward 4M": lambda: _gate("gelu"),
    "kNN L2 500x5000x3072 k=10": lambda: _knn(500, 5000, 3072, 10),
    "kNN L2 500x5000x3072 k=100": lambda: _knn(500, 5000, 3072, 100),
    "kNN L2 2000x100000x128 k=100": lambda: _knn(2000, 100_000, 128, 100),
    "kNN IVF 2000x200000x64 k=10 n_probe=2": lambda: _knn(2000, 200_000, 64, 10, n_probe=2),
}


def worker() -> None:
    """Answer the driver: each line a JSON request {"case", "block"}, each reply {"seconds": per call} or an error."""
    made = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["case"] not in made:
                made[request["case"]] = CASES[request["case"]]()
                made[request["case"]]()  # compiled and allocated before any timing
            fn = made[request["case"]]
            time.sleep(PAUSE_S)
            fn()  # warm: wakes this side's threads, refills caches
            start = time.perf_counter()
            for _ in range(request["block"]):
                fn()
            reply = {"seconds": (time.perf_counter() - start) / request["block"]}
        except Exception as e:  # noqa: BLE001 (reported to the driver, which says which side failed)
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


# --------------------------------------------------------------------------- the driver

class Side:
    def __init__(self, name: str, python: str):
        self.name = name
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd="/")

    def time(self, case: str, block: int) -> float:
        self.proc.stdin.write(json.dumps({"case": case, "block": block}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"{self.name}: {case}: {reply['error']}")
        return reply["seconds"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="the interpreter of an environment with the earlier gpunn (required)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES), metavar="CASE")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--json", help="write the samples here too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if args.before is None:
        parser.error("--before is required: the interpreter of an environment with the earlier gpunn")
    sides = [Side("before", args.before), Side("after", sys.executable)]
    load_before = os.getloadavg()
    samples = {case: {s.name: [] for s in sides} for case in args.cases}
    try:
        for case in args.cases:
            for r in range(args.rounds):
                for side in sides if r % 2 == 0 else sides[::-1]:
                    samples[case][side.name].append(side.time(case, args.block))
    finally:
        for side in sides:
            side.close()
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; {args.rounds} rounds of "
          f"{args.block} calls per side and case, interleaved")
    print("| case | before ms (min-max) | after ms (min-max) | before / after |\n|---|---:|---:|---:|")
    for case, by_side in samples.items():
        b, a = (statistics.median(by_side[k]) for k in ("before", "after"))
        spread = {k: f"{min(v) * 1e3:.3g}-{max(v) * 1e3:.3g}" for k, v in by_side.items()}
        print(f"| {case} | {b * 1e3:.3g} ({spread['before']}) | {a * 1e3:.3g} ({spread['after']}) | {b / a:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": [load_before, os.getloadavg()], "samples": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
