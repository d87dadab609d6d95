"""GPU benchmarks: training steps, fused kernels and kNN on one CUDA device, peers in the same run.

Skipped without a usable GPU. On a GPU machine (CuPy, numba-cuda, PyTorch):
    pytest bench/test_gpu.py --benchmark-json=gpu.json && python bench/report.py gpu.json
Each candidate synchronises the device before its timer stops, so times are device work plus launch
overhead, as a training loop sees them. Peers are interleaved (bench/conftest.py).

The mixed-precision and TF32 rows time gpunn's float32, TF32 (``set_matmul_precision("high")``) and mixed
(float16 with a loss scaler on the device) steps beside PyTorch's float32, TF32 (``allow_tf32``) and
``autocast`` + ``GradScaler`` steps, on the same shapes and weights.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.divergence import DivergenceFlag

pytestmark = pytest.mark.skipif(not gn.cuda_available(), reason="needs a usable CUDA GPU (CuPy and a device)")

RELU = gn.nn.ReLU()
NETS = {"784-512-512-10 b256": (784, (512, 512), 10, 256), "3072-4096-4096-10 b1024": (3072, (4096, 4096), 10, 1024)}


def sync():
    import cupy

    cupy.cuda.Device().synchronize()


def batch(d, c, n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)


def gpunn_step(d, hidden, c, n):
    dev = gn.device("cuda")
    model = gn.classifiers.build_mlp(d, c, hidden, rng=0).to(dev)
    X, y = batch(d, c, n)
    X, y = dev.asarray(X), dev.asarray(y)
    loss, opt = gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        sync()

    return step


def torch_step(d, hidden, c, n):
    import torch

    sizes = [d, *hidden, c]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).cuda()
    X, y = batch(d, c, n)
    X, y = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()
    opt, loss = torch.optim.SGD(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(X), y).backward()
        opt.step()
        torch.cuda.synchronize()

    return step


def gemm_floor(d, hidden, c, n):
    """The step's matrix products alone on cuBLAS: forward, weight gradients, input gradients but the first."""
    import cupy

    sizes = [d, *hidden, c]
    rng = cupy.random.default_rng(0)
    Ws = [rng.standard_normal((a, b), dtype=cupy.float32) for a, b in zip(sizes, sizes[1:])]
    acts = [rng.standard_normal((n, s), dtype=cupy.float32) for s in sizes]
    grads = [rng.standard_normal((n, s), dtype=cupy.float32) for s in sizes[1:]]

    def step():
        for i, W in enumerate(Ws):
            acts[i] @ W
        for i, W in enumerate(Ws):
            acts[i].T @ grads[i]
            if i > 0:
                grads[i] @ W.T
        sync()

    return step


@pytest.mark.parametrize("net", list(NETS))
def test_train_step_gpu(benchmark, interleaved, net):
    args = NETS[net]
    candidates = {"gpunn": gpunn_step(*args), "cuBLAS GEMM floor": gemm_floor(*args)}
    try:
        candidates["torch eager"] = torch_step(*args)
    except ImportError:
        pass
    benchmark.group = f"GPU train step {net}"
    interleaved(candidates, primary="gpunn", rounds=15, block=20)


# ----------------------------------------------------------------------------- mixed precision and TF32

@contextlib.contextmanager
def matmul_precision(gpunn_precision: str, torch_tf32: bool):
    """Within the block gpunn's and PyTorch's float32 products compute as asked (each candidate sets its own)."""
    before = gn.get_matmul_precision()
    gn.set_matmul_precision(gpunn_precision)
    torch = sys.modules.get("torch")
    tf32 = None if torch is None else torch.backends.cuda.matmul.allow_tf32
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = torch_tf32
    try:
        yield
    finally:
        gn.set_matmul_precision(before)
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = tf32


def with_precision(step, gpunn_precision="highest", torch_tf32=False):
    def run():
        with matmul_precision(gpunn_precision, torch_tf32):
            step()
    return run


