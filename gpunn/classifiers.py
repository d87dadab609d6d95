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
        """Train a new model on X and the class labels y; returns ``self``.

        With ``early_stopping=True`` a stratified ``validation_fraction`` of the rows is held
        out; training stops after ``patience`` epochs without a lower validation loss and the
        weights of the epoch with the lowest are kept (``history_.best_epoch``). A failed fit
        leaves the estimator as it was. Training runs on ``device`` (a :class:`~gpunn.Trainer`);
        the fitted model stays there.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite numbers: a NumPy or CuPy array, a list or a DataFrame; float32 and float64 are
            kept, anything else becomes float32.
        y : array_like of shape (n_samples,)
            Class labels, any scikit-learn accepts (integers, strings, ...), at least two distinct.

        Returns
        -------
        self
            The fitted classifier, with ``classes_``, ``model_``, ``history_``, ``n_iter_``,
            ``n_features_in_`` and ``device_``.

        Raises
        ------
        ValueError
            If ``early_stopping`` is True with ``validation_fraction`` 0, ``y`` has one class, the
            validation split leaves no training rows, X is not finite, or a hyperparameter is out of
            range or unknown ("mixed" ``precision`` on the CPU included).
        TypeError
            If a numeric hyperparameter is not a number.
        TrainingDiverged
            If training diverged (try a smaller ``lr``).
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
        """The model's class scores for each row.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite numbers, as many features as in ``fit`` (NumPy or CuPy).

        Returns
        -------
        array of shape (n_samples, n_classes) or (n_samples,), float64
            One score per class, columns in ``classes_`` order; for two classes one score per row,
            that of ``classes_[1]`` minus that of ``classes_[0]`` (positive: ``classes_[1]``). In
            X's array type (CuPy in, CuPy out).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the classifier is not fitted.
        """
        X, s = self._scores(X)
        return as_input_type(s[:, 1] - s[:, 0] if s.shape[1] == 2 else s, X)

    @on_fitted_device
    def predict(self, X):
        """The predicted label of each row, from ``classes_``: that of the highest score.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite numbers, as many features as in ``fit`` (NumPy or CuPy).

        Returns
        -------
        array of shape (n_samples,)
            Labels of ``classes_``'s dtype; in X's array type where it can hold them (CuPy holds
            numbers only: string labels come back as NumPy).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the classifier is not fitted.
        gpunn.validation.NonFiniteError
            A ``ValueError`` where a row's scores hold NaN (no class can be chosen).
        """
        X, s = self._scores(X)
        return labels_of(self.classes_, as_input_type(labels_from_scores(s), X))

    @available_if(_has_probabilities)
    @on_fitted_device
    def predict_proba(self, X):
        """Class probabilities: the softmax of the scores (with ``loss="softmax"`` only).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite numbers, as many features as in ``fit`` (NumPy or CuPy).

        Returns
        -------
        array of shape (n_samples, n_classes), float64
            Rows summing to 1, columns in ``classes_`` order, in X's array type.
        """
        X, s = self._scores(X)
        xp = array_module(s)
        e = xp.exp(s - s.max(axis=1, keepdims=True))
        return as_input_type(e / e.sum(axis=1, keepdims=True), X)

    @available_if(_has_probabilities)
    @on_fitted_device
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed as scores minus their log-sum-exp (no underflow).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Finite numbers, as many features as in ``fit`` (NumPy or CuPy).

        Returns
        -------
        array of shape (n_samples, n_classes), float64
            Log-probabilities, columns in ``classes_`` order, in X's array type.
        """
        X, s = self._scores(X)
        xp = array_module(s)
        shifted = s - s.max(axis=1, keepdims=True)
        return as_input_type(shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True)), X)


