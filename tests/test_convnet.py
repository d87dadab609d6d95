"""cs231n's three-layer ConvNet: built by three_layer_convnet, trained by Trainer, checkpointed and resumed."""

import json

import numpy as np
import pytest

import gpunn as gn
from gpunn.cli import main
from gpunn.gradcheck import check_model
from gpunn.preprocessing import Standardize

# The documented digits settings (README, "Convolutional networks"), with a cosine learning-rate schedule.
DIGITS = dict(num_filters=32, filter_size=3, hidden=100, batchnorm=True)
LR, REG, EPOCHS, BATCH = 2e-3, 1e-3, 30, 64


def digits_images():
    d = gn.data.load_digits()
    pre = Standardize().fit(d.X_train)
    shape = gn.data.IMAGE_SHAPES["digits"]
    return [(pre.transform(X).reshape(-1, *shape), y) for X, y in
            ((d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test))]


def test_layout_and_shapes():
    model = gn.nn.three_layer_convnet((3, 32, 32), 10, rng=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    assert model[0].W.shape == (32, 3, 7, 7) and model[0].padding == (3, 3)
    assert model[4].W.shape == (32 * 16 * 16, 100)
    assert model.forward(np.zeros((2, 3, 32, 32))).shape == (2, 10)
    odd = gn.nn.three_layer_convnet((1, 9, 7), 3, num_filters=4, filter_size=(3, 5), hidden=6, batchnorm=True, rng=0)
    assert odd.forward(np.zeros((2, 1, 9, 7))).shape == (2, 3)


def test_whole_model_gradient_check(rng):
    model = gn.nn.three_layer_convnet((2, 6, 5), 4, num_filters=3, filter_size=3, hidden=5, rng=1)
    X, y = rng.standard_normal((3, 2, 6, 5)), rng.integers(0, 4, 3)
    assert check_model(model, gn.nn.SoftmaxCrossEntropy(), X, y) < 1e-6


def test_reaches_98_5_percent_on_digits_with_the_documented_settings():
    (X, y), val, (X_test, y_test) = digits_images()
    model = gn.nn.three_layer_convnet(gn.data.IMAGE_SHAPES["digits"], 10, **DIGITS, rng=0)
    opt = gn.optim.Adam(model.parameters(), lr=LR, weight_decay=REG)
    trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=BATCH, epochs=EPOCHS, device="cpu",
                         seed=0, schedule=gn.optim.CosineAnnealing(opt, EPOCHS), progress=False)
    trainer.fit(X, y, val=val)
    assert trainer.evaluate(X_test, y_test)["accuracy"] >= 0.985


def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run(rng, tmp_path):
    X, y = rng.standard_normal((60, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 60)

    def make(init):
        model = gn.nn.three_layer_convnet((1, 8, 8), 3, num_filters=4, filter_size=3, hidden=8, batchnorm=True,
                                          rng=init)
        opt = gn.optim.Adam(model.parameters(), lr=1e-2)
        return gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=16, epochs=4, device="cpu", seed=3,
                          progress=False)

    straight = make(0)
    straight.fit(X, y)
    half = make(0)
    half.epochs = 2
    half.fit(X, y, checkpoint_path=tmp_path / "half.npz")
    resumed = make(99)  # other initial weights: everything must come from the file
    resumed.fit(X, y, resume=tmp_path / "half.npz")
    for k, v in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)


def test_gpunn_train_model_convnet(tmp_path, capsys):
    """The command builds the same net as the test above; a few epochs show it is wired up (accuracy: above)."""
    args = ["train", "--model", "convnet", "--batchnorm", "--hidden", "100", "--lr", "2e-3", "--epochs", "3",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "convnet 1x8x8 -> conv 32@3x3 -> pool -> 100 -> 10 relu with batchnorm" in out
    assert float(out.split("test accuracy ")[1].split()[0]) >= 0.9
    assert "model.0.W" in np.load(tmp_path / "checkpoint.npz").files


def test_convnet_needs_images(tmp_path, capsys):
    assert main(["train", "--model", "convnet", "--dataset", "spiral", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--model convnet needs images" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(input_shape=(8, 8)), r"input_shape must be one image's \(C, H, W\)"),
        (dict(input_shape=(1, 1, 3), filter_size=3), "too small"),
        (dict(num_filters=0), "num_filters must be >= 1"),
        (dict(filter_size=0), "filter_size must be >= 1"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    args = dict(input_shape=(1, 8, 8), n_classes=10) | kwargs
    with pytest.raises(ValueError, match=match):
        gn.nn.three_layer_convnet(**args)


def test_activation_and_dropout_are_built_in():
    model = gn.nn.three_layer_convnet((1, 8, 8), 10, num_filters=4, filter_size=3, hidden=6, activation="tanh",
                                      dropout=0.5, rng=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Conv2d", "Tanh", "MaxPool2d", "Flatten", "Linear", "Tanh", "Dropout", "Linear"]
    assert model[6].p == 0.5
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        gn.nn.three_layer_convnet((1, 8, 8), 10, activation="swish")
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        gn.nn.three_layer_convnet((1, 8, 8), 10, dropout=1.0)


def test_gpunn_train_convnet_honours_dropout_and_activation(tmp_path):
    """--dropout and --activation change the convnet (they were once recorded but ignored): the first epoch differs."""
    common = ["train", "--model", "convnet", "--hidden", "32", "--epochs", "1", "--no-progress"]

    def first_epoch_loss(*extra):
        out = tmp_path / "_".join(extra or ("plain",))
        assert main([*common, "--out", str(out), *extra]) == 0
        return json.loads((out / "history.json").read_text())["epochs"][0]["train_loss"]

    plain = first_epoch_loss()
    assert first_epoch_loss("--dropout", "0.5") != pytest.approx(plain, rel=1e-6)
    assert first_epoch_loss("--activation", "tanh") != pytest.approx(plain, rel=1e-6)


def test_gpunn_train_convnet_refuses_a_second_hidden_size(tmp_path, capsys):
    assert main(["train", "--model", "convnet", "--hidden", "100", "50", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--hidden 100 50: --model convnet has one hidden layer (cs231n's three-layer ConvNet); give one size" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "checkpoint.npz").exists()
