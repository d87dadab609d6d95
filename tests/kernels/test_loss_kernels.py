"""Fused losses (kernels/losses.py): loss, gradient and correct count in one pass, against each loss's xp formula."""

import numpy as np
import pytest
from kernel_cases import DTYPES, assert_half, poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops

LOSSES = {"softmax": gn.nn.SoftmaxCrossEntropy, "hinge": lambda: gn.nn.MulticlassHinge(delta=0.7)}


def shapes(device):
    return [(1, 1), (5, 3), (37, 10), (300, 7)] if device.type == "cpu" else [(1, 1), (5, 3), (37, 10)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", LOSSES)
def test_the_kernel_gives_the_formula_s_loss_gradient_and_count(name, dtype, device, rng):
    loss = LOSSES[name]()
    for n, c in shapes(device):
        s = (rng.standard_normal((n, c)) * 4).astype(dtype)
        s[:, -1] = s[:, 0]  # ties for the top score: the first one counts, as argmax's
        s[0, 0] = 300  # far beyond exp's range: the shifted form must hold
        y = rng.integers(0, c, n).astype(np.int32 if n % 2 else np.int64)
        value, grad, correct = ops.fused_loss.with_kernel(device.asarray(s), device.asarray(y), loss)
        ref_value, ref_grad, ref_correct = ops.fused_loss.reference(s, y, loss)
        assert value.shape == () and correct.shape == () and gn.to_numpy(correct).dtype == np.int64
        tol = 16 * np.finfo(dtype).eps
        np.testing.assert_allclose(gn.to_numpy(value), ref_value, rtol=tol * max(1, np.log2(n)), atol=tol)
        np.testing.assert_allclose(gn.to_numpy(grad), ref_grad, rtol=tol, atol=tol / n)
        assert int(gn.to_numpy(correct)) == int(ref_correct) == int((s.argmax(axis=1) == y).sum())


def test_softmax_cross_entropy_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    s, y = rng.standard_normal((64, 10)) * 3, rng.integers(0, 10, 64)
    value, grad, _ = ops.fused_loss(s, y, gn.nn.SoftmaxCrossEntropy())
    t = torch.tensor(s, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.tensor(y))
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_hinge_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    s, y = rng.standard_normal((64, 10)), rng.integers(0, 10, 64)
    value, grad, _ = ops.fused_loss(s, y, gn.nn.MulticlassHinge(delta=1.0))
    t = torch.tensor(s, requires_grad=True)
    # PyTorch's multi_margin_loss divides each row's sum by C: times C it is cs231n's SVM loss
    expected = torch.nn.functional.multi_margin_loss(t, torch.tensor(y), margin=1.0) * 10
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_a_loss_defined_without_kernels_runs_its_formula(rng):
    class Scaled(gn.nn.SoftmaxCrossEntropy):
        kernels = None  # its own formula, which no kernel computes

        def value_and_grad(self, s, y):
            value, grad, correct = super().value_and_grad(s, y)
            return 2 * value, 2 * grad, correct

    s, y = rng.standard_normal((20, 4)), rng.integers(0, 4, 20)
    np.testing.assert_allclose(Scaled().forward(s, y), 2 * gn.nn.SoftmaxCrossEntropy().forward(s, y), rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", LOSSES)
def test_a_scale_multiplies_the_gradient_and_leaves_the_loss(name, dtype, device, rng):
    """The loss scale (mixed precision's) is read on the device and folded into the gradient, in the kernel."""
    loss = LOSSES[name]()
    s, y = (rng.standard_normal((37, 10)) * 3).astype(dtype), rng.integers(0, 10, 37)
    scale = np.array([1024.0], dtype)
    value, grad, correct = ops.fused_loss.with_kernel(device.asarray(s), device.asarray(y), loss, device.asarray(scale))
    ref_value, ref_grad, ref_correct = ops.fused_loss.reference(s, y, loss)
    tol = 16 * np.finfo(dtype).eps
    np.testing.assert_allclose(gn.to_numpy(value), ref_value, rtol=tol * 6, atol=tol)
    np.testing.assert_allclose(gn.to_numpy(grad), 1024 * ref_grad, rtol=tol, atol=1024 * tol / 37)
    assert int(gn.to_numpy(correct)) == int(ref_correct)
    with pytest.raises(ValueError, match="fused_loss: scale must be a 1-D"):
        ops.fused_loss.with_kernel(device.asarray(s), device.asarray(y), loss,
                                   device.asarray(scale.astype(np.float64 if dtype == np.float32 else np.float32)))


@pytest.mark.parametrize("name", LOSSES)
def test_float16_scores_compute_in_float32(name, one_gpu, rng):
    """A mixed-precision model's float16 scores: the loss in float32 (softmax, log and sums: far beyond float16's
    4 digits), the gradient times the loss scale stored in float16, the count exact."""
    loss = LOSSES[name]()
    s = (rng.standard_normal((37, 10)) * 4).astype(np.float16)
    s[:, -1] = s[:, 0]  # ties for the top score: the first one counts
    y = rng.integers(0, 10, 37)
    scale = np.array([2.0 ** 12], np.float32)
    value, grad, correct = ops.fused_loss.with_kernel(one_gpu.asarray(s), one_gpu.asarray(y), loss,
                                                      one_gpu.asarray(scale))
    exact_value, exact_grad, exact_correct = ops.fused_loss.reference(s.astype(np.float64), y, loss)
    assert gn.to_numpy(value).dtype == np.float32 and gn.to_numpy(grad).dtype == np.float16
    np.testing.assert_allclose(gn.to_numpy(value), exact_value, rtol=1e-6)
    # a probability near 1 carries float32's absolute error (an ulp of 1) into p - 1: scaled, near a float16 ulp
    slack = 2 * np.finfo(np.float32).eps * 2.0 ** 12 / 37
    assert_half(grad, 2.0 ** 12 * exact_grad, f"{name} scaled gradient", slack)
    assert int(gn.to_numpy(correct)) == int(exact_correct) == int((s.argmax(axis=1) == y).sum())
    on_cpu = ops.fused_loss(s, y, loss, scale)  # the CPU declines float16: the reference computes in float32 too
    np.testing.assert_allclose(on_cpu[0], exact_value, rtol=1e-6)
    assert_half(on_cpu[1], 2.0 ** 12 * exact_grad, f"{name} scaled gradient, the reference", slack)
