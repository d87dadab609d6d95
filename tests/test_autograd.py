"""gpunn.autograd: worked examples, every gate against float64 numerical gradients and PyTorch, the engine bridge."""

import gc
import weakref

import numpy as np
import pytest

import gpunn as gn
from gpunn import autograd as ag
from gpunn.gradcheck import check_expression, check_layer, check_loss

from conftest import away_from_zero


# --------------------------------------------------------------------------- the lecture's worked examples


def test_add_then_multiply_worked_example():
    x, y, z = ag.tensor(-2.0), ag.tensor(5.0), ag.tensor(-4.0)
    f = (x + y) * z
    assert float(f.data) == -12.0
    f.backward()
    assert (float(x.grad), float(y.grad), float(z.grad)) == (-4.0, -4.0, 3.0)


def test_neuron_worked_example_to_the_printed_digit():
    a, b, c, x, y = (ag.tensor(v, dtype="float64") for v in (1.0, 2.0, -3.0, -1.0, 3.0))
    f = ag.sigmoid(a * x + b * y + c)
    f.backward()
    assert round(float(f.data), 4) == 0.8808
    got = [round(float(t.grad), 3) for t in (a, b, c, x, y)]
    assert got == [-0.105, 0.315, 0.105, 0.105, 0.210]
    # the same neuron with the sigmoid spelled as gates: 1 / (1 + e^-s)
    s = a * x + b * y + c
    g = 1 / (1 + ag.exp(-s))
    for t in (a, b, c, x, y):
        t.grad = None
    g.backward()
    assert float(g.data) == pytest.approx(float(f.data), rel=1e-12)
    assert [round(float(t.grad), 3) for t in (a, b, c, x, y)] == got


def test_a_branch_sums_and_gradients_accumulate():
    w = ag.tensor(3.0)
    f = w * w + w  # w feeds three edges: 3 + 3 + 1
    f.backward()
    assert float(w.grad) == 7.0
    f.backward()  # a second pass adds, it does not double intermediate gradients
    assert float(w.grad) == 14.0


# --------------------------------------------------------------------------- every gate, against references

GATES = {
    "add/sub/mul/div with broadcasting": (lambda a, b, c: ((a + b) * c - a / (c * c + 1)).sum(), [(3, 4), (4,), (3, 1)]),
    "neg, pow and mean": (lambda a, b, c: (-(a ** 3) + (b ** 2) * 0.5).mean(axis=0) * c[0, 0], [(3, 4), (4,), (3, 1)]),
    "matmul, transpose, exp, log": (lambda a, b, c: ag.log(ag.exp(a @ b.T) + 1.0) @ c, [(3, 4), (5, 4), (5, 2)]),
    "matmul with 1-D operands": (lambda a, b, c: (a @ b)[:2] * (b @ c) + b @ (c @ c[0]), [(4, 3), (3,), (3, 2)]),
    "maximum routes, relu passes": (lambda a, b, c: ag.maximum(a, b) * ag.relu(c) + ag.maximum(2.0, a),
                                    [(3, 4), (3, 4), (3, 4)]),
    "sigmoid and tanh": (lambda a, b, c: ag.sigmoid(a) * ag.tanh(b + c), [(2, 3), (2, 3), (3,)]),
    "sum over axes, keepdims": (lambda a, b, c: a.sum(axis=1, keepdims=True) * b.sum(axis=(0, 2)) + c.sum(),
                                [(3, 4), (2, 3, 4), (2,)]),
    "max over an axis": (lambda a, b, c: a.max(axis=1) + b.max() * c, [(3, 5), (2, 2), (3,)]),
    "reshape and transpose": (lambda a, b, c: a.reshape(2, 6).T.reshape(-1) * b.reshape(12)
                              + c.transpose(1, 0, 2).sum(axis=(0, 1)),
                              [(3, 4), (4, 3), (2, 3, 12)]),
    "basic slicing": (lambda a, b, c: a[1:, ::2] * b[0] + c[..., 1:3], [(3, 4), (3, 2), (2, 2, 3)]),
    "index arrays (a row picked twice)": (lambda a, b, c: a[[0, 2, 0], [1, 1, 1]] * b + c[:, None],
                                          [(3, 4), (3,), (3,)]),
}


