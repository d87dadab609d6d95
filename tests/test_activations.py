"""Every activation gate in the registry (gpunn/nn/activations.py), on every device: its gradient against float64
finite differences, and its fused step with a Linear layer against the two gates one after the other.

A gate added to the registry is tested here without a line changed."""

import numpy as np
import pytest
from conftest import away_from_zero

import gpunn as gn
from gpunn.gradcheck import check_layer

GATES = sorted(name for name in gn.nn.ACTIVATIONS if name != "identity")


@pytest.mark.parametrize("name", GATES)
def test_gate_passes_a_gradient_check(name, device, rng):
    gate = gn.nn.ACTIVATIONS[name]().to(device)
    x = away_from_zero(rng, (5, 6), margin=0.05) * 2  # off the ReLU family's kink at 0
    assert check_layer(gate, x, seed=int(rng.integers(1 << 30))) < 1e-7


@pytest.mark.parametrize("name", GATES)
def test_linear_then_the_gate_fused_equals_the_two_gates(name, device, rng):
    x = rng.standard_normal((37, 12)).astype(np.float32)
    dout = rng.standard_normal((37, 9)).astype(np.float32)
    results = []
    for fuse in (True, False):
        model = gn.nn.Sequential(gn.nn.Linear(12, 9, rng=3), gn.nn.ACTIVATIONS[name](), fuse=fuse).to(device)
        with device:
            model.layers[0].b.data += device.asarray(np.linspace(-1, 1, 9, dtype=np.float32))
        assert (model._steps()[0][2] is not None) == fuse
        y = model.forward(x)
        dx = model.backward(dout, input_grad=True)
        results.append([gn.to_numpy(a) for a in (y, dx, model.layers[0].W.grad, model.layers[0].b.grad)])
    for fused, apart, what in zip(*results, ("y", "dx", "dW", "db")):
        np.testing.assert_allclose(fused, apart, rtol=1e-5, atol=1e-5, err_msg=f"{name} {what}")


def test_gelu_is_the_tanh_form_of_x_phi_x(rng):
    x = rng.standard_normal(1000) * 3
    c = np.sqrt(2 / np.pi)
    expected = 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gn.nn.GELU().to("float64").forward(x[None]), expected[None], rtol=1e-12, atol=1e-15)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy()
    np.testing.assert_allclose(expected, theirs, rtol=1e-12, atol=1e-15)


def test_a_gate_whose_backward_needs_its_input_runs_apart_after_a_convolution(rng):
    """The convolution's epilogue backward reads the activation's output; GELU's needs its input."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    conv, gelu = gn.nn.Conv2d(3, 4, 3, padding=1, rng=1), gn.nn.GELU()
    y = conv.forward_fused(x, gelu)
    np.testing.assert_allclose(y, gn.nn.GELU().forward(gn.nn.Conv2d(3, 4, 3, padding=1, rng=1).forward(x)), rtol=1e-6)
    assert conv.backward_fused(np.ones_like(y), gelu).shape == x.shape


def test_silu_is_x_sigmoid_x(rng):
    x = rng.standard_normal(1000) * 6
    expected = x / (1 + np.exp(-x))
    gate = gn.nn.SiLU().to("float64")
    np.testing.assert_allclose(gate.forward(x[None]), expected[None], rtol=1e-13, atol=1e-15)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(gate.backward(np.ones((1, 1000))), (s * (1 + x * (1 - s)))[None], rtol=1e-12, atol=1e-15)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(expected, torch.nn.functional.silu(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-15)
