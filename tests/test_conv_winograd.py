"""Conv2d's Winograd F(2x2, 3x3) path: against the naive loop, PyTorch and float64 gradients; its kernels against
the xp references; chunking, buffers kept between calls, the "auto" choice and bad arguments."""

import copy
import pickle

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops
from gpunn.gradcheck import check_layer
from gpunn.kernels import bindings
from gpunn.kernels.bindings import Target, make_bindings
from gpunn.nn import conv as conv_module
from test_conv import naive_conv

GEOMETRIES = [  # (N, C, H, W), F, padding: odd and even sizes, outputs cut mid-tile, no padding, wide padding
    ((2, 3, 7, 6), 4, 1),
    ((1, 2, 5, 9), 3, (1, 0)),
    ((3, 2, 6, 6), 2, 0),
    ((2, 1, 3, 4), 2, 2),
    ((1, 2, 3, 3), 3, 0),  # a single output pixel: one tile, three quarters of it cropped
]


def winograd(c, f, padding, **kwargs):
    return gn.nn.Conv2d(c, f, 3, padding=padding, algorithm="winograd", **kwargs)


@pytest.mark.parametrize("shape,f,p", GEOMETRIES)
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_check(shape, f, p, bias, device, rng):
    layer = winograd(shape[1], f, p, bias=bias, rng=int(rng.integers(1 << 30))).to(device)
    assert check_layer(layer, rng.standard_normal(shape), seed=int(rng.integers(1 << 30))) < 1e-7


