import numpy as np
import pytest

import gpunn as gn


def small_net(seed=0):
    return gn.nn.Sequential(
        gn.nn.Linear(4, 6, rng=seed), gn.nn.BatchNorm1d(6), gn.nn.ReLU(), gn.nn.Dropout(0.2),
        gn.nn.Linear(6, 3, rng=seed + 1),
    )


def test_parameters_in_order_with_dotted_names():
    names = [n for n, _ in small_net().named_parameters()]
    assert names == ["0.W", "0.b", "1.gamma", "1.beta", "4.W", "4.b"]
    assert list(small_net().state_dict()) == names + ["1.running_mean", "1.running_var"]
    decays = [p.decay for p in small_net().parameters()]
    assert decays == [True, False, False, False, True, False]


def test_state_dict_roundtrip(device, rng):
    a, b = small_net(0).to(device), small_net(5).to(device)
    a.forward(rng.standard_normal((8, 4)))  # moves the running statistics
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(gn.to_numpy(a.forward(x)), gn.to_numpy(b.forward(x)))


def test_load_state_dict_refuses_mismatches_and_changes_nothing(rng):
    model = small_net()
    before = model.state_dict()
    wrong_shape = dict(before, **{"4.W": np.zeros((6, 4))})
    with pytest.raises(ValueError, match=r"state\['4.W'\] has shape \(6, 4\), the model expects \(6, 3\)"):
        model.load_state_dict(wrong_shape)
    partial = {k: v for k, v in before.items() if k != "0.b"}
    partial["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['0.b'\], unexpected \['extra'\]"):
        model.load_state_dict(partial)
    poisoned = dict(before, **{"0.W": np.full((4, 6), np.nan)})
    with pytest.raises(ValueError, match="finite"):
        model.load_state_dict(poisoned)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_to_float64_casts_everything_and_keeps_values(rng):
    model = small_net()
    w32 = model[0].W.data.copy()
    assert model.to("float64") is model
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_var.dtype == np.float64
    assert model.forward(rng.standard_normal((3, 4))).dtype == np.float64
    np.testing.assert_array_equal(model[0].W.data, w32.astype(np.float64))
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got float16"):
        model.to(dtype="float16")


def test_inputs_are_cast_to_the_model_dtype(rng):
    model = small_net()
    out = model.forward(rng.standard_normal((3, 4)))  # float64 in, float32 model
    assert out.dtype == np.float32
    assert model.forward(rng.integers(0, 255, (3, 4)).astype(np.uint8)).dtype == np.float32


def test_train_and_eval_reach_every_layer(rng):
    model = small_net()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    x = rng.standard_normal((4, 4))
    np.testing.assert_array_equal(model.forward(x), model.forward(x))  # no dropout, fixed statistics


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_a_small_net_learns_a_separable_problem(opt_name, device, rng):
    """End to end: layers, loss and optimizer together drive the training loss down."""
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    model = gn.nn.Sequential(gn.nn.Linear(4, 32, rng=1), gn.nn.ReLU(), gn.nn.Linear(32, 3, rng=2)).to(device)
    loss = gn.nn.SoftmaxCrossEntropy()
    params = model.parameters()
    opt = gn.optim.SGD(params, lr=0.5, momentum=0.9) if opt_name == "sgd" else gn.optim.Adam(params, lr=0.02)
    values = []
    for _ in range(150):
        opt.zero_grad()
        values.append(float(loss.forward(model.forward(X), y)))
        model.backward(loss.backward())
        opt.step()
    predicted = gn.to_numpy(model.forward(X)).argmax(axis=1)
    assert values[-1] < 0.3 * values[0]
    assert (predicted == y).mean() > 0.95


def test_gradients_accumulate_until_zero_grad(rng):
    layer = gn.nn.Linear(3, 2, rng=0).to("float64")
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dout)
    once = layer.W.grad.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.W.grad, 2 * once, rtol=1e-12)
    layer.zero_grad()
    assert layer.W.grad is None


