"""Conv2d: float64 gradient checks, values against a naive loop and PyTorch, chunking, fusion, bad input."""

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.gradcheck import check_layer
from gpunn.nn import conv as conv_module

GEOMETRIES = [  # (N, C, H, W), F, kernel, stride, padding
    ((2, 3, 7, 6), 4, 3, 1, 1),
    ((2, 2, 7, 5), 3, (3, 2), (2, 1), (1, 0)),
    ((1, 3, 5, 9), 2, (1, 4), (1, 3), (0, 2)),
    ((3, 1, 6, 6), 2, 5, 2, 2),
    ((2, 2, 3, 3), 3, 3, 1, 0),  # a single output pixel
    ((1, 2, 4, 5), 2, 1, 1, 0),  # 1x1 kernel
]


def naive_conv(x, W, b, stride, pad):
    """The definition, one output value at a time (float64)."""
    (sh, sw), (ph, pw) = stride, pad
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, f, ho, wo))
    for i in range(n):
        for k in range(f):
            for a in range(ho):
                for d in range(wo):
                    out[i, k, a, d] = (xp[i, :, a * sh:a * sh + kh, d * sw:d * sw + kw] * W[k]).sum() + b[k]
    return out


def as_pair(v):
    return (v, v) if isinstance(v, int) else v


@pytest.mark.parametrize("shape,f,k,s,p", GEOMETRIES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_gradient_check(shape, f, k, s, p, bias, device, rng):
    layer = gn.nn.Conv2d(shape[1], f, k, stride=s, padding=p, bias=bias, rng=int(rng.integers(1 << 30))).to(device)
    assert check_layer(layer, rng.standard_normal(shape), seed=int(rng.integers(1 << 30))) < 1e-7


@pytest.mark.parametrize("shape,f,k,s,p", GEOMETRIES)
def test_conv_matches_the_naive_loop(shape, f, k, s, p, device, rng):
    layer = gn.nn.Conv2d(shape[1], f, k, stride=s, padding=p, rng=0).to(device, "float64")
    layer.b.data = device.asarray(rng.standard_normal(f))
    x = rng.standard_normal(shape)
    y = gn.to_numpy(layer.forward(x))
    np.testing.assert_allclose(y, naive_conv(x, gn.to_numpy(layer.W.data), gn.to_numpy(layer.b.data), as_pair(s),
                                             as_pair(p)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,f,k,s,p", GEOMETRIES)
def test_conv_matches_pytorch_forward_and_backward(shape, f, k, s, p, rng):
    torch = pytest.importorskip("torch")
    layer = gn.nn.Conv2d(shape[1], f, k, stride=s, padding=p, rng=0).to("float64")
    layer.b.data = rng.standard_normal(f)
    x, dout = rng.standard_normal(shape), None
    y = layer.forward(x)
    dout = rng.standard_normal(y.shape)
    dx = layer.backward(dout)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.W.data, layer.b.data))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
    yt.backward(torch.from_numpy(dout))
    for ours, theirs in ((y, yt), (dx, xt.grad), (layer.W.grad, wt.grad), (layer.b.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_float32_by_default_float64_on_request(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    layer = gn.nn.Conv2d(3, 4, 3)
    assert layer.W.dtype == np.float32 and layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((2, 4, 3, 3))).dtype == np.float32
    layer.to("float64")
    assert layer.forward(x).dtype == np.float64


def test_he_init_scale_and_layout():
    layer = gn.nn.Conv2d(16, 64, (3, 5), rng=0)
    assert layer.W.shape == (64, 16, 3, 5) and layer.b.shape == (64,)
    assert layer.W.data.std() == pytest.approx(np.sqrt(2 / (16 * 15)), rel=0.05)
    assert layer.W.decay and not layer.b.decay


def test_batch_chunks_give_the_same_results(rng, monkeypatch):
    """With a tiny column budget every image is its own chunk; outputs and gradients do not change."""
    x = rng.standard_normal((5, 3, 9, 8))
    dout = rng.standard_normal((5, 4, 9, 8))
    results = []
    for budget in (conv_module.COLS_BYTES, 1):
        monkeypatch.setattr(conv_module, "COLS_BYTES", budget)
        layer = gn.nn.Conv2d(3, 4, 3, padding=1, rng=3).to("float64")
        assert len(layer._chunks(x)) == (1 if budget > 1 else 5)
        y = layer.forward(x)
        results.append((y, layer.backward(dout), layer.W.grad, layer.b.grad))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_input_grad_false_skips_dx_and_keeps_parameter_gradients(rng):
    x, dout = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 5, 6, 6))
    layer = gn.nn.Conv2d(2, 5, 3, padding=1, rng=1)
    layer.forward(x)
    layer.backward(dout)
    w_grad = layer.W.grad.copy()
    layer.zero_grad()
    layer.forward(x)
    assert layer.backward(dout, input_grad=False) is None
    np.testing.assert_array_equal(layer.W.grad, w_grad)


@pytest.mark.parametrize("act", [gn.nn.ReLU, gn.nn.Tanh, lambda: gn.nn.LeakyReLU(0.1), gn.nn.Sigmoid])
def test_fused_activation_equals_the_two_gates(act, device, rng):
    x, dout = rng.standard_normal((4, 3, 8, 7)), rng.standard_normal((4, 6, 8, 7))
    outs = []
    for fused in (True, False):
        conv, a = gn.nn.Conv2d(3, 6, 3, padding=1, rng=2).to(device), act().to(device)
        with device:
            conv.b.data += device.asarray(np.linspace(-1, 1, 6, dtype=np.float32))
        if fused:
            y = conv.forward_fused(x, a)
            dx = conv.backward_fused(dout, a)
        else:
            y = a.forward(conv.forward(x))
            dx = conv.backward(a.backward(dout))
        outs.append([gn.to_numpy(v) for v in (y, dx, conv.W.grad, conv.b.grad)])
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_kernels_and_references_agree_through_the_layer(rng):
    x, dout = rng.standard_normal((8, 5, 12, 11)), rng.standard_normal((8, 7, 6, 6))
    outs = []
    for enabled in (True, False):
        with ops.use_kernels(enabled):
            layer = gn.nn.Conv2d(5, 7, (3, 4), stride=2, padding=(1, 2), rng=4)
            y = layer.forward(x)
            outs.append((y, layer.backward(dout), layer.W.grad, layer.b.grad))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "shape,match",
    [
        ((2, 3, 8), r"Conv2d\(3, 4, .*\) expects images of shape \(N, C, H, W\), got shape \(2, 3, 8\)"),
        ((2, 5, 8, 8), r"Conv2d\(3, 4, .*\) expects 3 input channels \(N, 3, H, W\), got shape \(2, 5, 8, 8\)"),
        ((2, 3, 2, 8), r"kernel 5x3 is larger than the padded input 4x10 \(input shape \(2, 3, 2, 8\)\)"),
        ((0, 3, 8, 8), "empty batch"),
    ],
)
def test_bad_images_are_refused_naming_the_layer_and_change_nothing(shape, match, rng):
    layer = gn.nn.Conv2d(3, 4, (5, 3), padding=1, rng=0)
    good = rng.standard_normal((2, 3, 6, 6))
    y = layer.forward(good)
    before = (layer.W.data.copy(), layer._cache)
    with pytest.raises(ValueError, match=match):
        layer.forward(rng.standard_normal(shape))
    np.testing.assert_array_equal(layer.W.data, before[0])
    assert layer._cache is before[1]
    assert layer.backward(np.ones_like(y)).shape == good.shape  # backward still belongs to the good forward


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(stride=0), ValueError, "^Conv2d: stride must be >= 1, got 0"),
        (dict(kernel_size=0), ValueError, "^Conv2d: kernel_size must be >= 1, got 0"),
        (dict(padding=-1), ValueError, "^Conv2d: padding must be >= 0, got -1"),
        (dict(kernel_size=(3, 3, 3)), TypeError, "^Conv2d: kernel_size must be an int or a pair of ints"),
        (dict(stride=1.5), TypeError, "^Conv2d: stride must be an int or a pair of ints"),
        (dict(in_channels=0), ValueError, "^Conv2d: in_channels must be >= 1"),
        (dict(init="bad"), ValueError, "^Conv2d: unknown init"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, err, match):
    """The message names the layer, then the argument, what it expected and what came."""
    args = dict(in_channels=3, out_channels=4, kernel_size=3) | kwargs
    with pytest.raises(err, match=match):
        gn.nn.Conv2d(**args)


