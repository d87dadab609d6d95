"""MLPClassifier and LinearClassifier: gpunn models trained by the Trainer, as scikit-learn classifiers."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from . import nn
from .devices import TRAINING_PRECISIONS, array_module
from .devices import device as make_device
from .estimator import (DeviceClassifier, as_input_type, check_X, encode_labels, keeps_state_on_failure, labels_of,
                        on_fit_device, on_fitted_device, onto)
from .metrics import labels_from_scores
from .nn.init import as_rng
from .optim.by_name import make_optimizer
from .trainer import Trainer
from .validation import check_choice, check_int, check_number

ACTIVATIONS = tuple(name for name in nn.ACTIVATIONS if name != "identity")  # the hidden layers' choices
PREDICT_BATCH = 1024  # rows per forward pass when predicting: bounds the activations' memory


def build_mlp(n_features: int, n_classes: int, hidden=(100,), activation: str = "relu", dropout: float = 0.0,
              batchnorm: bool = False, rng=None) -> nn.Sequential:
    """[Linear -> (BatchNorm1d) -> activation -> (Dropout)] for each hidden size, then Linear to the classes.

    Weights: the activation's own init (``nn.ACTIVATIONS[activation].init``: "he" for the ReLU family,
    "xavier" for sigmoid and tanh); ``rng`` seeds them.
    """
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    elif isinstance(hidden, (str, bytes)) or not isinstance(hidden, Iterable):  # "100" is not ("1", "0", "0")
        raise TypeError(f"hidden must be an int or a sequence of ints, got {type(hidden).__name__} {hidden!r}")
    sizes = [check_int(f"hidden[{i}]", h, low=1) for i, h in enumerate(hidden)]
    check_choice("activation", activation, ACTIVATIONS)
    p = check_number("dropout", dropout, low=0, high=1, high_open=True)
    rng = as_rng(rng)
    init = nn.ACTIVATIONS[activation].init
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


def _has_probabilities(estimator) -> bool:
    return getattr(estimator, "loss", "softmax") == "softmax"


class TrainedClassifier(DeviceClassifier):
    """Base of the classifiers trained by gradient descent.

    Subclasses define ``_build(n_features, n_classes, seed) -> (model, loss)`` and hold the
    hyperparameters ``optimizer``, ``lr``, ``reg``, ``batch_size``, ``epochs``,
    ``validation_fraction``, ``early_stopping``, ``patience``, ``device``, ``precision``,
    ``random_state`` and ``progress``. The model has one output per class (two for a binary problem);
    ``decision_function`` reports a binary problem as one score, that of ``classes_[1]``
    minus that of ``classes_[0]``, as scikit-learn does.
    """

    def _build(self, n_features: int, n_classes: int, seed: int):
        raise NotImplementedError

    # ---------------------------------------------------------------- fitting
    @keeps_state_on_failure
    @on_fit_device
    def fit(self, X, y) -> "TrainedClassifier":
        """Train on X (n_samples, n_features) and class labels y (n_samples,); returns ``self``.

        With ``early_stopping=True`` a stratified ``validation_fraction`` of the rows is held
        out; training stops after ``patience`` epochs without a lower validation loss and the
        weights of the epoch with the lowest are kept (``history_.best_epoch``). A failed fit
        leaves the estimator as it was.
        """
        lr = check_number("lr", self.lr, low=0, low_open=True)
        reg = check_number("reg", self.reg, low=0)
        fraction = check_number("validation_fraction", self.validation_fraction, low=0, high=1, high_open=True)
        patience = check_int("patience", self.patience, low=1)
        if self.early_stopping and fraction == 0:
            raise ValueError("early_stopping=True needs validation_fraction > 0 (the rows it validates on)")
        precision = check_choice("precision", self.precision, TRAINING_PRECISIONS)
        dev = make_device(self.device)
        X = check_X(self, X, reset=True)
        classes, y_index = encode_labels(self, y, X.shape[0])
        if len(classes) < 2:
            raise ValueError(f"y has only 1 class ({classes.tolist()[0]!r}); {type(self).__name__} needs at least 2 "
                             "classes")
        rs = check_random_state(self.random_state)
        model, loss = self._build(X.shape[1], len(classes), int(rs.randint(2**31)))
        optimizer = make_optimizer(self.optimizer, model.parameters(), lr, reg)
        # early stopping by validation loss: on a small validation split accuracy moves in coarse steps and
        # often peaks while the model is still underfit
        trainer = Trainer(model, loss, optimizer, batch_size=self.batch_size, epochs=self.epochs, device=dev,
                          seed=int(rs.randint(2**31)), restore_best=self.early_stopping, progress=bool(self.progress),
                          patience=patience if self.early_stopping else None, monitor="val_loss", precision=precision)
        X = onto(dev, X)
        if self.early_stopping:
            train, val = self._validation_split(y_index, fraction, int(rs.randint(2**31)))
            xp = array_module(X)
            trainer.fit(X[xp.asarray(train)], y_index[train], val=(X[xp.asarray(val)], y_index[val]))
        else:
            trainer.fit(X, y_index)
        history = trainer.history
        self.classes_, self.model_, self.history_, self.n_iter_ = classes, model, history, len(history.epochs)
        self.device_ = dev
        return self

    def _validation_split(self, y_index: np.ndarray, fraction: float, seed: int):
        """(train rows, validation rows): ``fraction`` of the rows (at least one), stratified where every class fits."""
        n = y_index.shape[0]
        n_val = int(np.ceil(fraction * n))
        if n_val >= n:
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n} rows leaves no training rows")
        counts = np.bincount(y_index)
        stratify = y_index if counts.min() >= 2 and min(n_val, n - n_val) >= len(counts) else None
        return train_test_split(np.arange(n), test_size=n_val, stratify=stratify, random_state=seed)

    # ---------------------------------------------------------------- predicting
    def _scores(self, X):
        """(checked X, class scores (n_samples, n_classes)) on the model's device."""
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        Xd, model = onto(self.device_, X), self.model_
        with model.evaluating():
            parts = [model.forward(Xd[i:i + PREDICT_BATCH]) for i in range(0, X.shape[0], PREDICT_BATCH)]
        xp = array_module(parts[0])
        return X, xp.concatenate(parts).astype(np.float64)

    @on_fitted_device
    def decision_function(self, X):
        """Class scores: (n_samples, n_classes), or (n_samples,) for two classes (positive: ``classes_[1]``)."""
        X, s = self._scores(X)
        return as_input_type(s[:, 1] - s[:, 0] if s.shape[1] == 2 else s, X)

    @on_fitted_device
    def predict(self, X):
        """The predicted label of each row, from ``classes_``."""
        X, s = self._scores(X)
        return labels_of(self.classes_, as_input_type(labels_from_scores(s), X))

    @available_if(_has_probabilities)
    @on_fitted_device
    def predict_proba(self, X):
        """Softmax of the scores: (n_samples, n_classes), rows summing to 1, columns in ``classes_`` order."""
        X, s = self._scores(X)
        xp = array_module(s)
        e = xp.exp(s - s.max(axis=1, keepdims=True))
        return as_input_type(e / e.sum(axis=1, keepdims=True), X)

    @available_if(_has_probabilities)
    @on_fitted_device
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed as scores minus their log-sum-exp (no underflow)."""
        X, s = self._scores(X)
        xp = array_module(s)
        shifted = s - s.max(axis=1, keepdims=True)
        return as_input_type(shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True)), X)


class MLPClassifier(TrainedClassifier):
    """A fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden size, then Linear.

    Trained with softmax cross-entropy for ``epochs`` epochs of minibatches. ``reg`` is the
    L2 strength on the weights; ``optimizer`` is one of "sgd", "momentum", "nesterov",
    "adagrad", "rmsprop", "adam", "adamw". With ``early_stopping=True``, ``validation_fraction``
    of the rows is held out: training stops after ``patience`` epochs without a lower validation
    loss and the best epoch's weights are kept. ``device``: "auto", "cpu", "cuda" or "cuda:N";
    the model lives there. ``precision``: "float32" or "float64", the model's dtype (float32
    scores of a row may differ in the last bits with the other rows predicted beside it), or "mixed":
    trained on a GPU in float16 with float32 master weights and dynamic loss scaling (see
    :class:`~gpunn.Trainer`), the fitted model float32; on the CPU "mixed" is a ValueError.
    Fitted: ``classes_``, ``model_``, ``history_``, ``n_iter_`` (epochs run), ``n_features_in_``,
    ``feature_names_in_`` (DataFrames), ``device_``.
    """

    def __init__(self, hidden=(100,), activation="relu", dropout=0.0, batchnorm=False, optimizer="adam", lr=1e-3,
                 reg=1e-4, batch_size=64, epochs=100, validation_fraction=0.1, early_stopping=False, patience=5,
                 device="auto", precision="float32", random_state=None, progress=False):
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
        self.precision = precision
        self.random_state = random_state
        self.progress = progress

    def _build(self, n_features, n_classes, seed):
        model = build_mlp(n_features, n_classes, self.hidden, self.activation, self.dropout, self.batchnorm, seed)
        return model, nn.SoftmaxCrossEntropy()


class LinearClassifier(TrainedClassifier):
    """The linear score function s = x W + b, trained with the multiclass SVM or softmax loss.

    ``loss``: "softmax" (cross-entropy; has ``predict_proba``) or "svm" (multiclass hinge,
    delta = 1; scores only, as scikit-learn's hinge-loss classifiers). ``reg`` is the L2
    strength lambda on W. Weights start small (std 1e-3). ``coef_`` (n_classes, n_features)
    and ``intercept_`` (n_classes,) read W and b as scikit-learn's linear models do, with one
    row (``classes_[1]`` against ``classes_[0]``) for a binary problem; on the model's device.
    Other hyperparameters and fitted attributes as :class:`MLPClassifier`.
    """

    def __init__(self, loss="softmax", reg=1e-4, optimizer="adam", lr=0.02, batch_size=200, epochs=50,
                 validation_fraction=0.1, early_stopping=False, patience=5, device="auto", precision="float32",
                 random_state=None, progress=False):
        self.loss = loss
        self.reg = reg
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.progress = progress

    def _build(self, n_features, n_classes, seed):
        kind = check_choice("loss", self.loss, ("svm", "softmax"))
        loss = nn.MulticlassHinge() if kind == "svm" else nn.SoftmaxCrossEntropy()
        return nn.Sequential(nn.Linear(n_features, n_classes, init=1e-3, rng=seed)), loss

    @property
    def coef_(self):
        """(n_classes, n_features), or (1, n_features) for two classes: W transposed."""
        check_is_fitted(self, "model_")
        W = self.model_.layers[0].W.data.T
        return W[1:] - W[:1] if W.shape[0] == 2 else W

    @property
    def intercept_(self):
        """(n_classes,), or (1,) for two classes."""
        check_is_fitted(self, "model_")
        b = self.model_.layers[0].b.data
        return b[1:] - b[:1] if b.shape[0] == 2 else b