@pytest.mark.parametrize("name", list(GATES))
def test_every_gate_against_float64_numerical_gradients(name, rng):
    f, shapes = GATES[name]
    inputs = [away_from_zero(rng, s, margin=0.05) for s in shapes]
    if "max" in name:
        inputs = [x + 1e-3 * rng.permutation(x.size).reshape(x.shape) for x in inputs]  # no ties
    assert check_expression(f, *inputs, seed=int(rng.integers(1000))) < 1e-7


# Smooth gates for random expressions (ReLU and max have kinks, where finite differences are wrong;
# they are checked above on inputs kept away from them). Every result broadcasts against (3, 4).
SMOOTH = [
    (2, lambda a, b: a + b), (2, lambda a, b: a - b), (2, lambda a, b: a * b),
    (2, lambda a, b: a / (b * b + 1.0)), (1, lambda a: -a), (1, lambda a: a ** 2),
    (1, lambda a: ag.exp(ag.tanh(a))), (1, lambda a: ag.log(a * a + 1.0)), (1, ag.sigmoid), (1, ag.tanh),
    (1, lambda a: a.sum(axis=-1, keepdims=True) if a.ndim else a), (1, lambda a: a.mean()),
    (1, lambda a: a[..., :1] if a.ndim else a), (1, lambda a: a.reshape(a.shape)),
]


def _random_program(rng, n_inputs: int, steps: int):
    """A random expression as a list of (gate index, argument indices into the values so far)."""
    program, n = [], n_inputs
    for _ in range(steps):
        g = int(rng.integers(len(SMOOTH)))
        program.append((g, [int(rng.integers(n)) for _ in range(SMOOTH[g][0])]))
        n += 1
    return program


def _execute(program, *inputs):
    values = list(inputs)
    for g, args in program:
        values.append(SMOOTH[g][1](*[values[i] for i in args]))
    out = values[len(inputs)]
    for v in values[len(inputs) + 1:]:  # every node feeds the output: no dead branches
        out = out + v
    return out


def test_random_composite_expressions_against_numerical_gradients(rng):
    shapes = [(3, 4), (4,), (3, 1), (1, 4), ()]
    for _ in range(15):
        inputs = [rng.standard_normal(shapes[int(i)]) for i in rng.integers(0, len(shapes), 3)]
        program = _random_program(rng, len(inputs), int(rng.integers(3, 10)))
        error = check_expression(lambda *t: _execute(program, *t), *inputs, seed=int(rng.integers(1000)))
        assert error < 1e-6, (program, [x.shape for x in inputs])


def test_a_wrong_gradient_is_caught(rng):
    class BadTanh(ag.Gate):  # the local gradient 1 - y instead of 1 - y^2
        label = "badtanh"

        def forward(self, x):
            self.y = np.tanh(x)
            return self.y

        def backward(self, gy):
            return (gy * (1 - self.y),)

    assert check_expression(lambda a: BadTanh()(a).sum(), rng.standard_normal((3, 3))) > 1e-2


def _composite(a, b, c, lib):
    """One expression using every gate, written for gpunn.autograd (lib=ag) or PyTorch (lib=torch)."""
    h = lib.tanh(a @ b + c)                                    # (4, 5): matmul, broadcast add, tanh
    p = lib.sigmoid(h[:, 1:4]) * lib.relu(h[:, :3])            # slicing, sigmoid, relu
    q = lib.maximum(p, p.T.T * 0.5) / (1 + lib.exp(-h.mean(axis=1, keepdims=True)))
    r = lib.log(1 + q ** 2).sum(axis=0) - (-c[:3]) * 2        # pow, log, sum, unary minus
    outer = r.reshape(3, 1) @ r.reshape(1, 3)
    row_max = outer.max(axis=1) if lib is ag else outer.amax(dim=1)  # torch's max(dim) also returns indices
    return row_max.sum() + h.max()


