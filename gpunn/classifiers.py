"""MLPClassifier and LinearClassifier: estimators with scikit-learn conventions."""

from __future__ import annotations

from . import nn
from .estimator import Classifier
from .nn.init import as_rng
from .validation import check_choice, check_int, check_number

RELU_FAMILY = ("relu", "leaky_relu", "elu")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")


def build_mlp(n_features: int, n_classes: int, hidden=(100,), activation: str = "relu", dropout: float = 0.0,
              batchnorm: bool = False, rng=None) -> nn.Sequential:
    """[Linear -> (BatchNorm1d) -> activation -> (Dropout)] for each hidden size, then Linear to the classes.

    Weights: "he" init for the ReLU family, "xavier" otherwise; ``rng`` seeds them.
    """
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    sizes = [check_int(f"hidden[{i}]", h, low=1) for i, h in enumerate(hidden)]
    check_choice("activation", activation, ACTIVATIONS)
    p = check_number("dropout", dropout, low=0, high=1, high_open=True)
    rng = as_rng(rng)
    init = "he" if activation in RELU_FAMILY else "xavier"
    layers, width = [], n_features
    for h in sizes:
        layers.append(nn.Linear(width, h, init=init, rng=rng))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.activation_layer(activation))
        if p > 0:
            layers.append(nn.Dropout(p))
        width = h
    layers.append(nn.Linear(width, n_classes, init="xavier", rng=rng))
    return nn.Sequential(*layers)


class MLPClassifier(Classifier):
    """A fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden size, then Linear.

    Trained with softmax cross-entropy. ``reg`` is the L2 strength on the weights;
    ``optimizer`` is one of "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw".
    ``validation_fraction`` of the training rows is held out to pick the best epoch
    (and for ``early_stopping``, after ``patience`` epochs without improvement).
    """

    def __init__(self, hidden=(100,), activation="relu", dropout=0.0, batchnorm=False, optimizer="adam", lr=1e-3,
                 reg=1e-4, batch_size=64, epochs=40, validation_fraction=0.1, early_stopping=False, patience=5,
                 device="auto", random_state=None, progress=False):
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.optimizer = optimizer
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _build(self, n_features, n_classes, rng):
        model = build_mlp(n_features, n_classes, self.hidden, self.activation, self.dropout, self.batchnorm, rng)
        return model, nn.SoftmaxCrossEntropy()


class LinearClassifier(Classifier):
    """The linear score function s = x W + b, trained with the multiclass SVM or softmax loss.

    ``loss``: "svm" (multiclass hinge, delta = 1) or "softmax" (cross-entropy).
    ``reg`` is the L2 strength lambda on W. Weights start small (std 1e-3).
    """

    def __init__(self, loss="softmax", reg=1e-4, optimizer="momentum", lr=1e-2, batch_size=200, epochs=50,
                 validation_fraction=0.0, device="auto", random_state=None, progress=False):
        self.loss = loss
        self.reg = reg
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _build(self, n_features, n_classes, rng):
        kind = check_choice("loss", self.loss, ("svm", "softmax"))
        loss = nn.MulticlassHinge() if kind == "svm" else nn.SoftmaxCrossEntropy()
        return nn.Sequential(nn.Linear(n_features, n_classes, init=1e-3, rng=rng)), loss
