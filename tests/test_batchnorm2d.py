"""BatchNorm2d (spatial batchnorm): gradient checks, PyTorch's batch_norm, running statistics, bad input."""

import numpy as np
import pytest

import gpunn as gn
from gpunn.gradcheck import check_layer


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 1, 3, 3), (1, 2, 4, 1)])
def test_gradient_check_in_training(shape, device, rng):
    bn = gn.nn.BatchNorm2d(shape[1]).to(device)
    bn.gamma.data = device.asarray(rng.uniform(0.5, 2, shape[1]).astype(np.float32))
    bn.beta.data = device.asarray(rng.standard_normal(shape[1]).astype(np.float32))
    assert check_layer(bn, rng.standard_normal(shape) * 2 + 1) < 1e-7


def test_gradient_check_in_eval(device, rng):
    bn = gn.nn.BatchNorm2d(3).to(device)
    bn.forward(rng.standard_normal((6, 3, 4, 4)) * 3 + 1)
    bn.eval()
    assert check_layer(bn, rng.standard_normal((2, 3, 4, 4))) < 1e-7


def test_matches_pytorch_batch_norm_training_then_eval(rng):
    torch = pytest.importorskip("torch")
    c = 4
    bn = gn.nn.BatchNorm2d(c, momentum=0.2).to("float64")
    bn.gamma.data, bn.beta.data = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    rm, rv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((5, c, 3, 4)) * 2 + 0.5
        y = bn.forward(x)
        dout = rng.standard_normal(y.shape)
        xt = torch.tensor(x, requires_grad=True)
        gt, bt = torch.tensor(bn.gamma.data, requires_grad=True), torch.tensor(bn.beta.data, requires_grad=True)
        yt = torch.nn.functional.batch_norm(xt, rm, rv, gt, bt, training=True, momentum=0.2, eps=bn.eps)
        yt.backward(torch.from_numpy(dout))
        bn.zero_grad()
        dx = bn.backward(dout)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.gamma.grad, gt.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.beta.grad, bt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean, rm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, rv.numpy(), rtol=1e-12)
    bn.eval()
    x = rng.standard_normal((2, c, 3, 4))
    ref = torch.nn.functional.batch_norm(torch.from_numpy(x), rm, rv, torch.from_numpy(bn.gamma.data),
                                         torch.from_numpy(bn.beta.data), training=False, eps=bn.eps)
    np.testing.assert_allclose(bn.forward(x), ref.numpy(), rtol=1e-12)


def test_statistics_are_per_channel_over_batch_and_space(device, rng):
    x = rng.standard_normal((6, 3, 4, 5)) * np.array([1, 5, 0.1])[None, :, None, None] + 7
    y = gn.to_numpy(gn.nn.BatchNorm2d(3).to(device, "float64").forward(x))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    var = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), var / (var + 1e-5), rtol=1e-10)  # eps shrinks it a little


def test_equals_batchnorm1d_on_the_channels_as_features(rng):
    """Spatial batchnorm is BatchNorm1d applied to the (N H W, C) matrix of pixels."""
    x, dout = rng.standard_normal((3, 4, 2, 5)), rng.standard_normal((3, 4, 2, 5))
    bn2, bn1 = gn.nn.BatchNorm2d(4).to("float64"), gn.nn.BatchNorm1d(4).to("float64")
    y2, dx2 = bn2.forward(x), bn2.backward(dout)
    rows = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, 4)  # noqa: E731
    y1, dx1 = bn1.forward(rows(x)), bn1.backward(rows(dout))
    np.testing.assert_allclose(rows(y2), y1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rows(dx2), dx1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn2.running_var, bn1.running_var, rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 5, 5), (2, 3, 4)])
def test_wrong_shapes_are_refused_and_change_nothing(shape, rng):
    bn = gn.nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3, .*\) expects input of shape \(N, 3, H, W\), got"):
        bn.forward(rng.standard_normal(shape))
    np.testing.assert_array_equal(bn.running_mean, 0)


def test_one_value_per_channel_is_refused_in_training(rng):
    bn = gn.nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="at least 2 values per channel"):
        bn.forward(rng.standard_normal((1, 2, 1, 1)))
    np.testing.assert_array_equal(bn.running_var, 1)


@pytest.mark.parametrize("kwargs,match", [(dict(num_features=0), "^BatchNorm2d: num_features must be >= 1, got 0"),
                                          (dict(num_features=3, momentum=2), "^BatchNorm2d: momentum must be"),
                                          (dict(num_features=3, eps=0), "^BatchNorm2d: eps must be")])
def test_bad_hyperparameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gn.nn.BatchNorm2d(**kwargs)
