"""Preprocessing fitted on training data: mean subtraction, standardization, PCA whitening.

Each transform is a scikit-learn transformer: it learns its statistics in ``fit`` (from
the training split only; ``y`` is accepted and ignored, for pipelines) and applies them
to any split with ``transform``; ``fit_transform``, ``get_feature_names_out`` and
``set_output`` come from scikit-learn. Statistics live on the device of the data they
were fitted on (NumPy or CuPy); ``transform`` computes on the device of its input and
returns the input's array type, moving the (small) statistics there if needed.
float32 input stays float32 and float64 stays float64; other numbers become float32.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .devices import array_module, device_of
from .estimator import check_matrix, check_X, keeps_state_on_failure, on_input_device
from .validation import check_int, check_number

__all__ = ["MeanSubtraction", "PCAWhitening", "Standardize"]


def _mover(X):
    """A function putting a fitted statistic on X's device, in X's dtype (a no-op where it already is)."""
    dev = device_of(X)
    return lambda stat: dev.asarray(stat, dtype=X.dtype)


class Transform(TransformerMixin, BaseEstimator):
    """Base of gpunn's transformers: scikit-learn's transformer, float32 and float64 kept as they come."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _checked(self, X):
        """X checked against the fit, and a function moving a statistic to X's device and dtype."""
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        return X, _mover(X)


class MeanSubtraction(OneToOneFeatureMixin, Transform):
    """``X - mean_``, the per-feature mean of the training data."""

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_`` (n_features,) from X (n_samples, n_features); returns ``self``."""
        X = check_X(self, X, reset=True)
        self.mean_ = X.mean(axis=0)
        return self

    @on_input_device
    def transform(self, X):
        X, here = self._checked(X)
        return X - here(self.mean_)


class Standardize(OneToOneFeatureMixin, Transform):
    """``(X - mean_) / std_`` per feature; constant features keep ``std_ = 1`` (they map to 0)."""

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_`` and ``std_`` (n_features,) from X (n_samples, n_features); returns ``self``."""
        X = check_X(self, X, reset=True)
        xp = array_module(X)
        std = X.std(axis=0)
        self.mean_ = X.mean(axis=0)
        self.std_ = xp.where(std > 0, std, xp.ones_like(std))
        return self

    @on_input_device
    def transform(self, X):
        X, here = self._checked(X)
        return (X - here(self.mean_)) / here(self.std_)

    @on_input_device
    def inverse_transform(self, X):
        """Undo :meth:`transform`: ``X * std_ + mean_``."""
        X, here = self._checked(X)
        return X * here(self.std_) + here(self.mean_)


class PCAWhitening(ClassNamePrefixFeaturesOutMixin, Transform):
    """Decorrelate and scale to unit variance: ``Z = (X - mean_) U / sqrt(S + eps)``.

    U are the principal directions (``components_``, (n_features, n_components), one
    direction per column, by decreasing variance) and S the variances along them
    (``explained_variance_``), from the training covariance (divided by n). ``n_components``
    keeps the leading directions (all by default); ``eps`` keeps directions of tiny variance
    from being blown up. With every component kept, ``inverse_transform`` recovers X.
    """

    def __init__(self, eps=1e-5, n_components=None):
        self.eps = eps
        self.n_components = n_components

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_``, ``components_`` and ``explained_variance_`` from X (n_samples, n_features)."""
        check_number("eps", self.eps, low=0)
        k = None if self.n_components is None else check_int("n_components", self.n_components, low=1)
        X = check_X(self, X, reset=True)
        xp = array_module(X)
        n, d = X.shape
        k = d if k is None else k
        if k > d:
            raise ValueError(f"n_components={k} is more than the {d} features of X")
        X64 = X.astype(np.float64)  # the covariance's small eigenvalues need the precision
        mean = X64.mean(axis=0)
        cov = (X64 - mean).T @ (X64 - mean) / n
        variances, vectors = xp.linalg.eigh(cov)  # ascending
        order = xp.argsort(variances)[::-1][:k]
        self.mean_ = mean
        self.explained_variance_ = xp.maximum(variances[order], 0)
        self.components_ = vectors[:, order]
        return self

    @property
    def _n_features_out(self):
        return self.components_.shape[1]

    def _scale(self, here):
        return 1 / (here(self.explained_variance_) + self.eps) ** 0.5

    @on_input_device
    def transform(self, X):
        X, here = self._checked(X)
        return ((X - here(self.mean_)) @ here(self.components_)) * self._scale(here)

    @on_input_device
    def inverse_transform(self, X):
        """Map whitened rows X (n_samples, n_components) back to the input space."""
        check_is_fitted(self)
        X = check_matrix(self, X)
        k = self.components_.shape[1]
        if X.shape[1] != k:
            raise ValueError(f"X has {X.shape[1]} features, but PCAWhitening.inverse_transform is expecting {k} "
                             "(the number of components) as input.")
        here = _mover(X)
        return (X / self._scale(here)) @ here(self.components_).T + here(self.mean_)

