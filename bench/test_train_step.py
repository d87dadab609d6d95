"""One training step of a two-layer ReLU net, float32, random data.

gpunn's step is the README's training loop exactly as printed there: SGD on the CIFAR-sized nets, and the
README's own Adam (lr 1e-3, weight decay 1e-4) on the digits' 64-256-10 at batch 64, where the math is
small and what a step spends around it shows. Peers in the same run, on the same arrays: a plain NumPy
step written by hand (what a cs231n student writes), PyTorch on the CPU (where installed) on one thread
and on two (its best is reported: on a net this small, one), and the GEMM floor: the step's five matrix
products alone (forward: X W1, a W2; backward: a^T ds, ds W2^T, X^T da), the part no implementation can
skip.
Run: pytest bench/test_train_step.py --benchmark-json=bench.json && python bench/report.py bench.json
(peers are timed interleaved; see bench/conftest.py)
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import torch_sgd_step, torch_train_step, with_torch
from peers import gpunn_peer, numpy_peer, record, torch_peer

import gpunn as gn
from gpunn import ops

NETS = {"3072-100-10 b200": (3072, 100, 10, 200), "3072-1024-10 b256": (3072, 1024, 10, 256),
        "64-256-10 b64 Adam (digits)": (64, 256, 10, 64)}
LR = 1e-3
ADAM = "Adam"  # the nets whose name says so train with the README's Adam, the others with plain SGD


def data(d, n, c, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)


def weights(d, h, c, seed=1):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((d, h)) * np.sqrt(2 / d)).astype(np.float32), np.zeros(h, np.float32),
        (rng.standard_normal((h, c)) * np.sqrt(2 / h)).astype(np.float32), np.zeros(c, np.float32),
    ]


def gpunn_step(d, h, c, X, y, adam=False):
    model = gn.nn.Sequential(gn.nn.Linear(d, h), gn.nn.ReLU(), gn.nn.Linear(h, c))
    model.load_state_dict(dict(zip(["0.W", "0.b", "2.W", "2.b"], weights(d, h, c))))
    loss = gn.nn.SoftmaxCrossEntropy()
    opt = (gn.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-4) if adam
           else gn.optim.SGD(model.parameters(), lr=LR))

    def step():  # the README's loop, line for line
        opt.zero_grad()
        scores = model.forward(X)
        value = loss.forward(scores, y)
        model.backward(loss.backward())
        opt.step()
        return value

    return step


def gemm_floor(d, h, c, X, y, adam=False):
    """The five matrix products of the step, on arrays of the step's shapes, and nothing else."""
    W1, _, W2, _ = weights(d, h, c)
    a = np.maximum(X @ W1, 0)
    ds = np.random.default_rng(2).standard_normal((len(y), c)).astype(np.float32)
    da = ds @ W2.T

    def products():
        X @ W1, a @ W2
        a.T @ ds, ds @ W2.T, X.T @ da
        return np.float32(0)

    return products


def numpy_step(d, h, c, X, y, adam=False):
    W1, b1, W2, b2 = weights(d, h, c)
    rows = np.arange(len(y))
    moments = [[np.zeros_like(w), np.zeros_like(w)] for w in (W1, b1, W2, b2)]
    t = [0]

    def step():
        z = X @ W1 + b1
        a = np.maximum(z, 0)
        s = a @ W2 + b2
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        value = -np.log(p[rows, y]).mean()
        ds = p
        ds[rows, y] -= 1
        ds /= len(y)
        dW2, db2 = a.T @ ds, ds.sum(axis=0)
        da = ds @ W2.T
        da[z <= 0] = 0
        dW1, db1 = X.T @ da, da.sum(axis=0)
        if not adam:
            for w, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
                w -= LR * g
            return value
        t[0] += 1
        for (w, g, decay), (m, v) in zip(((W1, dW1, 1e-4), (b1, db1, 0), (W2, dW2, 1e-4), (b2, db2, 0)), moments):
            g = g + decay * w
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            w -= LR / (1 - 0.9 ** t[0]) * m / (np.sqrt(v / (1 - 0.999 ** t[0])) + 1e-8)
        return value

    return step


def torch_step(d, h, c, X, y, adam=False, threads=1):
    import torch

    W1, b1, W2, b2 = weights(d, h, c)
    model = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, c))
    with torch.no_grad():
        for layer, w, b in ((model[0], W1, b1), (model[2], W2, b2)):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    if adam:  # the README's Adam, weight decay on the weights only, as gpunn's decays them
        groups = [{"params": [model[0].weight, model[2].weight], "weight_decay": 1e-4},
                  {"params": [model[0].bias, model[2].bias], "weight_decay": 0.0}]
        step = torch_train_step(model, X, y, torch.optim.Adam(groups, lr=LR))
    else:
        step = torch_sgd_step(model, X, y, LR)

    def on_threads():
        torch.set_num_threads(threads)  # each peer keeps its own thread count (a no-op when unchanged)
        return step()

    return on_threads


def gpunn_reference_step(d, h, c, X, y, adam=False):
    """gpunn with the fused kernels switched off: every op runs its plain NumPy reference."""
    step = gpunn_step(d, h, c, X, y, adam)

    def reference_step():
        with ops.use_kernels(False):
            return step()

    return reference_step


def peers():
    """The implementations to compare: gpunn (kernels on and off) and NumPy always, PyTorch where installed."""
    impls = {"gpunn": gpunn_step, "gpunn-nokernels": gpunn_reference_step, "numpy": numpy_step, "gemm-floor": gemm_floor}
    torch = with_torch({}, torch_step)
    if torch:
        impls["torch (1 thread)"] = torch_step
        impls["torch (2 threads)"] = lambda *args, **kwargs: torch_step(*args, **kwargs, threads=2)
    return impls


@pytest.mark.parametrize("net", list(NETS))
def test_train_step(benchmark, interleaved, net):
    d, h, c, n = NETS[net]
    X, y = data(d, n, c)
    steps = {name: make(d, h, c, X, y, adam=ADAM in net) for name, make in peers().items()}
    for name, step in steps.items():
        assert np.isfinite(float(step())), name
    benchmark.group = f"train step {net}"
    torch = {name: (lambda n=n: {**torch_peer(), "threads": n}) for name, n in
             (("torch (1 thread)", 1), ("torch (2 threads)", 2)) if name in steps}
    record(benchmark, {"gpunn": gpunn_peer, "gpunn-nokernels": numpy_peer, "numpy": numpy_peer,
                       "gemm-floor": numpy_peer, **torch},
           data=f"random: X float32 ({n}, {d}) standard normal, labels uniform over {c} classes (seed 0); "
                f"He-initialised weights (seed 1), the same for every peer")
    interleaved(steps, primary="gpunn", rounds=15, block=8)