@pytest.mark.parametrize("shape,f,p", GEOMETRIES)
def test_matches_the_naive_loop(shape, f, p, device, rng):
    layer = winograd(shape[1], f, p, rng=0).to(device, "float64")
    layer.b.data = device.asarray(rng.standard_normal(f))
    x = rng.standard_normal(shape)
    pad = p if isinstance(p, tuple) else (p, p)
    want = naive_conv(x, gn.to_numpy(layer.W.data), gn.to_numpy(layer.b.data), (1, 1), pad)
    np.testing.assert_allclose(gn.to_numpy(layer.forward(x)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,f,p", GEOMETRIES)
def test_matches_pytorch_forward_and_backward(shape, f, p, rng):
    torch = pytest.importorskip("torch")
    layer = winograd(shape[1], f, p, rng=0).to("float64")
    layer.b.data = rng.standard_normal(f)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    dout = rng.standard_normal(y.shape)
    dx = layer.backward(dout)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.W.data, layer.b.data))
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=p)
    yt.backward(torch.from_numpy(dout))
    for ours, theirs in ((y, yt), (dx, xt.grad), (layer.W.grad, wt.grad), (layer.b.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_float32_rounding_is_that_of_im2col(rng):
    """Against float64, Winograd's float32 results are off by about as much as im2col's (measured: within 4x)."""
    x, dout = rng.standard_normal((4, 32, 16, 16)), rng.standard_normal((4, 24, 16, 16))
    exact = gn.nn.Conv2d(32, 24, 3, padding=1, rng=5, algorithm="im2col").to("float64")
    want = [exact.forward(x), exact.backward(dout), exact.W.grad, exact.b.grad]
    errors = {}
    for algorithm in ("im2col", "winograd"):
        layer = gn.nn.Conv2d(32, 24, 3, padding=1, rng=5, algorithm=algorithm)
        got = [layer.forward(x.astype(np.float32)), layer.backward(dout.astype(np.float32)), layer.W.grad, layer.b.grad]
        assert all(g.dtype == np.float32 for g in got)
        errors[algorithm] = [np.abs(g - w).max() / np.abs(w).max() for g, w in zip(got, want)]
    assert max(errors["winograd"]) < 1e-5
    for ours, theirs in zip(errors["winograd"], errors["im2col"]):
        assert ours < 8 * theirs + 1e-7


@pytest.mark.parametrize("act", [None, gn.nn.ReLU, gn.nn.Tanh, lambda: gn.nn.ELU(0.5)])
def test_algorithms_agree_with_and_without_a_fused_activation(act, device, rng):
    x, dout = rng.standard_normal((3, 16, 9, 10)), rng.standard_normal((3, 8, 9, 10))
    outs = []
    for algorithm in ("im2col", "winograd"):
        layer = gn.nn.Conv2d(16, 8, 3, padding=1, rng=2, algorithm=algorithm).to(device, "float64")
        layer.b.data += device.asarray(np.linspace(-1, 1, 8))
        a = None if act is None else act().to(device, "float64")
        y = layer.forward_fused(x, a)
        dx = layer.backward_fused(dout, a)
        outs.append([gn.to_numpy(v) for v in (y, dx, layer.W.grad, layer.b.grad)])
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_chunks_and_buffers_kept_between_calls_change_nothing(rng, monkeypatch):
    """Chunks of two images and a smaller last one, later batches through the same kept buffers, an evaluation
    forward (which keeps nothing) between two steps: every result equals a fresh one-chunk layer's."""
    batches = [rng.standard_normal((5, 4, 8, 7)) for _ in range(2)] + [rng.standard_normal((3, 4, 8, 7))]
    douts = [rng.standard_normal((len(x), 6, 8, 7)) for x in batches]

    def run(layer, x, dout, eval_first=False):
        if eval_first:
            layer.eval()
            layer.forward(rng.standard_normal(x.shape))
            layer.train()
        layer.zero_grad()
        y = layer.forward(x).copy()
        return y, layer.backward(dout), layer.W.grad.copy(), layer.b.grad.copy()

    fresh = []
    for x, dout in zip(batches, douts):
        fresh.append(run(winograd(4, 6, 1, rng=7).to("float64"), x, dout))
    monkeypatch.setattr(conv_module, "WINOGRAD_TILES", 2 * 16)  # two images (4 x 4 tiles each) per chunk
    layer = winograd(4, 6, 1, rng=7).to("float64")
    assert [len(range(5)[s]) for s in layer._chunks(batches[0], winograd=True)] == [2, 2, 1]
    for i, (x, dout) in enumerate(zip(batches, douts)):
        got = run(layer, x, dout, eval_first=(i == 1))
        for a, b in zip(got, fresh[i]):  # dW and db add up chunk by chunk: other rounding
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


@pytest.mark.parametrize("algorithm", ["winograd", "im2col"])
def test_kept_buffers_are_not_pickled_and_a_move_drops_them(algorithm, rng, monkeypatch):
    layer = gn.nn.Conv2d(3, 4, 3, padding=1, rng=1, algorithm=algorithm)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    layer.forward(x)
    assert not layer._scratch  # small work arrays are not kept (KEEP_BYTES)
    monkeypatch.setattr(conv_module, "KEEP_BYTES", 0)
    y = layer.forward(x)
    assert layer._scratch
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert clone._scratch == {}
        np.testing.assert_array_equal(clone.forward(x), y)
    layer.to("float64")
    assert layer._scratch == {}
    np.testing.assert_allclose(layer.forward(x), y, rtol=1e-5, atol=1e-5)


def test_auto_never_picks_winograd():
    """Winograd measured slower on the CPU (gpunn/nn/conv.py has the figures): only asked for, it runs."""
    shape = (2, 32, 32, 32)
    assert gn.nn.Conv2d(32, 64, 3, padding=1).algorithm_for(shape) in ("direct", "im2col")
    assert gn.nn.Conv2d(32, 64, 3, padding=1, algorithm="winograd").algorithm_for(shape) == "winograd"
    assert "algorithm='winograd'" in repr(gn.nn.Conv2d(32, 64, 3, algorithm="winograd"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=5, algorithm="winograd"), r"algorithm='winograd' needs a 3x3 kernel and stride 1, got "
                                                r"kernel_size=\(5, 5\)"),
    (dict(kernel_size=3, stride=2, algorithm="winograd"), r"stride=\(2, 2\)"),
    (dict(kernel_size=3, algorithm="fft"), r"algorithm must be one of \('auto', 'direct', 'im2col', 'winograd'\), got 'fft'"),
])
def test_bad_algorithms_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gn.nn.Conv2d(2, 2, **kwargs)


# --------------------------------------------------------------------------- the ops and their CPU kernels

CASES = [((2, 3, 7, 6), (1, 1)), ((1, 2, 5, 9), (1, 0)), ((3, 2, 6, 6), (0, 0)), ((2, 1, 3, 4), (2, 2))]
REF = {name: getattr(ops, name).reference for name in ops.KERNEL_OPS}
CPU = make_bindings(Target("cpu"), REF, min_size=0)  # no size threshold: every case runs a kernel