def test_wrong_upstream_shape_is_refused(rng):
    layer = gn.nn.Conv2d(2, 3, 3)
    layer.forward(rng.standard_normal((2, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"upstream gradient has shape \(2, 3, 5, 5\), its output had \(2, 3, 3, 3\)"):
        layer.backward(np.ones((2, 3, 5, 5)))


def test_cpu_and_cuda_agree(gpu, rng):
    x, dout = rng.standard_normal((4, 3, 10, 9)), rng.standard_normal((4, 8, 5, 5))
    outs = []
    for dev in ("cpu", gpu):
        layer = gn.nn.Conv2d(3, 8, 3, stride=2, padding=1, rng=5).to(dev)
        relu = gn.nn.ReLU().to(dev)
        y = layer.forward_fused(x, relu)
        outs.append([gn.to_numpy(v) for v in (y, layer.backward_fused(dout, relu), layer.W.grad, layer.b.grad)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_eval_forward_keeps_no_columns_and_backward_still_works(rng):
    x, dout = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 4, 6, 6))
    layer = gn.nn.Conv2d(3, 4, 3, padding=1, rng=0).to("float64")
    layer.forward(x)
    assert layer._cache[1] is not None
    dx_train = layer.backward(dout)
    layer.eval().forward(x)
    assert layer._cache[1] is None
    np.testing.assert_allclose(layer.backward(dout), dx_train, rtol=1e-12)
