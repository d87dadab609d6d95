"""A training step never waits for the device; divergence is caught on the device and skips the update.

The step runs under ``cupyx.allow_synchronize(False)``, which makes every host read of a device
array an error: on the simulated GPU (``tests/simulated_gpu``, which also counts the deliberate reads)
or on a real one. The Trainer's deliberate reads (every ``log_every`` steps, and a few per epoch) go
through ``Device.read`` and are counted on the simulated GPU.
"""

import math

import numpy as np
import pytest

import gpunn as gn


@pytest.fixture
def strict_cuda(gpu):
    """(device, cupyx module, counter of deliberate reads or None): a CUDA device whose steps must not read the host."""
    import cupyx

    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no allow_synchronize")
    reads = getattr(__import__("cupy"), "SIMULATED", False) and __import__("simulated_gpu.strict_cupy").strict_cupy.READS
    if reads:
        reads[0] = 0
    return gpu, cupyx, reads or None


def blobs(rng, n=240, d=6, classes=3):
    centers = 5 * np.linalg.qr(rng.standard_normal((d, classes)))[0].T
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


def trainer_on(device, opt="adam", epochs=2, log_every=1000, **kw):
    model = gn.nn.Sequential(gn.nn.Linear(6, 16, rng=0), gn.nn.ReLU(), gn.nn.Dropout(0.2), gn.nn.Linear(16, 3, rng=1))
    optimizer = (gn.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3) if opt == "adam"
                 else gn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True))
    return gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), optimizer, batch_size=16, epochs=epochs, device=device,
                      seed=3, progress=False, log_every=log_every, **kw)


@pytest.mark.parametrize("opt", ["adam", "nesterov"])
def test_training_steps_never_read_the_device(strict_cuda, opt, rng):
    device, cupyx, reads = strict_cuda
    X, y = blobs(rng)
    val = (X[:40], y[:40])
    trainer = trainer_on(device, opt, epochs=3)
    with cupyx.allow_synchronize(False):
        history = trainer.fit(X, y, val=val)
    steps = 3 * math.ceil(240 / 16)
    assert len(history.iteration_loss) == steps and history.best_epoch is not None
    if reads is not None:
        # per epoch: losses + flag, correct count, the end-of-epoch check, validation: not one per step
        assert reads[0] <= 3 * 4 < steps, reads[0]
    cpu = trainer_on("cpu", opt, epochs=3)
    cpu.fit(X, y, val=val)
    for (name, a), b in zip(trainer.model.state_dict().items(), cpu.model.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=name)
    assert history.column("val_accuracy") == pytest.approx(cpu.history.column("val_accuracy"))


@pytest.mark.parametrize("opt", ["adam", "nesterov"])
def test_mixed_precision_steps_never_read_the_device(strict_cuda, opt, rng):
    """The loss scaler lives on the device: scaling the loss, checking the float16 gradients, deciding the step and
    unscaling them in the update read nothing on the host (the scale starts at 2^16: some early steps overflow)."""
    device, cupyx, reads = strict_cuda
    X, y = blobs(rng)
    val = (X[:40], y[:40])
    trainer = trainer_on(device, opt, epochs=3, precision="mixed")
    with cupyx.allow_synchronize(False):
        history = trainer.fit(X, y, val=val)
    if reads is not None:
        assert reads[0] <= 3 * 4, reads[0]
    cpu = trainer_on("cpu", opt, epochs=3)
    cpu.fit(X, y, val=val)
    assert abs(history.column("val_accuracy")[-1] - cpu.history.column("val_accuracy")[-1]) <= 0.05
    assert trainer.optimizer.steps == 3 * 15 - trainer.loss_scaler.skipped_steps


def test_host_reads_follow_log_every(strict_cuda, rng):
    device, cupyx, reads = strict_cuda
    if reads is None:
        pytest.skip("counted on the simulated GPU only")
    X, y = blobs(rng)
    counts = []
    for log_every in (1000, 5):
        reads[0] = 0
        with cupyx.allow_synchronize(False):
            trainer_on(device, log_every=log_every, epochs=1).fit(X, y)
        counts.append(reads[0])
    assert counts[1] - counts[0] == math.ceil(15 / 5) - 1  # 15 steps: reads after steps 5 and 10 as well


class PoisonAt(gn.nn.Module):
    """Identity whose backward turns NaN at one training step; it records the model's state just before it."""

    def __init__(self, step, trainer_box):
        super().__init__()
        self.step, self.calls, self.box, self.before = step, 0, trainer_box, None

    def forward(self, x):
        x = self._input(x)
        if self.training:
            self.calls += 1
            if self.calls == self.step:  # the weights now are those after the previous step
                t = self.box[0]
                self.before = (t.model.state_dict(), t.optimizer.state_dict())
        self._cache = x.shape
        return x

    def backward(self, dout, input_grad=True):
        dout = self._upstream(dout, self._cache)
        return dout * np.nan if self.training and self.calls == self.step else dout


@pytest.mark.parametrize("opt", ["adam", "nesterov"])
@pytest.mark.parametrize("bad_step", [1, 7, 15, 22])
def test_a_nan_at_step_k_leaves_the_weights_and_counters_of_step_k_minus_1(opt, bad_step, rng):
    X, y = blobs(rng)
    box = []
    trainer = trainer_on("cpu", opt, epochs=3)
    poison = PoisonAt(bad_step, box)
    trainer.model.layers.insert(2, poison)
    box.append(trainer)
    epoch, it = (bad_step - 1) // 15 + 1, (bad_step - 1) % 15 + 1  # 15 steps per epoch
    with pytest.raises(gn.TrainingDiverged, match=fr"epoch {epoch}, iteration {it}: the loss \([^)]*\) or a gradient is NaN"):
        trainer.fit(X, y)
    weights, opt_state = poison.before
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, weights[name], err_msg=name)
    after = trainer.optimizer.state_dict()
    assert after["steps"] == opt_state["steps"] == bad_step - 1
    for a, b in zip(after["state"], opt_state["state"]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert trainer.epoch == epoch - 1


def test_the_divergence_message_says_which_weights_are_kept(rng):
    X, y = blobs(rng)
    box = []
    trainer = trainer_on("cpu")
    trainer.model.layers.insert(2, PoisonAt(5, box))
    box.append(trainer)
    with pytest.raises(gn.TrainingDiverged, match="the model holds the weights after iteration 4 of epoch 1, the last "
                                                  "update before it"):
        trainer.fit(X, y)
