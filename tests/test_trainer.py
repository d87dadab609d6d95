import json
import math
import warnings

import numpy as np
import pytest

import gpunn as gn


class RowSpy(gn.nn.Module):
    """Identity layer that records column 0 of every training batch (set to the row index)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        x = self._input(x)
        if self.training:
            self.seen.append(np.asarray(gn.to_numpy(x[:, 0]), dtype=np.int64))
        self._cache = x.shape
        return x

    def backward(self, dout, input_grad=True):
        return self._upstream(dout, self._saved())


def blobs(rng, n=240, d=6, classes=3):
    """Gaussian blobs (unit noise) around centers 7 apart, in random orthogonal directions: over 99% separable."""
    centers = 5 * np.linalg.qr(rng.standard_normal((d, classes)))[0].T
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


def make(init=0, dropout=0.3, d=6, classes=3, lr=0.01, schedule=False, **kw):
    """A small Trainer; ``init`` seeds the weights, ``kw`` overrides Trainer settings (``seed``: its streams)."""
    model = gn.nn.Sequential(gn.nn.Linear(d, 16, rng=init), gn.nn.ReLU(), gn.nn.Dropout(dropout),
                             gn.nn.Linear(16, classes, rng=init + 1))
    opt = gn.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = gn.optim.StepDecay(opt, step_size=2, gamma=0.5) if schedule else None
    kw = {"batch_size": 32, "epochs": 4, "device": "cpu", "seed": 7, "progress": False, **kw}
    return gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, schedule=sched, **kw)


def weights(trainer):
    return trainer.model.state_dict()


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("batch_size", [1, 7, 50, None])
def test_each_epoch_visits_every_row_once_in_a_fresh_order(batch_size, rng):
    X, y = blobs(rng, n=50)
    X[:, 0] = np.arange(50)
    spy = RowSpy()
    model = gn.nn.Sequential(spy, gn.nn.Linear(6, 3, rng=0))
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3),
                         batch_size=batch_size, epochs=3, device="cpu", progress=False)
    history = trainer.fit(X, y)
    per_epoch = math.ceil(50 / (batch_size or 50))
    assert len(spy.seen) == 3 * per_epoch and len(history.iteration_loss) == 3 * per_epoch
    epochs = [np.concatenate(spy.seen[e * per_epoch:(e + 1) * per_epoch]) for e in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(50))
    assert not np.array_equal(epochs[0], epochs[1])


def test_training_learns_and_records_history(rng, tmp_path):
    X, y = blobs(rng)
    trainer = make(epochs=6)
    history = trainer.fit(X[:200], y[:200], val=(X[200:], y[200:]))
    assert history.column("epoch") == [1, 2, 3, 4, 5, 6]
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.best["val_accuracy"] > 0.9
    result = trainer.evaluate(X[200:], y[200:])
    assert result["accuracy"] == pytest.approx(history.best["val_accuracy"])  # best weights restored
    scores = gn.to_numpy(trainer.model.eval().forward(X[200:]))
    shifted = scores - scores.max(axis=1, keepdims=True)
    manual = (np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(40), y[200:]]).mean()
    assert result["loss"] == pytest.approx(manual, rel=1e-5)
    saved = json.loads(history.save(tmp_path / "h.json").read_text())
    assert saved["best_epoch"] == history.best_epoch and len(saved["iteration_loss"]) == 6 * 7


def test_same_seed_gives_bit_identical_weights(rng):
    X, y = blobs(rng)
    a, b, c = make(), make(), make(seed=8)
    for t in (a, b, c):
        t.fit(X, y)
    assert_same_weights(weights(a), weights(b))
    assert not np.array_equal(weights(a)["0.W"], weights(c)["0.W"])


def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run(rng, tmp_path):
    X, y = blobs(rng)
    val = (X[:40], y[:40])
    straight = make(epochs=6, schedule=True)
    straight.fit(X, y, val=val, checkpoint_path=tmp_path / "every.npz")

    first = make(epochs=3, schedule=True)
    first.fit(X, y, val=val)
    first.save_checkpoint(tmp_path / "half.npz")
    resumed = make(init=100, epochs=6, schedule=True)  # other initial weights: all must come from the file
    history = resumed.fit(X, y, val=val, resume=tmp_path / "half.npz")
    assert_same_weights(weights(resumed), weights(straight))
    assert history.column("epoch") == [1, 2, 3, 4, 5, 6]
    assert resumed.optimizer.lr == straight.optimizer.lr == pytest.approx(0.01 * 0.5**3)


def test_continuing_after_restore_best_goes_on_from_the_last_epoch(rng):
    """The best epoch's weights sit in the model after fit; more training starts from the last epoch's."""
    X, y = blobs(rng)
    val = (X[:40], y[:40])
    straight = make(epochs=6, lr=0.05)
    straight.fit(X, y, val=val)
    stepwise = make(epochs=3, lr=0.05)
    stepwise.fit(X, y, val=val)
    stepwise.epochs = 6
    stepwise.fit(X, y, val=val)
    assert_same_weights(weights(stepwise), weights(straight))
    assert stepwise.history.best_epoch == straight.history.best_epoch


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_stops_with_epoch_and_iteration_and_spares_the_checkpoint(rng, tmp_path):
    X, y = blobs(rng)
    trainer = make(epochs=1, dropout=0.0, lr=1e-3)
    trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    good = (tmp_path / "ckpt.npz").read_bytes()
    trainer.epochs = 3
    trainer.optimizer = gn.optim.SGD(trainer.model.parameters(), lr=1e30)
    with pytest.raises(gn.TrainingDiverged, match=r"epoch 2, iteration \d+"):
        trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    assert (tmp_path / "ckpt.npz").read_bytes() == good
    assert all(np.isfinite(v).all() for v in weights(trainer).values())


def finite_outputs(trainer, X, y):
    """The model's outputs and loss on (X, y) in evaluation mode are finite."""
    scores = gn.to_numpy(trainer.model.eval().forward(X))
    trainer.model.train()
    return np.isfinite(scores).all() and np.isfinite(float(gn.nn.SoftmaxCrossEntropy().forward(scores, y)))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_after_divergence_the_model_holds_the_last_epochs_working_weights(rng, tmp_path):
    """lr=1e12 on inputs scaled by 1e6: the exploded weights are never left in the model."""
    X, y = blobs(rng)
    X = X * 1e6
    model = gn.nn.Sequential(gn.nn.Linear(6, 16, rng=0), gn.nn.ReLU(), gn.nn.Linear(16, 3, rng=1))
    opt = gn.optim.SGD(model.parameters(), lr=1e-15, momentum=0.9)
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=32, epochs=2, device="cpu",
                         progress=False)
    trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    end_of_2 = (weights(trainer), trainer.optimizer.state_dict())
    trainer.epochs, trainer.optimizer.lr = 4, 1e12
    with pytest.raises(gn.TrainingDiverged, match=r"epoch 3.*the model holds the weights from the end of epoch 2 "
                                                  r"\(their loss on the training data is finite\)"):
        trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    assert finite_outputs(trainer, X, y)
    assert_same_weights(weights(trainer), end_of_2[0])
    restored = trainer.optimizer.state_dict()
    assert restored["steps"] == end_of_2[1]["steps"] and restored["hyperparameters"]["lr"] == 1e12
    for a, b in zip(restored["state"], end_of_2[1]["state"]):
        assert_same_weights(a, b)
    assert trainer.epoch == 2 and len(trainer.history.epochs) == 2
    assert_same_weights(gn.checkpoint.load_weights(tmp_path / "ckpt.npz"), end_of_2[0])


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_an_explosion_in_the_last_update_of_an_epoch_is_caught_before_the_checkpoint(rng, tmp_path):
    """Full-batch descent: one update per epoch, so only the end-of-epoch check can see it."""
    X, y = blobs(rng)
    X = X * 1e6
    trainer = make(epochs=3, dropout=0.0, lr=1e12, batch_size=None)
    trainer.optimizer = gn.optim.SGD(trainer.model.parameters(), lr=1e12)
    before = weights(trainer)
    with pytest.raises(gn.TrainingDiverged, match="in epoch 1: after its last update, the model's outputs on a "
                                                  "training batch are not finite.*weights training started from"):
        trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    assert not (tmp_path / "ckpt.npz").exists()
    assert_same_weights(weights(trainer), before)
    assert finite_outputs(trainer, X, y)


