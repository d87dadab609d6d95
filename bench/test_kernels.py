"""Fused activation kernels, forward + backward on 16M float32 elements (64 MB per array).

Peers in the same interleaved run, on the same arrays: NumPy as users write it
(``np.maximum(x, 0)`` and ``g * (x > 0)``; ``1 / (1 + np.exp(-x))`` and ``g * s * (1 - s)``),
gpunn's own ``xp`` references (what runs where no kernel is registered), PyTorch CPU's own
kernels where installed (``relu`` with ``threshold_backward``, ``sigmoid`` with
``sigmoid_backward``), and ``np.copyto`` as the bandwidth yardstick. Bytes moved by forward + backward: read x, write y; read dout and y,
write dx: 5 arrays, against copyto's 2 (read one, write one).
"""

from __future__ import annotations

import numpy as np
import pytest

from peers import record, torch_peer

import gpunn as gn
from gpunn import ops
from gpunn.kernels.launch import PARALLEL_MIN_SIZE

N = 16 * 2**20


def arrays():
    rng = np.random.default_rng(0)
    return rng.standard_normal(N).astype(np.float32) * 3, rng.standard_normal(N).astype(np.float32)


def fused(kind, x, g):
    gate = gn.nn.ACTIVATIONS[kind]()

    def run():
        ops.activation_backward(g, ops.activation(x, gate), gate)
    return run


def references(kind, x, g):
    gate = gn.nn.ACTIVATIONS[kind]()

    def run():
        with ops.use_kernels(False):
            ops.activation_backward(g, ops.activation(x, gate), gate)
    return run


def idiomatic_numpy(kind, x, g):
    """What a NumPy user writes for the forward and backward pass."""
    if kind == "relu":
        def run():
            np.maximum(x, 0)
            return g * (x > 0)
    else:
        def run():
            with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88: the result is still right
                s = 1 / (1 + np.exp(-x))
            return g * s * (1 - s)
    return run


def torch_kernels(kind, x, g):
    import torch

    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    if kind == "relu":
        return lambda: torch.ops.aten.threshold_backward(gt, torch.relu(xt), 0)
    return lambda: torch.ops.aten.sigmoid_backward(gt, torch.sigmoid(xt))


def copy(x):
    dst = np.empty_like(x)
    return lambda: np.copyto(dst, x)


@pytest.mark.parametrize("kind", ["relu", "sigmoid"])
def test_activation_fwd_bwd_16M(benchmark, interleaved, kind):
    x, g = arrays()
    candidates = {"gpunn": fused(kind, x, g), "numpy": idiomatic_numpy(kind, x, g),
                  "gpunn-references": references(kind, x, g), "np.copyto": copy(x)}
    try:
        candidates["torch"] = torch_kernels(kind, x, g)
    except ImportError:
        pass
    benchmark.group = f"{kind} forward+backward, 16M float32"
    import numba

    one = {"threads": 1, "blas": "none (NumPy's ufuncs run in one thread)"}
    record(benchmark, {"gpunn": {"threads": numba.get_num_threads() if N >= PARALLEL_MIN_SIZE else 1,
                                 "blas": "none (Numba kernel; below PARALLEL_MIN_SIZE it runs in the calling thread)"},
                       "numpy": one, "gpunn-references": one, "np.copyto": one,
                       **({"torch": lambda: {**torch_peer(), "blas": "none (PyTorch's vectorised CPU kernels)"}}
                          if "torch" in candidates else {})},
           data=f"x: {N:,} float32, 3 x standard normal; upstream gradient: {N:,} float32 standard normal (seed 0)")
    medians = interleaved(candidates, primary="gpunn", rounds=9, block=3)
    copy_bw = 2 * 4 * N / medians["np.copyto"]
    benchmark.extra_info["fraction_of_copy_bandwidth"] = (5 * 4 * N / medians["gpunn"]) / copy_bw
