"""MaxPool2d, AvgPool2d, GlobalAvgPool2d: gradient checks, naive loops, PyTorch, kernels vs references, bad input."""

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.gradcheck import check_layer

POOLS = [  # (N, C, H, W), kernel, stride
    ((2, 3, 8, 8), 2, None),
    ((2, 2, 7, 9), 3, 2),  # overlapping windows, odd sizes, a ragged edge
    ((1, 2, 6, 7), (2, 3), (1, 2)),
    ((3, 1, 5, 5), 5, None),  # one window covers the image
]


def naive_pool(x, k, s, reduce, pad=(0, 0)):
    (kh, kw), (sh, sw), (ph, pw) = k, s, pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = xp.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for a in range(ho):
        for b in range(wo):
            out[:, :, a, b] = reduce(xp[:, :, a * sh:a * sh + kh, b * sw:b * sw + kw], axis=(2, 3))
    return out


def pair(v):
    return (v, v) if isinstance(v, int) else v


@pytest.mark.parametrize("shape,k,s", POOLS)
def test_max_pool_gradient_check(shape, k, s, device, rng):
    # distinct values well apart, so no finite-difference step changes which value is the maximum
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01
    assert check_layer(gn.nn.MaxPool2d(k, s).to(device), x) < 1e-7


@pytest.mark.parametrize("shape,k,s", POOLS)
@pytest.mark.parametrize("pad", [0, 1])
def test_avg_pool_gradient_check(shape, k, s, pad, device, rng):
    if pad and 2 * pad > min(pair(k)):
        pytest.skip("padding above half the kernel is refused")
    assert check_layer(gn.nn.AvgPool2d(k, s, pad).to(device), rng.standard_normal(shape)) < 1e-7


def test_global_avg_pool_gradient_check(device, rng):
    assert check_layer(gn.nn.GlobalAvgPool2d().to(device), rng.standard_normal((3, 4, 5, 3))) < 1e-7


@pytest.mark.parametrize("shape,k,s", POOLS)
def test_pools_match_the_naive_loop(shape, k, s, device, rng):
    x = rng.standard_normal(shape)
    k2, s2 = pair(k), pair(s if s is not None else k)
    np.testing.assert_array_equal(gn.to_numpy(gn.nn.MaxPool2d(k, s).to(device, "float64").forward(x)),
                                  naive_pool(x, k2, s2, np.max))
    np.testing.assert_allclose(gn.to_numpy(gn.nn.AvgPool2d(k, s, 1 if min(k2) >= 2 else 0).to(device, "float64")
                                           .forward(x)),
                               naive_pool(x, k2, s2, np.mean, (1, 1) if min(k2) >= 2 else (0, 0)), rtol=1e-12)


@pytest.mark.parametrize("shape,k,s", POOLS)
def test_pools_match_pytorch(shape, k, s, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(shape)
    pad = 1 if min(pair(k)) >= 2 else 0
    for layer, ref in ((gn.nn.MaxPool2d(k, s), lambda t: F.max_pool2d(t, k, s)),
                       (gn.nn.AvgPool2d(k, s, pad), lambda t: F.avg_pool2d(t, k, s, pad)),
                       (gn.nn.GlobalAvgPool2d(), lambda t: t.mean(dim=(2, 3)))):
        layer.to("float64")
        y = layer.forward(x)
        dout = rng.standard_normal(y.shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = ref(xt)
        yt.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, err_msg=repr(layer))
        np.testing.assert_allclose(layer.backward(dout), xt.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=repr(layer))


def test_max_pool_ties_go_to_the_first_maximum_and_nan_wins(device):
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]]], [[[np.nan, 5.0], [1.0, 2.0]]]])
    pool = gn.nn.MaxPool2d(2).to(device, "float64")
    y = gn.to_numpy(pool.forward(x))
    assert y[0, 0, 0, 0] == 1.0 and np.isnan(y[1, 0, 0, 0])
    dx = gn.to_numpy(pool.backward(np.ones((2, 1, 1, 1))))
    np.testing.assert_array_equal(dx[0, 0], [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(dx[1, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_kernel_and_reference_agree_on_big_batches(rng):
    x = rng.standard_normal((16, 8, 17, 15)).astype(np.float32)
    outs = []
    for enabled in (True, False):
        with ops.use_kernels(enabled):
            pool = gn.nn.MaxPool2d(3, 2)
            y = pool.forward(x)
            outs.append((y, pool.backward(np.ones_like(y))))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "layer,shape,match",
    [
        (gn.nn.MaxPool2d(2), (4, 8, 8), r"MaxPool2d\(kernel_size=\(2, 2\), stride=\(2, 2\)\) expects images"),
        (gn.nn.MaxPool2d(3), (1, 2, 2, 8), r"kernel 3x3 is larger than the input 2x8"),
        (gn.nn.AvgPool2d(4, padding=1), (1, 1, 1, 1), r"kernel 4x4 is larger than the padded input 3x3"),
        (gn.nn.GlobalAvgPool2d(), (4, 8), r"GlobalAvgPool2d\(\) expects images of shape \(N, C, H, W\)"),
    ],
)
def test_bad_images_are_refused_naming_the_layer(layer, shape, match, rng):
    with pytest.raises(ValueError, match=match):
        layer.forward(rng.standard_normal(shape))
    assert layer._cache is None


@pytest.mark.parametrize(
    "make,err,match",
    [
        (lambda: gn.nn.MaxPool2d(0), ValueError, "^MaxPool2d: kernel_size must be >= 1, got 0"),
        (lambda: gn.nn.MaxPool2d(2, stride=0), ValueError, "^MaxPool2d: stride must be >= 1, got 0"),
        (lambda: gn.nn.AvgPool2d(2, padding=2), ValueError,
         "^AvgPool2d: padding must be at most half the kernel size"),
        (lambda: gn.nn.AvgPool2d("2"), TypeError, "^AvgPool2d: kernel_size must be an int or a pair"),
    ],
)
def test_bad_hyperparameters_are_named(make, err, match):
    with pytest.raises(err, match=match):
        make()