def test_cosine_annealing_to_zero_trains_past_T_max_and_its_checkpoint_loads(rng, tmp_path):
    X, y = blobs(rng, n=64)
    model = gn.nn.Sequential(gn.nn.Linear(6, 3, rng=0))
    opt = gn.optim.SGD(model.parameters(), lr=0.1)
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, schedule=gn.optim.CosineAnnealing(opt, T_max=3),
                         batch_size=32, epochs=3, device="cpu", progress=False)
    trainer.fit(X, y, checkpoint_path=tmp_path / "ckpt.npz")
    assert opt.lr == 0.0
    at_t_max = weights(trainer)
    trainer.epochs = 5
    history = trainer.fit(X, y)
    assert history.column("lr")[3:] == [0.0, 0.0]  # each record holds the rate its epoch trained with
    assert_same_weights(weights(trainer), at_t_max)  # lr 0 changes nothing
    model = gn.nn.Sequential(gn.nn.Linear(6, 3, rng=1))
    fresh = gn.optim.SGD(model.parameters(), lr=0.1)
    again = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), fresh, schedule=gn.optim.CosineAnnealing(fresh, 3),
                       device="cpu", progress=False)
    again.load_checkpoint(tmp_path / "ckpt.npz")
    assert fresh.lr == 0.0 and again.epoch == 3
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\), got 0.0"):
        gn.optim.SGD(model.parameters(), lr=0.0)


