"""Convolution benchmarks: conv forward + backward and one training step of cs231n's three-layer ConvNet.

Peers in the same run, on the same arrays (float32, NCHW): PyTorch on the CPU (oneDNN, where
installed) and a NumPy im2col convolution as a cs231n student writes it (index arrays built once,
fancy-indexed gathers, ``np.add.at`` for col2im).
Run: pytest bench/test_conv.py --benchmark-json=conv.json && python bench/report.py conv.json
(peers are timed interleaved; see bench/conftest.py)
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunn as gn

# name: (N, C_in, C_out, H=W); 3x3 kernels, stride 1, padding 1
CONVS = {"3->32 32x32": (64, 3, 32, 32), "32->64 32x32": (64, 32, 64, 32), "3->32 16x16": (64, 3, 32, 16),
         "32->64 16x16": (64, 32, 64, 16)}


def conv_data(n, c, f, hw, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((f, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
    dout = rng.standard_normal((n, f, hw, hw)).astype(np.float32)
    return x, w, np.zeros(f, np.float32), dout


def gpunn_conv(x, w, b, dout):
    layer = gn.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
    layer.load_state_dict({"W": w, "b": b})

    def step():
        layer.zero_grad()
        layer.forward(x)
        return layer.backward(dout)

    return step


def torch_conv(x, w, b, dout):
    import torch

    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    dt = torch.from_numpy(dout)

    def step():
        for t in (xt, wt, bt):
            t.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(dt)
        return xt.grad

    return step


def student_indices(c, h, w, kh, kw, pad, stride):
    """cs231n-style index arrays: cols = x_padded[:, k, i, j] gathers every patch at once."""
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    i0 = np.tile(np.repeat(np.arange(kh), kw), c)
    i1 = stride * np.repeat(np.arange(ho), wo)
    j0 = np.tile(np.arange(kw), kh * c)
    j1 = stride * np.tile(np.arange(wo), ho)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(c), kh * kw).reshape(-1, 1)
    return k, i, j


def numpy_conv(x, w, b, dout):
    n, c, h, ww = x.shape
    f = w.shape[0]
    k, i, j = student_indices(c, h, ww, 3, 3, 1, 1)

    def step():
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = xp[:, k, i, j].transpose(1, 2, 0).reshape(9 * c, -1)  # (C kh kw, Ho Wo N)
        out = (w.reshape(f, -1) @ cols + b[:, None]).reshape(f, h, ww, n).transpose(3, 0, 1, 2)
        d = dout.transpose(1, 2, 3, 0).reshape(f, -1)
        db = dout.sum(axis=(0, 2, 3))
        dw = (d @ cols.T).reshape(w.shape)
        dcols = (w.reshape(f, -1).T @ d).reshape(9 * c, -1, n).transpose(2, 0, 1)
        dxp = np.zeros_like(xp)
        np.add.at(dxp, (slice(None), k, i, j), dcols)
        return out, dw, db, dxp[:, :, 1:-1, 1:-1]

    return step


def peers():
    impls = {"gpunn": gpunn_conv, "numpy-im2col": numpy_conv}
    try:
        import torch  # noqa: F401

        impls["torch"] = torch_conv
    except ImportError:
        pass
    return impls


@pytest.mark.parametrize("shape", list(CONVS))
def test_conv_forward_backward(benchmark, interleaved, shape):
    n, c, f, hw = CONVS[shape]
    arrays = conv_data(n, c, f, hw)
    steps = {name: make(*arrays) for name, make in peers().items()}
    expected = steps["gpunn"]()
    for name, step in steps.items():  # every peer computes the same input gradient
        got = step()
        got = got[-1] if isinstance(got, tuple) else got
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-3, atol=1e-3, err_msg=name)
    benchmark.group = f"conv fwd+bwd N=64 {shape}"
    interleaved(steps, primary="gpunn", rounds=7, block=3)
