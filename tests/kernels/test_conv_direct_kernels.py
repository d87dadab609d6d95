"""The direct convolution (kernels/conv_direct.py, algorithm="direct"): its kernels against the im2col
references, the layer against PyTorch and float64 gradients, what "auto" picks, and bad arguments."""

import numpy as np
import pytest

from kernel_cases import poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops
from gpunn.gradcheck import check_layer

# (N, C, Hp, Wp) of the padded input, F, (kh, kw): outputs 16 or 32 wide; filter counts that are not
# multiples of four; kernel rows of 1, 4, 5, 7 taps (not multiples of three); planes of an odd number of
# 16-pixel segments (Ho = 3, Wo = 16)
CASES = [
    ((2, 3, 18, 18), 5, (3, 3)),
    ((3, 2, 5, 18), 6, (3, 3)),
    ((2, 4, 6, 16), 4, (1, 1)),
    ((1, 3, 20, 36), 3, (5, 5)),
    ((2, 2, 9, 22), 8, (7, 7)),
    ((1, 5, 6, 19), 2, (3, 4)),
    ((2, 3, 8, 18), 17, (3, 3)),  # 6 segments (a step of 4, then 2), 17 filters (blocks of 4 and 8, then one)
    ((13, 2, 8, 18), 16, (3, 3)),  # dW: passes of 5 images, each task's last one shorter
]


@pytest.mark.parametrize("shape,f,kernel", CASES)
@pytest.mark.parametrize("bias,relu", [(True, False), (False, True), (True, True)])
def test_forward_kernel_equals_the_reference(shape, f, kernel, bias, relu, rng):
    xpad = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((f, shape[1], *kernel)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32) if bias else None
    got = ops.conv_direct.with_kernel(xpad, w, b, relu)
    assert got.shape == (shape[0], f, shape[2] - kernel[0] + 1, shape[3] - kernel[1] + 1)
    np.testing.assert_allclose(got, ops.conv_direct.reference(xpad, w, b, relu), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,f,kernel", CASES)
def test_parameter_gradient_kernel_equals_the_reference(shape, f, kernel, rng):
    xpad = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal((shape[0], f, shape[2] - kernel[0] + 1, shape[3] - kernel[1] + 1)).astype(np.float32)
    want_w, want_b = ops.conv_direct_param_grads.reference(xpad, dy, kernel)
    got_w, got_b = ops.conv_direct_param_grads.with_kernel(xpad, dy, kernel)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-4, atol=1e-4 * np.abs(want_w).max())
    np.testing.assert_allclose(got_b, dy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-4,
                               atol=1e-4 * np.abs(want_b).max())


def test_relu_in_the_kernel_keeps_nan_as_the_other_kernels_do(rng):
    xpad = rng.standard_normal((1, 1, 3, 18)).astype(np.float32)
    xpad[0, 0, 1, 5] = np.nan
    y = ops.conv_direct.with_kernel(xpad, np.ones((4, 1, 3, 3), np.float32), None, True)
    assert np.isnan(y[:, 0, 0, 3:6]).all() and (y[~np.isnan(y)] >= 0).all()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ops.conv_direct.reference(xpad, np.ones((4, 1, 3, 3), np.float32),
                                                                          None, True)))