def test_input_grad_false_skips_only_the_input_gradient(rng):
    X, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    grads = []
    for input_grad in (True, False):
        model, loss = small_net(3).to("float64").seed(0), gn.nn.SoftmaxCrossEntropy()
        loss.forward(model.forward(X), y)
        dx = model.backward(loss.backward(), input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_predict_refuses_nan_input_as_mlpclassifier_does(rng):
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    X[7, 2] = np.nan
    model = small_net()
    clf = gn.MLPClassifier(hidden=(6,), epochs=1, device="cpu").fit(np.nan_to_num(X), y)
    with pytest.raises(ValueError) as from_clf:
        clf.predict(X)
    with pytest.raises(ValueError) as from_model:
        model.predict(X)  # it used to return class 0 for row 7
    assert str(from_model.value) == str(from_clf.value) == "X contains NaN or infinite values"
    with pytest.raises(ValueError, match="X contains NaN"):
        model.predict_scores(X)


def test_nan_scores_never_become_class_0(rng):
    from gpunn.metrics import labels_from_scores

    X = rng.standard_normal((5, 4))
    model = small_net()
    model[4].W.data[:, 1] = np.nan  # weights gone bad: every row's scores hold a NaN
    assert np.isnan(model.predict_scores(X)).any(axis=1).all()  # the scores say so themselves
    with pytest.raises(ValueError, match=r"the scores of 5 rows \(rows 0, 1, 2, ...\) hold NaN: no class can be"):
        model.predict(X)
    with pytest.raises(ValueError, match=r"the scores of 1 row \(row 0\) hold NaN"):
        labels_from_scores(np.array([[np.nan], [1.0]]))
    np.testing.assert_array_equal(labels_from_scores(np.array([[0.2, 3.0], [-np.inf, -5.0]])), [1, 1])
    clf = gn.MLPClassifier(hidden=(6,), epochs=1, device="cpu").fit(X, [0, 1, 2, 0, 1])
    clf.model_[2].W.data[:, 0] = np.nan
    with pytest.raises(ValueError, match="hold NaN: no class can be chosen"):
        clf.predict(X)


# --------------------------------------------------------------------------- mixed precision (the layers' dtype policy)

def test_mixed_precision_keeps_float32_masters_and_batchnorm_in_float32(device, rng):
    model = small_net().to(device)
    before = model.state_dict()
    model.mixed_precision()
    assert model.mixed and model.dtype == np.float16
    dtypes = {type(m).__name__: m.dtype for m in model.layers}
    assert dtypes == {"Linear": np.float16, "BatchNorm1d": np.float32, "ReLU": np.float16, "Dropout": np.float16}
    for name, p in model.named_parameters():
        if name.startswith("1."):  # batchnorm: its own float32 parameters, no copies
            assert p.master is None and p.data.dtype == np.float32
        else:
            assert p.master.dtype == np.float32 and p.data.dtype == np.float16
            np.testing.assert_array_equal(gn.to_numpy(p.master), before[name])
            np.testing.assert_array_equal(gn.to_numpy(p.data), before[name].astype(np.float16))
    assert_states_equal(model.state_dict(), before)  # the state is the masters': float32, exactly as before
    model.eval()
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = model.forward(device.asarray(x))
    assert y.dtype == np.float16
    np.testing.assert_allclose(gn.to_numpy(y), gn.to_numpy(small_net().to(device).eval().forward(x)), rtol=2e-2,
                               atol=2e-2)  # float16's few digits, nothing worse
    model.mixed_precision(False)
    assert not model.mixed and all(m.dtype == np.float32 for m in model.modules())
    assert_states_equal(model.state_dict(), before)  # back to float32, bit for bit


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_loading_a_mixed_model_sets_its_masters_and_their_copies(gpu, rng):
    model = small_net().to(gpu).mixed_precision()
    state = small_net(7).state_dict()
    model.load_state_dict(state)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(gn.to_numpy(p.weights), state[name])
        np.testing.assert_array_equal(gn.to_numpy(p.data), state[name].astype(p.data.dtype))
    saved = model.device_state()
    model.load_state_dict(small_net(9).state_dict())
    model.load_device_state(saved)
    assert_states_equal(model.state_dict(), state)


def test_mixed_precision_needs_a_float32_model_and_a_mixed_model_keeps_its_dtype():
    model = small_net().to(dtype="float64")
    with pytest.raises(ValueError, match="mixed precision keeps float32 master weights, but Sequential is float64"):
        model.mixed_precision()
    assert model.dtype == np.float64 and model.layers[0].W.master is None
    mixed = small_net().mixed_precision()
    with pytest.raises(ValueError, match="dtype=float64: the model computes in mixed precision"):
        mixed.to(dtype="float64")
    assert mixed.layers[0].W.data.dtype == np.float16
