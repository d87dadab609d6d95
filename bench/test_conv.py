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
from conftest import torch_sgd_step, with_torch
from peers import gpunn_peer, numpy_peer, record, torch_peer

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


def gpunn_conv(x, w, b, dout, algorithm="auto"):
    layer = gn.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1, algorithm=algorithm)
    layer.load_state_dict({"W": w, "b": b})

    def step():
        layer.zero_grad()
        layer.forward(x)
        return layer.backward(dout)

    return step


def torch_conv(x, w, b, dout, relu: bool = False):
    """PyTorch's conv2d (followed by relu where asked), forward and backward."""
    import torch

    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    dt = torch.from_numpy(dout)

    def step():
        for t in (xt, wt, bt):
            t.grad = None
        out = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
        (torch.relu(out) if relu else out).backward(dt)
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


def gpunn_conv_relu(x, w, b, dout, fused):
    """Conv2d then ReLU, forward and backward: as two gates, or with the ReLU folded into the conv's epilogue."""
    layer, relu = gn.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1), gn.nn.ReLU()
    layer.load_state_dict({"W": w, "b": b})

    def step():
        layer.zero_grad()
        if fused:
            layer.forward_fused(x, relu)
            return layer.backward_fused(dout, relu)
        relu.forward(layer.forward(x))
        return layer.backward(relu.backward(dout))

    return step


PEERS = {"gpunn": gpunn_peer, "numpy-im2col": numpy_peer, "torch": torch_peer}


def conv_described(n, c, f, hw) -> str:
    return (f"random: x float32 ({n}, {c}, {hw}, {hw}), {f} filters 3x3 (He scale), upstream gradient "
            f"({n}, {f}, {hw}, {hw}), all standard normal (seed 0)")


def peers():
    return with_torch({"gpunn": gpunn_conv, "numpy-im2col": numpy_conv}, torch_conv)


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
    record(benchmark, {name: PEERS[name] for name in steps}, data=conv_described(n, c, f, hw))
    interleaved(steps, primary="gpunn", rounds=7, block=3)


@pytest.mark.parametrize("shape", ["32->64 32x32", "32->64 16x16"])
def test_conv_algorithms(benchmark, interleaved, shape):
    """Conv2d's algorithms side by side (what "auto" chooses is the bench above): the direct
    convolution and im2col + one GEMM."""
    n, c, f, hw = CONVS[shape]
    arrays = conv_data(n, c, f, hw)
    steps = {f"gpunn-{a}": gpunn_conv(*arrays, algorithm=a) for a in ("direct", "im2col")}
    if "torch" in peers():
        steps["torch"] = torch_conv(*arrays)
    expected = steps["gpunn-im2col"]()
    np.testing.assert_allclose(steps["gpunn-direct"](), expected, rtol=1e-4, atol=1e-4)
    benchmark.group = f"conv algorithms fwd+bwd N=64 {shape}"
    record(benchmark, {name: PEERS["gpunn" if name.startswith("gpunn") else name] for name in steps},
           data=conv_described(n, c, f, hw))
    interleaved(steps, primary="gpunn-direct", rounds=9, block=3)


@pytest.mark.parametrize("shape", ["32->64 32x32", "32->64 16x16"])
def test_conv_relu_fused(benchmark, interleaved, shape):
    """What folding the ReLU into the convolution's epilogue saves (Sequential does not fuse Conv2d yet)."""
    n, c, f, hw = CONVS[shape]
    arrays = conv_data(n, c, f, hw)
    steps = {"gpunn-fused": gpunn_conv_relu(*arrays, fused=True), "gpunn-two-gates": gpunn_conv_relu(*arrays, fused=False)}
    if "torch" in peers():
        steps["torch"] = torch_conv(*arrays, relu=True)
    expected = steps["gpunn-two-gates"]()
    np.testing.assert_allclose(steps["gpunn-fused"](), expected, rtol=1e-5, atol=1e-5)
    if "torch" in steps:  # float32 rounding moves a few pre-activations near 0 across ReLU's kink
        assert np.mean(~np.isclose(np.asarray(steps["torch"]()), expected, rtol=1e-3, atol=1e-3)) < 1e-3
    benchmark.group = f"conv+relu fwd+bwd N=64 {shape}"
    record(benchmark, {name: PEERS["gpunn" if name.startswith("gpunn") else name] for name in steps},
           data=conv_described(n, c, f, hw))
    interleaved(steps, primary="gpunn-fused", rounds=7, block=3)


# ----------------------------------------------------------------------------- ConvNet training step
# cs231n's three-layer ConvNet on CIFAR-sized random data: conv 32@7x7 (pad 3) - relu - 2x2 max pool
# - affine 8192->100 - relu - affine 100->10, softmax loss, one SGD step, batch 64, float32.
STEP = dict(n=64, c=3, hw=32, f=32, k=7, hidden=100, classes=10)
LR = 1e-3


def step_data(seed=0):
    rng = np.random.default_rng(seed)
    s = STEP
    X = rng.standard_normal((s["n"], s["c"], s["hw"], s["hw"])).astype(np.float32)
    return X, rng.integers(0, s["classes"], s["n"])


def step_weights(seed=1):
    model = gn.nn.three_layer_convnet((STEP["c"], STEP["hw"], STEP["hw"]), STEP["classes"], STEP["f"], STEP["k"],
                                      STEP["hidden"], rng=seed)
    return model, [p.data.copy() for p in model.parameters()]  # W1 b1 W2 b2 W3 b3