def test_other_widths_and_float64_go_to_the_references(rng):
    xpad = rng.standard_normal((1, 2, 5, 20)).astype(np.float32)  # outputs 18 wide
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(ops.conv_direct.with_kernel(xpad, w, None), ops.conv_direct.reference(xpad, w, None))
    x64 = rng.standard_normal((1, 2, 5, 18))
    w64 = rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_array_equal(ops.conv_direct.with_kernel(x64, w64, None), ops.conv_direct.reference(x64, w64, None))
    with pytest.raises(ValueError, match=r"conv_direct: w must be float32 \(F, 2, kh, kw\), got float32 \(3, 4, 3, 3\)"):
        ops.conv_direct.with_kernel(xpad[:, :, :, :18], np.ones((3, 4, 3, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"conv_direct: b must be float32 \(3,\), got float32 \(4,\)"):
        ops.conv_direct.with_kernel(xpad[:, :, :, :18], w, np.ones(4, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,padding", [((2, 3, 5, 7), (1, 1)), ((1, 2, 4, 16), (0, 2)), ((3, 1, 1, 1), (3, 0)),
                                           ((1, 1, 2, 3), (0, 0))])
def test_pad_images_equals_numpy_pad(shape, padding, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    (ph, pw) = padding
    got = ops.pad_images.with_kernel(x[:, :, :, ::-1], padding)  # a strided view, copied once
    np.testing.assert_array_equal(got, np.pad(x[:, :, :, ::-1], ((0, 0), (0, 0), (ph, ph), (pw, pw))))
    assert got.dtype == dtype


# --------------------------------------------------------------------------- the layer

GEOMETRIES = [  # (N, C, H, W), F, kernel, padding: outputs 16 or 32 wide, and some that are not (references)
    ((2, 3, 6, 16), 4, 3, 1),
    ((2, 2, 5, 18), 3, 3, 0),
    ((1, 3, 7, 16), 2, (3, 5), (1, 2)),
    ((2, 2, 6, 9), 3, 5, 2),
]


@pytest.mark.parametrize("shape,f,k,p", GEOMETRIES)
def test_gradient_check_float64(shape, f, k, p, rng):
    """float64 runs the references, through the direct path's own steps (dx as the flipped convolution)."""
    layer = gn.nn.Conv2d(shape[1], f, k, padding=p, algorithm="direct", rng=int(rng.integers(1 << 30)))
    assert check_layer(layer.to("float64"), rng.standard_normal(shape), seed=int(rng.integers(1 << 30))) < 1e-7


@pytest.mark.parametrize("act", [None, gn.nn.ReLU, gn.nn.Tanh])
@pytest.mark.parametrize("shape,f,k,p", [((4, 8, 16, 32), 6, 3, 1), ((3, 3, 20, 16), 8, 5, 2), ((4, 5, 12, 18), 4, 3, 0)])
def test_float32_layer_matches_pytorch(shape, f, k, p, act, rng):
    """Sizes where the kernels run (the padded input is over the kernels' size threshold)."""
    torch = pytest.importorskip("torch")
    layer = gn.nn.Conv2d(shape[1], f, k, padding=p, algorithm="direct", rng=3)
    layer.b.data += np.linspace(-1, 1, f, dtype=np.float32)
    a = None if act is None else act()
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer.forward_fused(x, a)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward_fused(dout, a)
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, layer.W.data, layer.b.data))
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=p)
    yt = {None: yt, gn.nn.ReLU: torch.relu(yt), gn.nn.Tanh: torch.tanh(yt)}[act]
    yt.backward(torch.from_numpy(dout))
    for ours, theirs in ((y, yt), (dx, xt.grad), (layer.W.grad, wt.grad), (layer.b.grad, bt.grad)):
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(theirs).max()))


@pytest.mark.parametrize("shape,kwargs,dtype,want", [
    ((2, 8, 32, 32), dict(kernel_size=3, padding=1), "float32", "direct"),
    ((2, 3, 32, 32), dict(kernel_size=7, padding=3), "float32", "direct"),
    ((2, 8, 16, 18), dict(kernel_size=3, padding=0), "float32", "direct"),  # outputs 16 wide
    ((2, 8, 8, 8), dict(kernel_size=3, padding=1), "float32", "im2col"),  # outputs 8 wide
    ((2, 8, 32, 32), dict(kernel_size=3, padding=1), "float64", "im2col"),
    ((2, 8, 32, 32), dict(kernel_size=3, stride=2, padding=1), "float32", "im2col"),
    ((2, 8, 32, 32), dict(kernel_size=3, padding=3), "float32", "im2col"),  # padding not below the kernel
])
def test_auto_picks_direct_where_its_kernel_runs(shape, kwargs, dtype, want):
    layer = gn.nn.Conv2d(shape[1], 4, **kwargs).to(dtype)
    assert layer.algorithm_for(shape) == want
    with ops.use_kernels(False):
        assert layer.algorithm_for(shape) == "im2col"


def test_direct_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match=r"algorithm='direct' needs stride 1 and padding below the kernel size, "
                                         r"got stride=\(2, 2\)"):
        gn.nn.Conv2d(2, 2, 3, stride=2, algorithm="direct")
    with pytest.raises(ValueError, match=r"padding=\(3, 3\), kernel_size=\(3, 3\)"):
        gn.nn.Conv2d(2, 2, 3, padding=3, algorithm="direct")