def test_a_composite_expression_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,))]
    ours = [ag.tensor(x, dtype="float64") for x in arrays]
    theirs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in arrays]
    f = _composite(*ours, ag)
    f.backward()
    ft = _composite(*theirs, torch)
    ft.backward()
    assert float(f.data) == pytest.approx(ft.item(), rel=1e-12)
    for t, tt in zip(ours, theirs):
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_gradients_stay_float32_and_match_float64(rng):
    arrays = [rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,))]
    f32 = [ag.tensor(x, dtype="float32") for x in arrays]
    f64 = [ag.tensor(x, dtype="float64") for x in arrays]
    _composite(*f32, ag).backward()
    _composite(*f64, ag).backward()
    for a, b in zip(f32, f64):
        assert a.grad.dtype == np.float32
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_jacobian_from_backward_passes_equals_the_numerical_one(rng):
    W = ag.tensor(rng.standard_normal((3, 4)), dtype="float64")
    f = lambda x: ag.tanh(W @ x) * x[:3]  # noqa: E731  (R^4 -> R^3)
    x = rng.standard_normal(4)
    J = ag.jacobian(f, x)
    assert J.shape == (3, 4)
    np.testing.assert_allclose(J, ag.numerical_jacobian(f, x), rtol=1e-7, atol=1e-9)
    # for an elementwise sigmoid the Jacobian is diagonal with y (1 - y)
    y = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(ag.jacobian(ag.sigmoid, ag.tensor(x, dtype="float64")), np.diag(y * (1 - y)), rtol=1e-12)


def test_generation_order_on_a_diamond(rng):
    # x -> a -> (b, c) -> d: a's gradient must be complete before it flows to x
    x = ag.tensor(rng.standard_normal(3), dtype="float64")
    a = ag.tanh(x)
    d = (ag.exp(a) * a.sum() + a * a).sum()
    d.backward()
    J = ag.numerical_jacobian(lambda t: (ag.exp(ag.tanh(t)) * ag.tanh(t).sum() + ag.tanh(t) ** 2).sum(), x)
    np.testing.assert_allclose(x.grad, J, rtol=1e-7)


def test_no_grad_records_nothing_and_the_graph_has_no_cycles():
    x = ag.tensor(2.0)
    with ag.no_grad():
        y = x * 3
    assert y.creator is None and float(y.data) == 6.0
    gc.disable()
    try:
        z = x * x
        gate, out = weakref.ref(z.creator), weakref.ref(z)
        del z  # no reference cycle: plain reference counting frees the output and its gate
        assert out() is None and gate() is None
    finally:
        gc.enable()


def test_each_grad_is_its_own_writable_array(rng):
    x, y = ag.tensor(rng.standard_normal((2, 3))), ag.tensor(rng.standard_normal(3))
    g = rng.standard_normal((2, 3))
    s = (x + y).reshape(6)  # add hands one array to both inputs; reshape and sum_to make views
    s.backward(g.reshape(6))
    assert x.grad is not y.grad and not np.shares_memory(x.grad, g) and not np.shares_memory(s.grad, g)
    for t in (x, y, s):
        assert t.grad.flags.writeable
    x.grad += 1  # changes x's gradient only
    np.testing.assert_array_equal(y.grad, g.sum(axis=0))
    np.testing.assert_array_equal(x.grad, g + 1)


def test_upstream_gradient_for_a_vector_output(rng):
    x = ag.tensor(rng.standard_normal(4), dtype="float64")
    y = x * x
    g = rng.standard_normal(4)
    y.backward(g)
    np.testing.assert_allclose(x.grad, 2 * x.data * g)