def gpunn_convnet_step(X, y):
    model, _ = step_weights()
    loss, opt = gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward(), input_grad=False)  # X is data, as for the peers
        opt.step()
        return value

    return step


def torch_convnet():
    """The same ConvNet in PyTorch, with gpunn's starting weights (bench/test_gpu.py runs it on a GPU too)."""
    import torch

    _, (W1, b1, W2, b2, W3, b3) = step_weights()
    s = STEP
    model = torch.nn.Sequential(
        torch.nn.Conv2d(s["c"], s["f"], s["k"], padding=s["k"] // 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(W2.shape[0], s["hidden"]), torch.nn.ReLU(),
        torch.nn.Linear(s["hidden"], s["classes"]))
    with torch.no_grad():
        for layer, w, b in ((model[0], W1, b1), (model[4], W2.T, b2), (model[6], W3.T, b3)):
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            layer.bias.copy_(torch.from_numpy(b))
    return model


def torch_convnet_step(X, y):
    return torch_sgd_step(torch_convnet(), X, y, LR)


def numpy_convnet_step(X, y):
    """The step as a cs231n student writes it: index-array im2col, reshape max pool, layer by layer."""
    _, (W1, b1, W2, b2, W3, b3) = step_weights()
    n, c, h, w = X.shape
    f, k = STEP["f"], STEP["k"]
    pad = k // 2
    ki, ii, ji = student_indices(c, h, w, k, k, pad, 1)
    rows = np.arange(n)

    def step():
        xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        cols = xp[:, ki, ii, ji].transpose(1, 2, 0).reshape(k * k * c, -1)
        z = (W1.reshape(f, -1) @ cols + b1[:, None]).reshape(f, h, w, n).transpose(3, 0, 1, 2)
        a = np.maximum(z, 0)
        r = a.reshape(n, f, h // 2, 2, w // 2, 2)
        p = r.max(axis=(3, 5))
        flat = p.reshape(n, -1)
        h1 = np.maximum(flat @ W2 + b2, 0)
        s = h1 @ W3 + b3
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        e /= e.sum(axis=1, keepdims=True)
        value = -np.log(e[rows, y]).mean()
        ds = e
        ds[rows, y] -= 1
        ds /= n
        dW3, db3 = h1.T @ ds, ds.sum(axis=0)
        dh1 = ds @ W3.T
        dh1[h1 <= 0] = 0
        dW2, db2 = flat.T @ dh1, dh1.sum(axis=0)
        dp = (dh1 @ W2.T).reshape(p.shape)
        mask = r == p[:, :, :, None, :, None]
        dr = mask * dp[:, :, :, None, :, None]
        dz = dr.reshape(a.shape) * (z > 0)
        d = dz.transpose(1, 2, 3, 0).reshape(f, -1)
        dW1, db1 = (d @ cols.T).reshape(W1.shape), d.sum(axis=1)
        for wt, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2), (W3, dW3), (b3, db3)):
            wt -= LR * g
        return value

    return step


def test_convnet_train_step(benchmark, interleaved):
    X, y = step_data()
    impls = {"gpunn": gpunn_convnet_step, "numpy-im2col": numpy_convnet_step}
    if "torch" in peers():
        impls["torch"] = torch_convnet_step
    steps = {name: make(X, y) for name, make in impls.items()}
    first = {name: float(step()) for name, step in steps.items()}  # same weights, same data: same first loss
    for name, value in first.items():
        assert value == pytest.approx(first["gpunn"], rel=1e-4), name
    benchmark.group = "ConvNet train step N=64 3x32x32"
    record(benchmark, {name: PEERS[name] for name in steps},
           data="random: X float32 (64, 3, 32, 32) standard normal, labels uniform over 10 classes (seed 0); "
                "three_layer_convnet(32 filters 7x7, hidden 100) weights from rng=1, the same for every peer")
    medians = interleaved(steps, primary="gpunn", rounds=7, block=3)
    benchmark.extra_info["samples_per_s"] = {name: STEP["n"] / t for name, t in medians.items()}


# ----------------------------------------------------------------------------- on a GPU
cuda = pytest.mark.skipif(not gn.cuda_available(), reason="needs a usable CUDA GPU (CuPy and a device)")


def cuda_sync():
    import cupy

    cupy.cuda.Device().synchronize()


@cuda
@pytest.mark.parametrize("shape", list(CONVS))
def test_conv_forward_backward_cuda(benchmark, interleaved, shape):
    """gpunn's CUDA im2col + cuBLAS GEMM convolution beside PyTorch eager (cuDNN), device work included."""
    import torch

    n, c, f, hw = CONVS[shape]
    x, w, b, dout = conv_data(n, c, f, hw)
    dev = gn.device("cuda")
    layer = gn.nn.Conv2d(c, f, 3, padding=1).to(dev)
    layer.load_state_dict({"W": w, "b": b})
    xd, dd = dev.asarray(x), dev.asarray(dout)
    xt, wt, bt = (torch.from_numpy(a.copy()).cuda().requires_grad_() for a in (x, w, b))
    dt = torch.from_numpy(dout).cuda()

    def ours():
        layer.zero_grad()
        layer.forward(xd)
        layer.backward(dd)
        cuda_sync()

    def theirs():
        for t in (xt, wt, bt):
            t.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(dt)
        torch.cuda.synchronize()

    benchmark.group = f"cuda conv fwd+bwd N=64 {shape}"
    interleaved({"gpunn": ours, "torch-cudnn": theirs}, primary="gpunn", rounds=7, block=10)
