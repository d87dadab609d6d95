"""gpunn.autograd against what a user would otherwise write: hand-derived NumPy, and PyTorch's autograd.

Two cases, forward + backward each:
- swish, x * sigmoid(beta x), on a (256, 1024) float32 batch with a per-feature beta: the
  arithmetic dominates; the expression's costs are its extra temporaries and gradient copies.
- the lecture's neuron sigmoid(a x + b y + c) on scalars: nothing but per-gate overhead.
Expected before measuring: swish about 1.5-2x the hand-written NumPy (more passes over memory),
PyTorch faster than both (fused, 2 threads); the neuron 10-20 us per gate in Python, near PyTorch's
per-op dispatch cost.
Run: pytest bench/test_autograd.py --benchmark-json=ag.json && python bench/report.py ag.json
"""

from __future__ import annotations

import numpy as np
import pytest

from peers import record, torch_peer

from gpunn import autograd as ag

N, D = 256, 1024


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, D)).astype(np.float32), rng.standard_normal(D).astype(np.float32),
            rng.standard_normal((N, D)).astype(np.float32))


@pytest.mark.benchmark(group="swish fwd+bwd (256, 1024) float32")
def test_swish_forward_backward(benchmark, interleaved):
    x, beta, dout = _data()

    def gpunn_autograd():
        xt, bt = ag.tensor(x), ag.tensor(beta)
        y = xt * ag.sigmoid(bt * xt)
        y.backward(dout)
        return xt.grad, bt.grad

    def numpy_by_hand():
        s = 0.5 * np.tanh(0.5 * beta * x) + 0.5
        y = x * s
        ds = dout * x * s * (1 - s)  # d y / d (beta x), times upstream
        return dout * s + ds * beta, (ds * x).sum(axis=0), y

    candidates = {"gpunn.autograd": gpunn_autograd, "NumPy by hand": numpy_by_hand}
    try:
        import torch

        xt0, bt0, dt = torch.from_numpy(x), torch.from_numpy(beta), torch.from_numpy(dout)

        def pytorch():
            xt, bt = xt0.clone().requires_grad_(), bt0.clone().requires_grad_()
            y = xt * torch.sigmoid(bt * xt)
            y.backward(dt)
            return xt.grad, bt.grad

        candidates["PyTorch autograd"] = pytorch
    except ImportError:
        pass
    gx, gb = gpunn_autograd()
    hx, hb, _ = numpy_by_hand()
    np.testing.assert_allclose(gx, hx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, hb, rtol=1e-3, atol=1e-3)
    ufuncs = {"threads": 1, "blas": "none (elementwise: NumPy's ufuncs, one thread)"}
    record(benchmark, {"gpunn.autograd": ufuncs, "NumPy by hand": ufuncs,
                       **({"PyTorch autograd": lambda: {**torch_peer(), "blas": "none (elementwise: PyTorch's "
                                                                                 "vectorised CPU kernels)"}}
                          if "PyTorch autograd" in candidates else {})},
           data=f"random: x ({N}, {D}), beta ({D},) and the upstream gradient ({N}, {D}), float32 standard normal "
                "(seed 0)")
    interleaved(candidates, "gpunn.autograd")


@pytest.mark.benchmark(group="neuron, 6 scalar gates, fwd+bwd")
def test_neuron_per_gate_overhead(benchmark, interleaved):
    def gpunn_autograd():
        a, b, c, x, y = (ag.tensor(v) for v in (1.0, 2.0, -3.0, -1.0, 3.0))
        f = ag.sigmoid(a * x + b * y + c)
        f.backward()
        return a.grad

    candidates = {"gpunn.autograd": gpunn_autograd}
    torch = pytest.importorskip("torch")

    def pytorch():
        a, b, c, x, y = (torch.tensor(v, requires_grad=True) for v in (1.0, 2.0, -3.0, -1.0, 3.0))
        f = torch.sigmoid(a * x + b * y + c)
        f.backward()
        return a.grad

    candidates["PyTorch autograd"] = pytorch
    record(benchmark, {"gpunn.autograd": {"threads": 1, "blas": "none (scalar NumPy arithmetic)"},
                       "PyTorch autograd": torch_peer},
           data="the lecture's neuron sigmoid(a x + b y + c) at a=1, b=2, c=-3, x=-1, y=3: float32 scalars")
    interleaved(candidates, "gpunn.autograd", rounds=15, block=50)
