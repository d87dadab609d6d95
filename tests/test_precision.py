"""Training precision (gpunn/precision.py): the policy's refusals, mixed precision through the Trainer on the simulated
GPU (overflows skipped, divergence, checkpoints), and the proof of the issue: digits and a small ConvNet trained in
mixed precision reach float32's accuracy within half a point."""

import numpy as np
import pytest
from test_trainer import assert_same_weights, blobs

import gpunn as gn


def net(init=0, dropout=0.2, batchnorm=False):
    layers = [gn.nn.Linear(6, 16, rng=init)] + ([gn.nn.BatchNorm1d(16)] if batchnorm else [])
    layers += [gn.nn.ReLU(), gn.nn.Dropout(dropout), gn.nn.Linear(16, 3, rng=init + 1)]
    return gn.nn.Sequential(*layers)


def mixed(device, model=None, epochs=3, scaler=None, **kw):
    model = net() if model is None else model
    opt = gn.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    return gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=16, epochs=epochs, device=device, seed=3,
                      progress=False, precision="mixed", loss_scaler=scaler, **kw)


# --------------------------------------------------------------------------- the policy's refusals

def test_mixed_precision_on_the_cpu_is_refused_naming_precision_and_the_device():
    model = net()
    with pytest.raises(ValueError, match=r"precision='mixed' needs a CUDA device, and the device is cpu"):
        mixed("cpu", model)
    assert model.layers[0].W.master is None and model.layers[0].W.data.dtype == np.float32  # nothing changed


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(precision="float16"), ValueError, "unknown precision 'float16'; expected one of 'float32', 'float64', 'mixed'"),
    (dict(loss_scaler=gn.LossScaler()), ValueError, "loss_scaler is for precision='mixed'"),
    (dict(precision="float64", loss_scaler=gn.LossScaler()), ValueError, "loss_scaler is for precision='mixed'"),
    (dict(precision="float64", log_every=0), ValueError, "log_every must be >= 1"),
    (dict(precision="mixed", loss_scaler=2.0 ** 16), TypeError, "loss_scaler must be a gpunn LossScaler"),
])
def test_bad_precision_arguments_are_named(kwargs, error, match):
    model = net()
    opt = gn.optim.SGD(model.parameters())
    with pytest.raises(error, match=match):
        gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, device="cpu", **kwargs)
    assert all(p.dtype == np.float32 for p in model.parameters())  # a refused trainer cast nothing


def test_a_model_already_in_mixed_precision_is_refused():
    model = net().mixed_precision()
    with pytest.raises(ValueError, match=r"model computes in mixed precision already"):
        gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters()), device="cpu")


def test_mixed_precision_of_a_float64_model_is_refused(one_gpu):
    model = net().to(dtype="float64")
    with pytest.raises(ValueError, match="precision='mixed' keeps float32 master weights, but the model is float64"):
        mixed(one_gpu, model)
    assert model.dtype == np.float64 and model.device == gn.device("cpu")  # refused before it moved


def test_float64_precision_casts_the_model_and_none_keeps_its_dtype():
    model = net()
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters()), device="cpu",
                         precision="float64")
    assert trainer.precision == "float64" and all(p.dtype == np.float64 for p in model.parameters())
    again = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters()), device="cpu")
    assert again.precision == "float64"


# --------------------------------------------------------------------------- mixed precision through the Trainer

class Poison(gn.nn.Module):
    """Identity; from training step ``first`` (to ``last``) its backward (or forward) multiplies by ``value``.

    ``states`` records the model's state dict just before each training step's forward pass."""

    def __init__(self, box, first, last=None, value=np.inf, where="backward"):
        super().__init__()
        self.box, self.first, self.last, self.value, self.where = box, first, last or first, value, where
        self.calls, self.states = 0, []

    def _bad(self):
        return self.training and self.first <= self.calls <= self.last

    def forward(self, x):
        x = self._input(x)
        if self.training:
            self.calls += 1
            self.states.append(self.box[0].model.state_dict())
        self._cache = x.shape
        return x * x.dtype.type(self.value) if self.where == "forward" and self._bad() else x

    def backward(self, dout, input_grad=True):
        dout = self._upstream(dout, self._cache)
        return dout * dout.dtype.type(self.value) if self.where == "backward" and self._bad() else dout