def test_resume_applies_changed_hyperparameters_and_records_them(rng, tmp_path):
    X, y = blobs(rng)
    first = make(epochs=2)
    first.fit(X, y)
    first.save_checkpoint(tmp_path / "ckpt.npz")
    same = make(epochs=3)
    same.fit(X, y, resume=tmp_path / "ckpt.npz")
    assert same.history.changes == []
    changed = make(epochs=3, lr=0.5)
    changed.optimizer.weight_decay = 0.25
    history = changed.fit(X, y, resume=tmp_path / "ckpt.npz")
    assert history.changes == [{"epoch": 3, "name": "lr", "from": 0.01, "to": 0.5},
                               {"epoch": 3, "name": "weight_decay", "from": 1e-3, "to": 0.25}]
    assert history.column("lr") == [0.01, 0.01, 0.5]
    assert changed.optimizer.weight_decay == 0.25
    # with a schedule the starting rate is what changes; the schedule's position comes from the file
    sched = make(epochs=2, schedule=True)
    sched.fit(X, y)
    sched.save_checkpoint(tmp_path / "sched.npz")
    faster = make(epochs=3, schedule=True, lr=0.04)
    faster.fit(X, y, resume=tmp_path / "sched.npz")
    assert faster.history.changes[0]["name"] == "lr" and faster.history.column("lr")[2] == pytest.approx(0.04 * 0.5)
    # another update rule resumes the weights and starts with fresh state of its own (gpunn/resume.py)
    other = make(epochs=3)
    other.optimizer = gn.optim.SGD(other.model.parameters(), lr=0.01)
    history = other.fit(X, y, resume=tmp_path / "ckpt.npz")
    assert history.changes == [{"epoch": 3, "name": "optimizer", "from": "Adam", "to": "SGD"}]
    assert len(history.epochs) == 3 and other.optimizer.steps == other.optimizer.steps