# --------------------------------------------------------------------------- bad input


def test_backward_on_a_non_scalar_needs_an_upstream_gradient():
    y = ag.tensor(np.ones((2, 3))) * 2
    with pytest.raises(ValueError, match=r"non-scalar output of shape \(2, 3\) needs an upstream gradient"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), the output has shape \(2, 3\)"):
        y.backward(np.ones(3))


@pytest.mark.parametrize("expr,message", [
    (lambda a, b: a + b, r"'\+' gate cannot take inputs of shape \(2, 3\) and \(4,\)"),
    (lambda a, b: a * b, r"'\*' gate cannot take inputs of shape \(2, 3\) and \(4,\)"),
    (lambda a, b: a @ b, r"'@' gate cannot take inputs of shape \(2, 3\) and \(4,\)"),
    (lambda a, b: a.reshape(5), r"'reshape' gate cannot take inputs of shape \(2, 3\)"),
    (lambda a, b: a[5], r"'\[ \]' gate cannot take inputs of shape \(2, 3\)"),
])
def test_shape_mismatch_names_the_gate_and_the_shapes(expr, message):
    a, b = ag.tensor(np.ones((2, 3))), ag.tensor(np.ones(4))
    with pytest.raises(ValueError, match=message):
        expr(a, b)


def test_other_bad_input():
    x = ag.tensor(1.0)
    with pytest.raises(TypeError, match="exponent"):
        x ** x
    with pytest.raises(TypeError, match="in an expression with a Tensor"):
        x + "a"
    with pytest.raises(TypeError, match="^cannot use a value of type object in an expression with a Tensor"):
        x * object()
    with pytest.raises(TypeError, match="must hold numbers"):
        ag.tensor(np.array(["a"]))
    with pytest.raises(ValueError, match="float32' or 'float64"):
        ag.tensor(1.0, dtype="int32")


def test_mixing_devices_names_the_gate_and_both_shapes(gpu):
    a, b = ag.tensor(np.ones(3)), ag.tensor(np.ones((2, 3)), device=gpu)
    message = fr"'\*' gate: inputs on different devices: cpu \(shape \(3,\)\), {gpu} \(shape \(2, 3\)\)"
    with pytest.raises(ValueError, match=message):
        a * b