def poisoned(device, rng, box_args, batchnorm=False, **kw):
    X, y = blobs(rng)
    box = []
    model = net(batchnorm=batchnorm)
    poison = Poison(box, *box_args)
    model.layers.insert(1, poison)
    trainer = mixed(device, model, **kw)
    box.append(trainer)
    return trainer, poison, X, y


@pytest.mark.parametrize("batchnorm", [False, True])
def test_an_overflow_skips_exactly_that_step_and_halves_the_scale(batchnorm, gpu, rng):
    """An infinite float16 gradient at step 7 (with batchnorm: in the float32 layer's gradients too): that update is
    skipped whole (masters, state, count), the scale halves, training goes on; no divergence."""
    scaler = gn.LossScaler(init_scale=2.0 ** 10, growth_interval=10_000)
    trainer, poison, X, y = poisoned(gpu, rng, (7,), batchnorm=batchnorm, epochs=1, scaler=scaler)
    history = trainer.fit(X, y)
    names = [name for name, _ in trainer.model.named_parameters()]  # (batchnorm's running statistics did move: its
    before, after = ({k: s[k] for k in names} for s in poison.states[6:8])  # forward ran, as under GradScaler)
    assert_same_weights(after, before)  # the weights before step 8 are those before step 7
    assert trainer.optimizer.steps == len(history.iteration_loss) - 1 == 14
    assert scaler.scale == 2.0 ** 9 and scaler.skipped_steps == 1
    assert all(np.isfinite(history.iteration_loss))
    assert all(p.master is None and p.data.dtype == np.float32 for p in trainer.model.parameters())


def test_a_nan_loss_in_mixed_precision_is_divergence(gpu, rng):
    trainer, poison, X, y = poisoned(gpu, rng, (5, 5, np.nan, "forward"))
    with pytest.raises(gn.TrainingDiverged, match=r"epoch 1, iteration 5: the loss \(nan\) is NaN or infinite"):
        trainer.fit(X, y)
    assert_same_weights(trainer.model.state_dict(), poison.states[4])  # the weights after iteration 4 are kept
    assert trainer.model.dtype == np.float32 and trainer.model.layers[0].W.master is None


def test_overflows_in_a_row_are_divergence(one_gpu, rng):
    scaler = gn.LossScaler(init_scale=16.0, max_consecutive_overflows=3)  # no overflow before the poison
    trainer, poison, X, y = poisoned(one_gpu, rng, (4, 10**6), scaler=scaler)
    with pytest.raises(gn.TrainingDiverged, match="iteration 6: the float16 gradients overflowed in 3 steps in a row"):
        trainer.fit(X, y)
    assert trainer.optimizer.steps == 3


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_mixed_run_resumes_exactly(one_gpu, rng, tmp_path):
    """Masters, optimizer state, the loss scale, its tracker and the overflow counts are saved and resumed: the
    resumed run takes exactly the uninterrupted run's steps (the scale starts too high and grows every 4 steps, so
    it changes across the checkpoint)."""
    X, y = blobs(rng, n=160)
    val = (X[:32], y[:32])

    def run(epochs, init=0):
        return mixed(one_gpu, net(init), epochs=epochs, scaler=gn.LossScaler(init_scale=2.0 ** 24, growth_interval=4))

    straight = run(4)
    straight.fit(X, y, val=val)
    first = run(2)
    first.fit(X, y, val=val, checkpoint_path=tmp_path / "half.npz")
    resumed = run(4, init=50)  # other weights, a fresh scaler: all must come from the file
    resumed.fit(X, y, val=val, resume=tmp_path / "half.npz")
    assert_same_weights(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.loss_scaler.state_dict() == straight.loss_scaler.state_dict()
    assert straight.loss_scaler.skipped_steps > 0  # the scale did change
    a, b = resumed.optimizer.state_dict(), straight.optimizer.state_dict()
    assert a["steps"] == b["steps"]
    for sa, sb in zip(a["state"], b["state"]):
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])