class MLPClassifier(TrainedClassifier):
    """A fully connected net: [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden size, then Linear.

    A scikit-learn classifier, trained with softmax cross-entropy for ``epochs`` epochs of
    minibatches (one output per class, two for a binary problem). Hidden weights start with the
    activation's own init ("he" for the ReLU family, "xavier" for sigmoid and tanh).

    Parameters
    ----------
    hidden : int or sequence of int, default=(100,)
        The width of each hidden layer, >= 1; an int is one layer.
    activation : {"relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu"}, default="relu"
        The hidden layers' activation.
    dropout : float, default=0.0
        The dropout probability after each hidden activation, in [0, 1); 0 adds no Dropout layer.
    batchnorm : bool, default=False
        Whether a BatchNorm1d follows each hidden Linear.
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}, default="adam"
        The update rule (:func:`~gpunn.optim.make_optimizer`).
    lr : float, default=1e-3
        The learning rate, > 0.
    reg : float, default=1e-4
        The L2 strength lambda on the weights (not the biases), >= 0: the optimizer's weight decay
        (decoupled for "adamw").
    batch_size : int, default=64
        Rows per update.
    epochs : int, default=100
        Epochs to train (fewer with early stopping).
    validation_fraction : float, default=0.1
        The share of rows held out for early stopping, in [0, 1) (> 0 where ``early_stopping``).
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows (stratified where every class
        fits), stop after ``patience`` epochs without a lower validation loss and keep the best
        epoch's weights.
    patience : int, default=5
        Epochs without improvement before early stopping, >= 1.
    device : str, default="auto"
        Where the model trains and lives: "auto", "cpu", "cuda" or "cuda:N".
    precision : {"float32", "float64", "mixed"}, default="float32"
        The model's dtype (float32 scores of a row may differ in the last bits with the other rows
        predicted beside it), or "mixed": trained on a GPU in float16 with float32 master weights
        and dynamic loss scaling (see :class:`~gpunn.Trainer`), the fitted model float32; on the
        CPU "mixed" is a ValueError in ``fit``.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the weights, the training (each epoch's row order, dropout masks) and the validation
        split.
    progress : bool, default=False
        Whether to show a progress bar while training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of ``y``, sorted.
    model_ : gpunn.nn.Sequential
        The trained network, on ``device_``.
    history_ : History
        What training measured (:meth:`gpunn.Trainer.fit`'s).
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, where X was a DataFrame with string column names.
    device_ : Device
        Where the model lives; predictions run there.

    Examples
    --------
    Two blobs of 20 points, one hidden layer of 8 units, two epochs:

    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-2, 1, (20, 2)), rng.normal(2, 1, (20, 2))]).astype(np.float32)
    >>> y = np.repeat(["no", "yes"], 20)
    >>> clf = gn.MLPClassifier(hidden=8, epochs=2, batch_size=16, lr=0.05, device="cpu", random_state=0)
    >>> clf.fit(X, y).classes_, clf.n_iter_
    (array(['no', 'yes'], dtype='<U3'), 2)
    >>> clf.predict(np.array([[-2, -2], [2, 2]], np.float32))
    array(['no', 'yes'], dtype='<U3')
    >>> clf.predict_proba(np.array([[2, 2]], np.float32)).round(2)
    array([[0., 1.]])
    >>> clf.score(X, y)
    1.0
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

    A scikit-learn classifier. Weights start small (std 1e-3). ``coef_`` (n_classes, n_features)
    and ``intercept_`` (n_classes,) read W and b as scikit-learn's linear models do, with one
    row (``classes_[1]`` against ``classes_[0]``) for a binary problem; on the model's device.

    Parameters
    ----------
    loss : {"softmax", "svm"}, default="softmax"
        "softmax": cross-entropy, with ``predict_proba``; "svm": the multiclass hinge loss
        (delta = 1), scores only, as scikit-learn's hinge-loss classifiers.
    reg : float, default=1e-4
        The L2 strength lambda on W, >= 0: the optimizer's weight decay (decoupled for "adamw").
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}, default="adam"
        The update rule (:func:`~gpunn.optim.make_optimizer`).
    lr : float, default=0.02
        The learning rate, > 0.
    batch_size : int, default=200
        Rows per update.
    epochs : int, default=50
        Epochs to train (fewer with early stopping).
    validation_fraction : float, default=0.1
        The share of rows held out for early stopping, in [0, 1) (> 0 where ``early_stopping``).
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows (stratified where every class
        fits), stop after ``patience`` epochs without a lower validation loss and keep the best
        epoch's weights.
    patience : int, default=5
        Epochs without improvement before early stopping, >= 1.
    device : str, default="auto"
        Where the model trains and lives: "auto", "cpu", "cuda" or "cuda:N".
    precision : {"float32", "float64", "mixed"}, default="float32"
        The model's dtype (float32 scores of a row may differ in the last bits with the other rows
        predicted beside it), or "mixed": trained on a GPU in float16 with float32 master weights
        and dynamic loss scaling (see :class:`~gpunn.Trainer`), the fitted model float32; on the
        CPU "mixed" is a ValueError in ``fit``.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the weights, the training (each epoch's row order, dropout masks) and the validation
        split.
    progress : bool, default=False
        Whether to show a progress bar while training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of ``y``, sorted.
    model_ : gpunn.nn.Sequential
        The trained network, on ``device_``.
    history_ : History
        What training measured (:meth:`gpunn.Trainer.fit`'s).
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, where X was a DataFrame with string column names.
    device_ : Device
        Where the model lives; predictions run there.
    coef_ : array of shape (n_classes, n_features) or (1, n_features)
        W transposed (one row for two classes), on ``device_``.
    intercept_ : array of shape (n_classes,) or (1,)
        b (one value for two classes), on ``device_``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-2, 1, (20, 2)), rng.normal(2, 1, (20, 2))]).astype(np.float32)
    >>> y = np.repeat([0, 1], 20)
    >>> clf = gn.LinearClassifier(epochs=2, batch_size=16, device="cpu", random_state=0).fit(X, y)
    >>> clf.coef_.shape, clf.intercept_.shape, clf.score(X, y)
    ((1, 2), (1,), 1.0)
    >>> clf.decision_function(np.array([[-2, -2], [2, 2]], np.float32)) > 0
    array([False,  True])

    With the hinge loss there are scores but no probabilities:

    >>> svm = gn.LinearClassifier(loss="svm", epochs=2, batch_size=16, device="cpu", random_state=0).fit(X, y)
    >>> svm.predict(np.array([[2, 2]], np.float32)), hasattr(svm, "predict_proba")
    (array([1]), False)
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