def test_cpu_and_device_agree(device, rng):
    arrays = [rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,))]
    here = [ag.tensor(x, device=device, dtype="float64") for x in arrays]
    cpu = [ag.tensor(x, dtype="float64") for x in arrays]
    f = _composite(*here, ag)
    f.backward()
    _composite(*cpu, ag).backward()
    assert f.device == device
    for a, b in zip(here, cpu):
        np.testing.assert_allclose(gn.to_numpy(a.grad), b.grad, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- the engine's gates, as expressions


def _softmax_ce(s, y):
    shifted = s - s.max(axis=1, keepdims=True).detach()  # the shift cancels in the gradient
    log_z = ag.log(ag.exp(shifted).sum(axis=1))
    return (log_z - shifted[np.arange(len(y)), y]).mean()


def _hinge(s, y, delta=1.0):
    n = len(y)
    margins = ag.maximum(s - s[np.arange(n), y].reshape(n, 1) + delta, 0.0)
    xp = gn.devices.array_module(y)
    with gn.device_of(y):
        not_correct = xp.ones(s.shape)
        not_correct[xp.arange(n), y] = 0
    return (margins * not_correct).sum() / n


@pytest.mark.parametrize("loss,expr", [(gn.nn.SoftmaxCrossEntropy(), _softmax_ce), (gn.nn.MulticlassHinge(), _hinge)])
def test_engine_losses_equal_their_autograd_versions(loss, expr, device, rng):
    s_np = away_from_zero(rng, (6, 4), 0.05)
    y = rng.integers(0, 4, 6)
    s_dev = device.asarray(s_np, dtype=np.float64)
    value = loss.forward(s_dev, y)
    grad = loss.backward()
    st = ag.tensor(s_dev)
    f = expr(st, device.asarray(y))
    f.backward()
    assert float(f.data) == pytest.approx(float(value), rel=1e-12)
    np.testing.assert_allclose(gn.to_numpy(st.grad), gn.to_numpy(grad), rtol=1e-10, atol=1e-14)


def test_engine_linear_and_relu_equal_their_autograd_versions(device, rng):
    layer = gn.nn.Sequential(gn.nn.Linear(5, 4, rng=int(rng.integers(100))), gn.nn.ReLU()).to(device, "float64")
    x = rng.standard_normal((3, 5))
    dout = rng.standard_normal((3, 4))
    out = layer.forward(x)
    dx = layer.backward(dout, input_grad=True)  # a model skips the data gradient unless asked
    xt = ag.tensor(x, device=device, dtype="float64")
    W, b = ag.tensor(layer[0].W.data), ag.tensor(layer[0].b.data)
    ft = ag.relu(xt @ W + b)
    ft.backward(device.asarray(dout))
    for ours, engine in ((ft.data, out), (xt.grad, dx), (W.grad, layer[0].W.grad), (b.grad, layer[0].b.grad)):
        np.testing.assert_allclose(gn.to_numpy(ours), gn.to_numpy(engine), rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------- the bridge: Lambda and FunctionLoss


def test_lambda_layer_passes_gradcheck_with_parameters(rng):
    layer = gn.nn.Lambda(lambda x, g, b: x * ag.sigmoid(x * g) + b, g=rng.standard_normal(4), b=np.zeros(4))
    assert [n for n, _ in layer.named_parameters()] == ["g", "b"]
    assert check_layer(layer, rng.standard_normal((5, 4))) < 1e-7


def test_function_loss_passes_gradcheck(rng):
    loss = gn.nn.FunctionLoss(_softmax_ce)
    assert check_loss(loss, rng.standard_normal((5, 3)), rng.integers(0, 3, 5)) < 1e-7


def test_lambda_and_function_loss_train_like_the_built_in_gates(device):
    """A net with Lambda(ReLU) and FunctionLoss(softmax) trains to the same weights as ReLU + SoftmaxCrossEntropy."""
    X, y = gn.data.make_spiral(40, 3, seed=1)

    def run(act, loss):
        model = gn.nn.Sequential(gn.nn.Linear(2, 16, rng=0), act, gn.nn.Linear(16, 3, rng=1)).to(dtype="float64")
        opt = gn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        trainer = gn.Trainer(model, loss, opt, batch_size=30, epochs=5, device=device, progress=False)
        history = trainer.fit(X, y)
        return model.state_dict(), history

    ours, h1 = run(gn.nn.Lambda(ag.relu), gn.nn.FunctionLoss(_softmax_ce))
    engine, h2 = run(gn.nn.ReLU(), gn.nn.SoftmaxCrossEntropy())
    for k in engine:
        np.testing.assert_allclose(ours[k], engine[k], rtol=1e-9, atol=1e-11)
    assert h1.epochs[-1]["train_loss"] < h1.epochs[0]["train_loss"]


def test_lambda_in_eval_mode_keeps_no_graph_and_bad_functions_are_named(rng):
    layer = gn.nn.Lambda(ag.tanh).eval()
    out = layer.forward(rng.standard_normal((2, 3)))
    assert layer._cache is None and out.shape == (2, 3)
    with pytest.raises(TypeError, match="must return an autograd Tensor"):
        gn.nn.Lambda(lambda x: x.data).forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="one number"):
        gn.nn.FunctionLoss(lambda s, y: s * 2).forward(np.ones((2, 2)), None)
    with pytest.raises(ValueError, match="taken by the layer"):
        gn.nn.Lambda(ag.tanh, training=np.ones(2))
