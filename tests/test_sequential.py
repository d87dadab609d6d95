"""Sequential: fusion runs only where it is the same computation; a model's backward skips the data's gradient."""

import numpy as np
import pytest

import gpunn as gn
from gpunn.gradcheck import check_layer, check_model


class DoubledReLU(gn.nn.ReLU):
    """A user's gate with a wrong backward: its gradient is twice the true one."""

    def backward(self, dout, input_grad=True):
        return super().backward(dout, input_grad) * 2


class Square(gn.nn.Activation):
    """A user's own activation, x^2, written as a gate (cs231n's backward(dout) signature)."""

    def forward(self, x):
        x = self._input(x)
        self._cache = x
        return x * x

    def backward(self, dout):
        x = self._saved()
        return 2 * x * self._upstream(dout, x.shape)


class ShiftedLinear(gn.nn.Linear):
    """A Linear whose forward adds 1 to its output (and whose backward is Linear's)."""

    def forward(self, x):
        return super().forward(x) + 1


def net(*middle, fuse=True):
    return gn.nn.Sequential(gn.nn.Linear(5, 7, rng=0), *middle, gn.nn.Linear(7, 3, rng=1), fuse=fuse).to("float64")


def test_a_subclass_with_a_wrong_backward_is_caught_by_check_model(rng):
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    loss = gn.nn.SoftmaxCrossEntropy()
    assert check_model(net(gn.nn.ReLU()), loss, X, y) < 1e-6
    for fuse in (True, False):
        assert check_model(net(DoubledReLU(), fuse=fuse), loss, X, y) > 0.1


def test_a_users_activation_is_applied_inside_sequential(rng):
    X = rng.standard_normal((6, 5))
    model = net(Square())
    lin0, lin1 = model[0], model[2]
    expected = (X @ lin0.W.data + lin0.b.data) ** 2 @ lin1.W.data + lin1.b.data
    np.testing.assert_allclose(gn.to_numpy(model.forward(X)), expected, rtol=1e-12)
    assert check_model(model, gn.nn.SoftmaxCrossEntropy(), X, rng.integers(0, 3, 6)) < 1e-6


def test_a_linear_subclass_runs_its_own_forward(rng):
    X = rng.standard_normal((4, 5))
    model = gn.nn.Sequential(ShiftedLinear(5, 7, rng=0), gn.nn.ReLU()).to("float64")
    lin = model[0]
    np.testing.assert_allclose(gn.to_numpy(model.forward(X)), np.maximum(X @ lin.W.data + lin.b.data + 1, 0))


def test_only_builtin_pairs_are_fused():
    fused = [act is not None for _, _, act in net(gn.nn.Tanh())._steps()]
    assert fused == [True, False]
    for custom in (DoubledReLU(), Square()):
        assert [act for _, _, act in net(custom)._steps()] == [None, None, None]

    class RenamedReLU(gn.nn.ReLU):  # no pass overridden: still exactly ReLU, so it may fuse
        pass

    assert net(RenamedReLU())._steps()[0][2] is not None


def test_model_backward_skips_the_data_gradient_unless_asked(rng):
    X, y = rng.standard_normal((5, 5)), rng.integers(0, 3, 5)
    loss = gn.nn.SoftmaxCrossEntropy()
    model = net(gn.nn.ReLU())
    loss.forward(model.forward(X), y)
    assert model.backward(loss.backward()) is None
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss.forward(model.forward(X), y)
    dx = model.backward(loss.backward(), input_grad=True)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)
    # the input gradient, against the chain rule written out
    lin0, lin1 = model[0], model[2]
    z = X @ lin0.W.data + lin0.b.data
    ds = gn.to_numpy(loss.backward())
    np.testing.assert_allclose(dx, ((ds @ lin1.W.data.T) * (z > 0)) @ lin0.W.data.T, rtol=1e-12)


def test_single_gates_keep_returning_dx(rng):
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 7))
    lin = gn.nn.Linear(5, 7, rng=0).to("float64")
    lin.forward(x)
    np.testing.assert_allclose(lin.backward(dout), dout @ lin.W.data.T)


@pytest.mark.parametrize("middle", [gn.nn.ReLU, Square, DoubledReLU])
def test_nested_sequential_passes_gradients_through(middle, rng):
    inner = gn.nn.Sequential(gn.nn.Linear(7, 7, rng=2), middle())
    outer = net(gn.nn.Tanh(), inner)
    X = rng.standard_normal((6, 5))
    error = check_layer(outer, X)
    assert (error > 0.1) if middle is DoubledReLU else (error < 1e-6)


def test_a_convolution_and_its_relu_fuse_and_equal_the_two_gates(rng):
    x = rng.standard_normal((3, 2, 7, 7))
    fused = gn.nn.Sequential(gn.nn.Conv2d(2, 4, 3, padding=1, rng=0), gn.nn.ReLU()).to("float64")
    plain = gn.nn.Sequential(gn.nn.Conv2d(2, 4, 3, padding=1, rng=0), gn.nn.ReLU(), fuse=False).to("float64")
    assert fused._steps()[0][2] is not None and plain._steps()[0][2] is None
    np.testing.assert_allclose(gn.to_numpy(fused.forward(x)), gn.to_numpy(plain.forward(x)), rtol=1e-12)
    dout = rng.standard_normal((3, 4, 7, 7))
    dx_f, dx_p = fused.backward(dout, input_grad=True), plain.backward(dout, input_grad=True)
    np.testing.assert_allclose(dx_f, dx_p, rtol=1e-12, atol=1e-14)
    for a, b in zip(fused.parameters(), plain.parameters()):
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-14)