def gpunn_model_step(model, X, y, mixed=False):
    """One SGD step of a gpunn ``model`` on device data, as the Trainer takes it: float32, or mixed precision (float16
    copies of float32 masters, the loss scaled and the step decided on the device, the update unscaling)."""
    dev = gn.device("cuda")
    model.to(dev)
    X, y = dev.asarray(X, dtype=np.float16 if mixed else np.float32), dev.asarray(y)
    loss, opt = gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3)
    scaler = gn.LossScaler().bind(dev) if mixed else None
    flag = DivergenceFlag(dev)
    if mixed:
        model.mixed_precision()

    def step():
        opt.zero_grad()
        with loss.scaled(None if scaler is None else scaler.scale_array):
            value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        flag.check(value, [p.grad for p in opt.params if p.grad is not None], scaler)
        opt.step(skip=flag.state, scaler=scaler)
        sync()

    return step


def torch_model_step(model, X, y, mixed=False):
    """One SGD step of a PyTorch ``model``: float32, or ``autocast`` (float16) with ``GradScaler``."""
    import torch

    model = model.cuda()
    X, y = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()
    opt, loss = torch.optim.SGD(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda") if mixed else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=mixed):
            value = loss(model(X), y)
        if scaler is None:
            value.backward()
            opt.step()
        else:
            scaler.scale(value).backward()
            scaler.step(opt)
            scaler.update()
        torch.cuda.synchronize()

    return step


def torch_mlp(d, hidden, c):
    import torch

    sizes = [d, *hidden, c]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def precision_candidates(gpunn_model, torch_model, X, y) -> dict:
    """gpunn's and PyTorch's float32, TF32 and mixed steps (each builds its own model from the makers given)."""
    candidates = {
        "gpunn float32": gpunn_model_step(gpunn_model(), X, y),
        "gpunn TF32": with_precision(gpunn_model_step(gpunn_model(), X, y), "high"),
        "gpunn mixed": gpunn_model_step(gpunn_model(), X, y, mixed=True),
    }
    try:
        candidates.update({
            "torch float32": torch_model_step(torch_model(), X, y),
            "torch TF32": with_precision(torch_model_step(torch_model(), X, y), torch_tf32=True),
            "torch autocast+GradScaler": torch_model_step(torch_model(), X, y, mixed=True),
        })
    except ImportError:
        pass
    return candidates


@pytest.mark.parametrize("net", list(NETS))
def test_train_step_mixed_and_tf32_gpu(benchmark, interleaved, net):
    d, hidden, c, n = NETS[net]
    X, y = batch(d, c, n)
    candidates = precision_candidates(lambda: gn.classifiers.build_mlp(d, c, hidden, rng=0),
                                      lambda: torch_mlp(d, hidden, c), X, y)
    benchmark.group = f"GPU train step, mixed precision and TF32, {net}"
    interleaved(candidates, primary="gpunn mixed", rounds=15, block=20)


def test_convnet_step_mixed_and_tf32_gpu(benchmark, interleaved):
    """cs231n's three-layer ConvNet step of bench/test_conv.py (N=64, 3x32x32, 32 filters of 7x7), on the GPU."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_conv import step_data, step_weights, torch_convnet

    X, y = step_data()

    candidates = precision_candidates(lambda: step_weights()[0], torch_convnet, X, y)
    benchmark.group = "GPU ConvNet train step N=64 3x32x32, mixed precision and TF32"
    interleaved(candidates, primary="gpunn mixed", rounds=10, block=5)


def test_activation_bandwidth_gpu(benchmark, interleaved):
    import cupy

    n = 64 * 2**20  # 256 MB per float32 array
    dev = gn.device("cuda")
    x = dev.asarray(np.random.default_rng(0).standard_normal(n).astype(np.float32))
    g, dst = cupy.ones_like(x), cupy.empty_like(x)

    def fused():
        ops.activation_backward(g, ops.activation(x, RELU), RELU)
        sync()

    def expressions():
        with ops.use_kernels(False):
            ops.activation_backward(g, ops.activation(x, RELU), RELU)
        sync()

    def copy():
        cupy.copyto(dst, x)
        sync()

    benchmark.group = "GPU relu forward+backward, 64M float32"
    medians = interleaved({"gpunn": fused, "cupy expressions": expressions, "device copy": copy}, primary="gpunn",
                          rounds=15, block=5)
    copy_bw = 2 * 4 * n / medians["device copy"]
    benchmark.extra_info["fraction_of_copy_bandwidth"] = (5 * 4 * n / medians["gpunn"]) / copy_bw


def test_launch_latency_gpu(benchmark, interleaved):
    import cupy

    x = gn.device("cuda").asarray(np.random.default_rng(0).standard_normal(1024).astype(np.float32))
    relu = cupy.ElementwiseKernel("float32 x", "float32 y", "y = x > 0 ? x : 0", "gpunn_bench_relu")
    with ops.use_kernels(True):
        ops.activation(x, RELU)

    def ours():
        for _ in range(1000):
            ops.activation(x, RELU)
        sync()

    def cupy_kernel():
        for _ in range(1000):
            relu(x)
        sync()

    benchmark.group = "GPU launch, relu on 1K elements x 1000"
    interleaved({"gpunn": ours, "cupy ElementwiseKernel": cupy_kernel}, primary="gpunn", rounds=10, block=2)


KNN = {"N=1M D=128 Q=10k": (1_000_000, 128, 10_000), "N=50k D=3072 Q=10k": (50_000, 3072, 10_000)}


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("case", list(KNN))
def test_knn_gpu(benchmark, interleaved, case, metric):
    n, d, q = KNN[case]
    rng = np.random.default_rng(0)
    X, Xq = rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((q, d)).astype(np.float32)
    knn = gn.KNeighborsClassifier(10, metric, device="cuda", memory_limit="8GB").fit(X, rng.integers(0, 10, n))
    Xq_dev = gn.device("cuda").asarray(Xq)

    def ours():
        knn.kneighbors(Xq_dev)
        sync()

    candidates = {"gpunn": ours}
    try:
        import faiss

        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlat(res, d, faiss.METRIC_L1 if metric == "l1" else faiss.METRIC_L2)
        index.add(X)
        candidates["faiss gpu flat"] = lambda: index.search(Xq, 10)
    except (ImportError, AttributeError):
        pass
    benchmark.group = f"GPU kNN {metric} k=10 {case}"
    medians = interleaved(candidates, primary="gpunn", rounds=5, block=1)
    benchmark.extra_info["queries_per_second"] = {k: q / v for k, v in medians.items()}
    benchmark.extra_info["flops"] = (2 if metric == "l2" else 3) * q * n * d


@pytest.mark.parametrize("n_probe", [1, 8, 32])
def test_ivf_gpu(benchmark, interleaved, n_probe):
    """IVF search on the GPU (400,000 x 128 clustered rows, 10,000 queries, k=10, as bench/test_knn.py on the CPU)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_knn import IVF_K, clustered

    Q, X = clustered()
    n_lists = gn.knn.default_n_lists(len(X))
    knn = gn.KNeighborsClassifier(IVF_K, device="cuda", algorithm="ivf", n_lists=n_lists, n_probe=n_probe,
                                  random_state=0, memory_limit="8GB").fit(X, np.zeros(len(X), int))
    Q_dev = gn.device("cuda").asarray(Q)

    def ours():
        knn.kneighbors(Q_dev)
        sync()

    candidates = {"gpunn": ours}
    exact = gn.KNeighborsClassifier(IVF_K, device="cuda", memory_limit="8GB").fit(X, np.zeros(len(X), int))
    truth = gn.to_numpy(exact.kneighbors(Q_dev)[1])
    recall = {"gpunn": gn.knn.recall_at_k(gn.to_numpy(knn.kneighbors(Q_dev)[1]), truth)}
    try:
        import faiss

        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexIVFFlat(res, X.shape[1], n_lists, faiss.METRIC_L2)
        index.train(X)
        index.add(X)
        index.nprobe = n_probe
        candidates["faiss GpuIndexIVFFlat"] = lambda: index.search(Q, IVF_K)
        recall["faiss GpuIndexIVFFlat"] = gn.knn.recall_at_k(index.search(Q, IVF_K)[1], truth)
    except (ImportError, AttributeError):
        pass
    benchmark.group = f"GPU IVF kNN l2 k=10 400000x128 n_lists={n_lists} n_probe={n_probe}"
    benchmark.extra_info["recall_at_10"] = recall
    interleaved(candidates, primary="gpunn", rounds=5, block=1)