def test_best_weights_come_back_from_the_file(rng, tmp_path):
    X, y = blobs(rng)
    val = (X[200:], y[200:])
    trainer = make(epochs=5, lr=0.05)
    trainer.fit(X[:200], y[:200], val=val, checkpoint_path=tmp_path / "ckpt.npz")
    best, last = weights(trainer), trainer._trained_state
    assert_same_weights(gn.checkpoint.load_weights(tmp_path / "ckpt.npz", "best"), best)
    assert_same_weights(gn.checkpoint.load_weights(tmp_path / "ckpt.npz"), last)
    other = make(init=9, epochs=5, lr=0.05)
    other.load_checkpoint(tmp_path / "ckpt.npz", weights="best")
    assert_same_weights(weights(other), best)
    assert other.evaluate(*val)["accuracy"] == trainer.history.best["val_accuracy"]
    no_val = make(epochs=1)
    no_val.fit(X, y, checkpoint_path=tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="no best weights: it was trained without validation data"):
        gn.checkpoint.load_weights(tmp_path / "plain.npz", "best")
    with pytest.raises(ValueError, match="has no best weights"):
        make().load_checkpoint(tmp_path / "plain.npz", weights="best")
    with pytest.raises(ValueError, match="unknown weights 'first'"):
        make().load_checkpoint(tmp_path / "plain.npz", weights="first")


def test_the_full_objective_is_reported_beside_the_data_loss(rng):
    X, y = blobs(rng)
    trainer = make(epochs=2, dropout=0.0)
    history = trainer.fit(X, y)
    W = [p.data for p in trainer.model.parameters() if p.decay]
    penalty = 0.5 * 1e-3 * sum(float((w.astype(np.float64) ** 2).sum()) for w in W)
    assert history.epochs[-1]["penalty"] == pytest.approx(penalty, rel=1e-5)
    result = trainer.evaluate(X, y)
    assert result["penalty"] == pytest.approx(penalty, rel=1e-5)
    assert result["objective"] == pytest.approx(result["loss"] + penalty)
    assert history.to_dict()["loss_includes_penalty"] is False


def test_a_nan_gradient_is_caught_before_the_step(rng):
    X, y = blobs(rng)
    trainer = make(epochs=1, dropout=0.0)

    class Poison(gn.nn.Module):
        def forward(self, x):
            self._cache = x.shape
            return x

        def backward(self, dout, input_grad=True):
            return dout * np.nan

    trainer.model.layers.insert(2, Poison())
    before = weights(trainer)
    with pytest.raises(gn.TrainingDiverged, match="epoch 1, iteration 1"):
        trainer.fit(X, y)
    assert_same_weights(weights(trainer), before)


def test_broken_checkpoints_are_refused_and_change_nothing(rng, tmp_path):
    X, y = blobs(rng)
    trainer = make(epochs=1)
    trainer.fit(X, y)
    trainer.save_checkpoint(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    other = gn.Trainer(*(lambda m: (m, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(m.parameters())))(
        gn.nn.Sequential(gn.nn.Linear(6, 5), gn.nn.ReLU(), gn.nn.Linear(5, 3))), device="cpu", progress=False)
    other.fit(X, y)
    other.save_checkpoint(tmp_path / "other_shape.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")

    target = make(init=3, epochs=1)
    target.fit(X, y)
    before, opt_before = weights(target), target.optimizer.state_dict()
    for name, match in [("truncated", "not a readable gpunn checkpoint"), ("foreign", "not a gpunn checkpoint"),
                        ("garbage", "not a gpunn checkpoint"), ("other_shape", "does not fit this trainer"),
                        ("missing", "does not exist")]:
        with pytest.raises(ValueError, match=match):
            target.load_checkpoint(tmp_path / f"{name}.npz")
        assert_same_weights(weights(target), before)
        after = target.optimizer.state_dict()
        assert after["steps"] == opt_before["steps"]
        for s_after, s_before in zip(after["state"], opt_before["state"]):
            assert_same_weights(s_after, s_before)


def test_a_failed_save_keeps_the_last_good_file(rng, tmp_path, monkeypatch):
    X, y = blobs(rng)
    trainer = make(epochs=1)
    trainer.fit(X, y)
    path = trainer.save_checkpoint(tmp_path / "ckpt.npz")
    good = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left behind


def test_early_stopping_with_patience(rng):
    X, y = blobs(rng)
    trainer = make(epochs=50, patience=2, lr=0.05)
    history = trainer.fit(X[:200], y[:200], val=(X[200:], y[200:]))
    assert len(history.epochs) < 50
    assert len(history.epochs) - history.best_epoch == 2


def test_no_output_without_progress(rng, capsys):
    X, y = blobs(rng)
    make(epochs=2).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize(
    "change,err,match",
    [
        (lambda X, y: (X[:-1], y), ValueError, "same number of rows: X has 239, y has shape"),
        (lambda X, y: (np.where(np.eye(240, 6) > 0, np.nan, X), y), ValueError, "X contains NaN"),
        (lambda X, y: (X, y.astype(float) + 0.5), TypeError, "integer class labels"),
        (lambda X, y: (X, y - 5), ValueError, "y must be class indices >= 0"),
        (lambda X, y: (X, np.where(np.arange(240) == 200, 3, y)), ValueError,
         r"y has label 3, but the model scores 3 classes \(0..2\)"),
        (lambda X, y: (X[:, :5], y), ValueError, r"expects input of shape \(N, 6\), got \(1, 5\)"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "X is empty"),
        (lambda X, y: (X.astype(str), y), TypeError, "X must hold numbers"),
    ],
)
def test_bad_data_is_refused_before_training(change, err, match, rng):
    X, y = blobs(rng)
    trainer = make()
    before = weights(trainer)
    with pytest.raises(err, match=match):
        trainer.fit(*change(X, y))
    assert_same_weights(weights(trainer), before)


@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"device": "gpu"}, ValueError, "unknown device 'gpu'"),
    ],
)
def test_bad_trainer_settings(kw, err, match):
    with pytest.raises(err, match=match):
        make(**kw)


