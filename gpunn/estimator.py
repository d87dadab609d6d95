"""Classifier: the scikit-learn conventions over a gpunn model and Trainer.

Hyperparameters are keyword arguments stored unchanged by ``__init__`` and checked
in ``fit``; ``fit`` returns ``self``; learned attributes end in ``_`` (``classes_``,
``model_``, ``history_``, ``n_features_in_``); ``predict``, ``predict_proba``, ``score``,
``get_params`` and ``set_params`` behave as in scikit-learn. A failed ``fit`` leaves a
previously fitted estimator as it was.
"""

from __future__ import annotations

import inspect

import numpy as np

from .data.splits import check_xy, train_val_split
from .optim.by_name import make_optimizer
from .trainer import Trainer
from .validation import check_finite, check_int, check_labels, check_number


class Estimator:
    """The scikit-learn parameter protocol: ``get_params``, ``set_params`` and a readable repr."""

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Estimator":
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


class Classifier(Estimator):
    """Base of the trained classifiers; subclasses define ``_build(n_features, n_classes, rng) -> (model, loss)``."""

    # ---------------------------------------------------------------- fitting
    def _build(self, n_features: int, n_classes: int, rng: np.random.Generator):
        raise NotImplementedError

    def fit(self, X, y) -> "Classifier":
        """Train on X (N, D) and integer labels y (N,); returns ``self``."""
        X, y = check_xy(X, y)
        check_finite("X", X)
        check_labels("y", y, X.shape[0], None)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has a single class ({classes[0]}); a classifier needs at least 2")
        fraction = check_number("validation_fraction", self.validation_fraction, low=0, high=1, high_open=True)
        rng = np.random.default_rng(self.random_state)
        model, loss = self._build(X.shape[1], len(classes), rng)
        optimizer = make_optimizer(self.optimizer, model.parameters(), check_number("lr", self.lr, low=0, low_open=True),
                                   check_number("reg", self.reg, low=0))
        early = getattr(self, "early_stopping", False)
        trainer = Trainer(model, loss, optimizer, batch_size=self.batch_size, epochs=self.epochs, device=self.device,
                          seed=int(rng.integers(2**31)), restore_best=fraction > 0,
                          patience=check_int("patience", self.patience, low=1) if early else None,
                          progress=getattr(self, "progress", False))
        if fraction > 0:
            X_tr, X_val, y_tr, y_val = train_val_split(X, y_index, fraction, seed=int(rng.integers(2**31)))
            trainer.fit(X_tr, y_tr, val=(X_val, y_val))
        else:
            if early:
                raise ValueError("early_stopping=True needs validation_fraction > 0")
            trainer.fit(X, y_index)
        self.classes_, self.n_features_in_, self.model_, self.history_ = classes, X.shape[1], model, trainer.history
        return self

    # ---------------------------------------------------------------- predicting
    def _check_X(self, X):
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first")
        X = np.asarray(X) if not hasattr(X, "shape") else X
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}) as in fit, got {tuple(X.shape)}")
        check_finite("X", X)
        return X

    def decision_function(self, X) -> np.ndarray:
        """Class scores (N, n_classes) as a NumPy array."""
        X = self._check_X(X)
        return self.model_.predict_scores(X).astype(np.float64)

    def predict(self, X) -> np.ndarray:
        """The predicted label of each row, from ``classes_``."""
        winners = self.decision_function(X).argmax(axis=1)  # before classes_: an unfitted model says so
        return self.classes_[winners]

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the scores: (N, n_classes), rows summing to 1, columns in ``classes_`` order."""
        s = self.decision_function(X)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def score(self, X, y) -> float:
        """Mean accuracy on (X, y)."""
        return float((self.predict(X) == np.asarray(y)).mean())
