"""The same seed and inputs give the same results on the CPU and on CUDA, within float32 tolerance.

Each test runs on cuda:0 and cuda:1: the real GPUs where there are some, else the simulated GPU
(tests/simulated_gpu). On a GPU machine: pytest -m cuda
"""

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops

RTOL, ATOL = 2e-4, 2e-5  # float32, with a different summation order in BLAS/cuBLAS reductions


def close(cpu, cuda, what):
    np.testing.assert_allclose(gn.to_numpy(cuda), gn.to_numpy(cpu), rtol=RTOL, atol=ATOL, err_msg=what)


LAYERS = {
    "linear": lambda: gn.nn.Linear(12, 7, rng=1),
    "relu": gn.nn.ReLU, "leaky_relu": lambda: gn.nn.LeakyReLU(0.1), "elu": gn.nn.ELU,
    "sigmoid": gn.nn.Sigmoid, "tanh": gn.nn.Tanh,
    "maxout": lambda: gn.nn.Maxout(12, 5, pieces=3, rng=2),
    "dropout": lambda: gn.nn.Dropout(0.4, seed=3),
    "batchnorm": lambda: gn.nn.BatchNorm1d(12),
    "mlp": lambda: gn.nn.Sequential(gn.nn.Linear(12, 64, rng=4), gn.nn.ReLU(), gn.nn.Dropout(0.2),
                                    gn.nn.Linear(64, 3, rng=5)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layers_forward_backward_agree(name, rng, gpu):
    x = rng.standard_normal((16, 12)).astype(np.float32)
    outs = {}
    for dev in ("cpu", gpu):
        layer = LAYERS[name]().to(dev).seed(11)
        y = layer.forward(x)
        dout = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dout, input_grad=True)
        outs[str(dev)] = (y, dx, [p.grad for p in layer.parameters()])
    close(outs["cpu"][0], outs[str(gpu)][0], f"{name} forward")
    close(outs["cpu"][1], outs[str(gpu)][1], f"{name} backward")
    for a, b in zip(outs["cpu"][2], outs[str(gpu)][2]):
        close(a, b, f"{name} parameter gradient")


@pytest.mark.parametrize("loss", [gn.nn.SoftmaxCrossEntropy, gn.nn.MulticlassHinge])
def test_losses_agree(loss, rng, gpu):
    s, y = rng.standard_normal((32, 10)).astype(np.float32), rng.integers(0, 10, 32)
    results = {}
    for dev in ("cpu", gpu):
        fn = loss()
        value = fn.forward(gn.device(dev).asarray(s), y)
        results[str(dev)] = (float(value), fn.backward())
    assert results[str(gpu)][0] == pytest.approx(results["cpu"][0], rel=1e-5)
    close(results["cpu"][1], results[str(gpu)][1], f"{loss.__name__} gradient")


@pytest.mark.parametrize("make", [
    lambda ps: gn.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: gn.optim.Adagrad(ps, lr=0.1), lambda ps: gn.optim.RMSProp(ps, lr=0.01),
    lambda ps: gn.optim.Adam(ps, lr=0.01, weight_decay=0.01), lambda ps: gn.optim.AdamW(ps, lr=0.01),
], ids=["nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_optimizer_steps_agree(make, rng, gpu):
    w0, grads = rng.standard_normal((300, 200)).astype(np.float32), [rng.standard_normal((300, 200)).astype(np.float32)
                                                                        for _ in range(3)]
    final = {}
    for dev in ("cpu", gpu):
        d = gn.device(dev)
        p = gn.nn.Parameter(d.asarray(w0.copy()))  # on the CPU asarray shares memory: the steps would change w0
        opt = make([p])
        for g in grads:
            p.grad = d.asarray(g)
            opt.step()
        final[str(dev)] = p.data
    close(final["cpu"], final[str(gpu)], "weights after 3 steps")


@pytest.mark.parametrize("kind", sorted(name for name in gn.nn.ACTIVATIONS if name != "identity"))
def test_fused_kernels_agree_with_the_cpu(kind, rng, gpu):
    x = rng.standard_normal((512, 300)).astype(np.float32) * 3
    g = rng.standard_normal((512, 300)).astype(np.float32)
    cuda = gpu
    gate = gn.nn.ACTIVATIONS[kind](alpha=0.2) if "alpha" in gn.nn.ACTIVATIONS[kind].numbers else gn.nn.ACTIVATIONS[kind]()
    y_cpu, y_gpu = ops.activation(x, gate), ops.activation(cuda.asarray(x), gate)
    close(y_cpu, y_gpu, f"{kind} forward")
    s_cpu, s_gpu = (x, cuda.asarray(x)) if gate.backward_from == "input" else (y_cpu, y_gpu)
    close(ops.activation_backward(g, s_cpu, gate),
          ops.activation_backward(cuda.asarray(g), s_gpu, gate), f"{kind} backward")
    dz_cpu, db_cpu = ops.bias_activation_backward(g, s_cpu, gate)
    dz_gpu, db_gpu = ops.bias_activation_backward(cuda.asarray(g), s_gpu, gate)
    close(dz_cpu, dz_gpu, f"{kind} dz")
    np.testing.assert_allclose(gn.to_numpy(db_gpu), db_cpu, rtol=1e-3, atol=1e-3)
    mask_cpu = ops.dropout_forward(x, 0.3, 1234)[1]
    mask_gpu = ops.dropout_forward(cuda.asarray(x), 0.3, 1234)[1]
    np.testing.assert_array_equal(gn.to_numpy(mask_gpu), mask_cpu)  # counter-based: identical masks


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_queries_agree(metric, rng, gpu):
    # sizes the simulated GPU runs in seconds (its threads are Python threads) and still above the kernels' tiles
    X, Xq, y = rng.standard_normal((300, 40)), rng.standard_normal((9, 40)), rng.integers(0, 5, 300)
    cpu = gn.KNeighborsClassifier(8, metric, device="cpu").fit(X, y)
    on_gpu = gn.KNeighborsClassifier(8, metric, device=gpu).fit(X, y)
    d_cpu, i_cpu = cpu.kneighbors(Xq)
    d_gpu, i_gpu = on_gpu.kneighbors(Xq)
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-4)
    np.testing.assert_array_equal(i_gpu, i_cpu)
    np.testing.assert_array_equal(on_gpu.predict(Xq), cpu.predict(Xq))


@pytest.mark.parametrize("metric,k", [("l1", 7), ("l2", 130)])  # within the CUDA selection kernel's 128, and beyond
def test_knn_ties_and_ivf_agree(metric, k, rng, one_gpu):
    # few queries: the simulated GPU runs a block of Python threads per query
    X = rng.integers(-3, 4, (300, 6)).astype(np.float32)  # exact distances, ties everywhere
    Xq, y = rng.integers(-3, 4, (8, 6)).astype(np.float32), rng.integers(0, 5, 300)
    for params in ({}, {"algorithm": "ivf", "n_lists": 12, "random_state": 0}):
        cpu = gn.KNeighborsClassifier(k, metric, device="cpu", **params).fit(X, y)
        on_gpu = gn.KNeighborsClassifier(k, metric, device=one_gpu, **params).fit(X, y)
        for n_probe in ([None] if not params else [12, 4]):  # an integer n_probe takes effect at each query
            if n_probe is not None:
                cpu.set_params(n_probe=n_probe)
                on_gpu.set_params(n_probe=n_probe)
            d_cpu, i_cpu = cpu.kneighbors(Xq)
            d_gpu, i_gpu = on_gpu.kneighbors(Xq)
            if n_probe in (None, 12):  # exact: the same answer on both, ties by the lower index
                np.testing.assert_array_equal(i_gpu, i_cpu)
                np.testing.assert_array_equal(d_gpu, d_cpu)
            else:  # k-means runs on each device (atomic sums on CUDA): the indexes may differ a little
                assert gn.knn.recall_at_k(i_gpu, i_cpu) > 0.8


def test_training_run_agrees(rng, gpu):
    X, y = rng.standard_normal((512, 20)).astype(np.float32), rng.integers(0, 4, 512)
    weights = {}
    for dev in ("cpu", gpu):
        model = gn.nn.Sequential(gn.nn.Linear(20, 64, rng=0), gn.nn.ReLU(), gn.nn.Dropout(0.3),
                                 gn.nn.Linear(64, 4, rng=1))
        trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(model.parameters(), lr=1e-3),
                             batch_size=64, epochs=3, device=dev, seed=5, progress=False)
        trainer.fit(X, y)
        weights[str(dev)] = model.state_dict()
    for k in weights["cpu"]:
        np.testing.assert_allclose(weights[str(gpu)][k], weights["cpu"][k], rtol=1e-3, atol=1e-4, err_msg=k)