def test_validation_data_must_match(rng):
    X, y = blobs(rng)
    with pytest.raises(ValueError, match=r"X_val rows have shape \(5,\), X rows \(6,\)"):
        make().fit(X, y, val=(X[:10, :5], y[:10]))
    with pytest.raises(TypeError, match="val must be a pair"):
        make().fit(X, y, val=X)


@pytest.mark.parametrize("given", ["host", "device"])
def test_cuda_training_resident_and_staged_from_pinned_memory_agree(given, gpu, rng, monkeypatch):
    """Data too large for the GPU is staged through the host, whether it came from the host or the device."""
    X, y = blobs(rng)
    resident = make(device=gpu, dropout=0.0)
    resident.fit(X, y)
    monkeypatch.setattr(gn.Device, "fits", lambda self, nbytes, fraction=0.5: False)
    staged = make(device=gpu, dropout=0.0)
    staged.fit(*((X, y) if given == "host" else (gpu.asarray(X), gpu.asarray(y))))
    for k, v in weights(resident).items():
        np.testing.assert_allclose(weights(staged)[k], v, rtol=1e-5, atol=1e-6)
    cpu = make(device="cpu", dropout=0.0)
    cpu.fit(X, y)
    for k, v in weights(cpu).items():
        np.testing.assert_allclose(weights(resident)[k], v, rtol=1e-3, atol=1e-4)


def test_an_optimizer_of_another_model_is_refused(rng):
    model = gn.nn.Sequential(gn.nn.Linear(6, 16, rng=0), gn.nn.ReLU(), gn.nn.Linear(16, 3, rng=1))
    other = gn.nn.Sequential(gn.nn.Linear(6, 16, rng=0), gn.nn.ReLU(), gn.nn.Linear(16, 3, rng=1))
    with pytest.raises(ValueError, match=r"optimizer must update the model's parameters, but 4 of its 4 are not "
                                         r"the model's: params\[0\] \(6, 16\), params\[1\] \(16,\), params\[2\] "
                                         r"\(16, 3\), \.\.\.; build it from model.parameters\(\)"):
        gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(other.parameters()), device="cpu")
    mixed = [model[0].W, other[2].b]
    with pytest.raises(ValueError, match=r"but 1 of its 2 are not the model's: params\[1\] \(3,\);"):
        gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(mixed), device="cpu")
    # a part of the model's parameters is fine: the rest stay as they are (frozen on purpose)
    X, y = blobs(rng)
    before = model.state_dict()
    gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(model[2].parameters()), epochs=1, device="cpu",
               progress=False).fit(X, y)
    after = model.state_dict()
    assert_same_weights({k: after[k] for k in ("0.W", "0.b")}, {k: before[k] for k in ("0.W", "0.b")})
    assert not np.array_equal(after["2.W"], before["2.W"])


