"""Fused losses (kernels/losses.py): loss, gradient and correct count in one pass, against each loss's xp formula."""

import numpy as np
import pytest
from kernel_cases import DTYPES, poisoned_outputs  # noqa: F401

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