@pytest.fixture
def poisoned(monkeypatch):
    """Every array a binding allocates starts as NaN, so an element a kernel never writes shows up."""
    def tile_buffer(like, k, tiles, dtype=None):
        out = ops.winograd_buffer(like, k, tiles, dtype)
        out[...] = np.nan
        return out

    monkeypatch.setattr(bindings, "winograd_buffer", tile_buffer)
    monkeypatch.setattr(bindings, "_empty", lambda like, shape, dtype: np.full(shape, np.nan, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,padding", CASES)
def test_transform_kernels_equal_the_references(shape, padding, dtype, rng, poisoned):
    x = rng.standard_normal(shape).astype(dtype)
    f = 4
    ho, wo = shape[2] + 2 * padding[0] - 2, shape[3] + 2 * padding[1] - 2
    v = CPU["winograd_input"](x, padding)
    np.testing.assert_array_equal(v, REF["winograd_input"](x, padding))
    dv = rng.standard_normal(v.shape).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(CPU["winograd_input_backward"](dv, shape, padding),
                               REF["winograd_input_backward"](dv, shape, padding), **tol)
    m = rng.standard_normal((16, f, v.shape[2])).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    for kind in ("identity", "relu", "sigmoid"):
        out, ref = np.full((shape[0], f, ho, wo), np.nan, dtype), np.full((shape[0], f, ho, wo), np.nan, dtype)
        CPU["winograd_output"](m, b, out, kind)
        REF["winograd_output"](m, b, ref, kind)
        np.testing.assert_allclose(out, ref, **tol)
        g = rng.standard_normal(out.shape).astype(dtype)
        for got, want in zip(CPU["winograd_output_backward"](g, out, kind),
                             REF["winograd_output_backward"](g, out, kind)):
            np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("impl", [CPU, REF], ids=["kernels", "references"])
def test_transforms_are_each_others_adjoints(impl, rng):
    """<input(x), dV> = <x, input_backward(dV)> and <output(M), g> = <M, output_backward(g)>: the backward
    transforms are the transposes of the forward ones (float64)."""
    x = rng.standard_normal((3, 4, 9, 8))
    v = impl["winograd_input"](x, (1, 1))
    dv = rng.standard_normal(v.shape)
    assert np.vdot(v, dv) == pytest.approx(np.vdot(x, impl["winograd_input_backward"](dv, x.shape, (1, 1))))
    m = rng.standard_normal((16, 5, v.shape[2]))
    out = np.empty((3, 5, 9, 8))
    impl["winograd_output"](m, None, out, "identity")
    g = rng.standard_normal(out.shape)
    dm, db = impl["winograd_output_backward"](g, None, "identity")
    assert np.vdot(out, g) == pytest.approx(np.vdot(m, dm))
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)))


def test_out_arrays_are_checked(rng):
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)  # 4 x 4 tiles per image
    with pytest.raises(ValueError, match=r"winograd_input: out must be a float32 tile array of shape \(16, 4, 32\)"):
        CPU["winograd_input"](x, (1, 1), out=np.empty((16, 4, 32), np.float64))
    v = CPU["winograd_input"](x, (1, 1), out=ops.winograd_buffer(x, 4, 32))
    np.testing.assert_array_equal(v, REF["winograd_input"](x, (1, 1)))
    strided = np.empty((16, 4, 64), np.float32)[:, :, ::2]  # not rows of (k, tiles) matrices: copied, same result
    strided[...] = v
    np.testing.assert_allclose(CPU["winograd_input_backward"](strided, x.shape, (1, 1)),
                               REF["winograd_input_backward"](v, x.shape, (1, 1)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"winograd_input_backward: dV has shape \(16, 4, 10\)"):
        CPU["winograd_input_backward"](np.zeros((16, 4, 10), np.float32), x.shape, (1, 1))


@pytest.mark.cuda
def test_cpu_and_cuda_agree(rng):
    if not gn.cuda_available():
        pytest.skip("no usable CUDA GPU")
    x, dout = rng.standard_normal((4, 16, 12, 11)), rng.standard_normal((4, 8, 12, 11))
    outs = []
    for dev in ("cpu", "cuda"):
        layer = winograd(16, 8, 1, rng=3).to(dev)
        relu = gn.nn.ReLU().to(dev)
        y = layer.forward_fused(x, relu)
        dx = layer.backward_fused(dout, relu)
        outs.append([gn.to_numpy(a) for a in (y, dx, layer.W.grad, layer.b.grad)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