class ForgetfulScale(gn.nn.Module):
    """y = x * s per column, whose backward forgets to accumulate the gradient of ``s``: ``s`` never learns."""

    def __init__(self, d):
        super().__init__()
        self.s = gn.nn.Parameter(np.ones(d, dtype=np.float32), decay=False)

    def forward(self, x):
        x = self._input(x)
        self._cache = x.shape
        return x * self.s.data

    def backward(self, dout, input_grad=True):
        return self._upstream(dout, self._saved()) * self.s.data


def test_a_parameter_that_never_gets_a_gradient_is_named_once_per_fit(rng):
    X, y = blobs(rng)
    model = gn.nn.Sequential(gn.nn.Linear(6, 16, rng=0), gn.nn.ReLU(), ForgetfulScale(16), gn.nn.Linear(16, 3, rng=1))
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.Adam(model.parameters()), epochs=3,
                         device="cpu", progress=False)
    for total in (3, 5):  # a first fit, then one that goes on: each says it once
        trainer.epochs = total
        with pytest.warns(UserWarning) as caught:
            trainer.fit(X, y)
        said = [str(w.message) for w in caught if "gradient" in str(w.message)]
        assert said == ["parameter 2.s got no gradient in the first step, so training will not change it: a "
                        "layer's backward that never sets a parameter's grad leaves it out "
                        "(gpunn.gradcheck.check_model finds such gaps); to freeze parameters on purpose, leave them "
                        "out of the optimizer"]
    np.testing.assert_array_equal(gn.to_numpy(model[2].s.data), np.ones(16))
    # frozen on purpose: no word
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(),
                         gn.optim.Adam([p for name, p in model.named_parameters() if name != "2.s"]), epochs=1,
                         device="cpu", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(X, y)


def test_an_empty_validation_set_is_named(rng):
    X, y = blobs(rng)
    with pytest.raises(ValueError, match=r"X_val is empty \(shape \(0, 6\)\)"):
        make().fit(X, y, val=(X[:0], y[:0]))
    with pytest.raises(ValueError, match=r"y_val must be 1-D class labels, got shape \(10, 2\)"):
        make().fit(X, y, val=(X[:10], np.zeros((10, 2), int)))


def test_foreign_and_corrupt_files_are_named_so_without_numpys_pickle_advice(tmp_path):
    from gpunn import checkpoint

    (tmp_path / "text.npz").write_text("hello, not an archive")
    np.savez(tmp_path / "objects.npz", a=np.array([{"key": 1}], dtype=object))
    checkpoint.save(tmp_path / "good.npz", {"w": np.arange(4.0)}, {"epoch": 1})
    good = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[:len(good) // 2])
    damaged = bytearray(good)
    at = good.index(b"\x93NUMPY", good.index(b"w.npy")) + 60  # inside w's stored bytes
    damaged[at:at + 8] = b"\xff" * 8
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    for name, message in [("text", "is not a gpunn checkpoint: it is not an .npz archive"),
                          ("objects", "is not a gpunn checkpoint: it holds pickled Python objects, which gpunn "
                                      "checkpoints never do"),
                          ("truncated", "is not a readable gpunn checkpoint: the file is corrupt or truncated"),
                          ("damaged", "is not a readable gpunn checkpoint: the file is corrupt or truncated")]:
        with pytest.raises(ValueError) as caught:
            checkpoint.load(tmp_path / f"{name}.npz")
        assert message in str(caught.value) and "pickle=" not in str(caught.value), name
    assert checkpoint.load(tmp_path / "good.npz")[1]["epoch"] == 1


def test_fit_with_no_epoch_left_says_so(rng):
    X, y = blobs(rng)
    trainer = make(epochs=2)
    trainer.fit(X, y)
    with pytest.warns(UserWarning, match=r"^nothing left to train: 2 of 2 epochs are done; raise epochs to continue$"):
        history = trainer.fit(X, y)
    assert len(history.epochs) == 2
    trainer.epochs = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(trainer.fit(X, y).epochs) == 3