def test_fit_leaves_a_float32_model_and_evaluates_in_float32(gpu, rng):
    X, y = blobs(rng)
    trainer = mixed(gpu, epochs=2)
    trainer.fit(X, y, val=(X[:40], y[:40]))
    model = trainer.model
    assert model.dtype == np.float32 and all(m.dtype == np.float32 for m in model.modules())
    assert all(p.master is None and p.dtype == np.float32 for p in model.parameters())
    assert trainer.evaluate(X, y)["accuracy"] > 0.9


# --------------------------------------------------------------------------- the proof: accuracy as float32's

def digits(image=False):
    split = gn.data.load_digits()
    pre = gn.preprocessing.Standardize().fit(split.X_train)
    shape = (-1, 1, 8, 8) if image else (-1, 64)
    held_out = np.concatenate([split.X_val, split.X_test])  # 540 rows: half a point is 2.7 of them
    return (pre.transform(split.X_train).reshape(shape), split.y_train,
            pre.transform(held_out).reshape(shape), np.concatenate([split.y_val, split.y_test]))


def accuracies(device, build, X, y, X_held, y_held, seed, epochs, batch_size):
    """Held-out accuracy of the same net, initialisation and batches trained in float32 and in mixed precision.

    The float32 run is on the CPU: float32 on the CPU and on a GPU agree (tests/test_cross_device.py), and the
    simulated GPU runs every kernel thread as Python, so the reference there would double the test's time."""
    found = {}
    for precision, on in (("float32", "cpu"), ("mixed", device)):
        model = build(seed)
        trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(model.parameters(), lr=3e-3),
                             batch_size=batch_size, epochs=epochs, device=on, seed=seed, progress=False,
                             restore_best=False, precision=precision)
        trainer.fit(X, y)
        found[precision] = trainer.evaluate(X_held, y_held)["accuracy"]
    return found


def test_digits_mlp_in_mixed_precision_is_as_accurate_as_float32(one_gpu, rng):
    """64-64-10 ReLU, Adam, 12 epochs of the 1,257 training digits, batch 128 (the simulator runs every kernel as Python:
    a small net). Held-out accuracy about 97%, mixed within half a point of float32."""
    seed = int(rng.integers(1000))
    found = accuracies(one_gpu, lambda s: gn.nn.Sequential(gn.nn.Linear(64, 64, rng=s), gn.nn.ReLU(),
                                                           gn.nn.Linear(64, 10, rng=s + 1)),
                       *digits(), seed=seed, epochs=12, batch_size=128)
    print(found)
    assert found["float32"] > 0.93
    assert abs(found["mixed"] - found["float32"]) <= 0.005


def test_convnet_in_mixed_precision_is_as_accurate_as_float32(one_gpu, rng):
    """cs231n's three-layer ConvNet on the digits as 8x8 images: 4 filters of 3x3 with spatial batchnorm (float32
    inside the float16 net), 2x2 max pool, 32 hidden units; 10 epochs of 600 training digits, batch 100. Held-out
    accuracy about 85%, mixed within half a point of float32."""
    X, y, X_held, y_held = digits(image=True)
    seed = int(rng.integers(1000))
    found = accuracies(one_gpu, lambda s: gn.nn.three_layer_convnet((1, 8, 8), 10, num_filters=4, filter_size=3,
                                                                    hidden=32, batchnorm=True, rng=s),
                       X[:600], y[:600], X_held, y_held, seed=seed, epochs=10, batch_size=100)
    print(found)
    assert found["float32"] > 0.75
    assert abs(found["mixed"] - found["float32"]) <= 0.005
