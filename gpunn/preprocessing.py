"""Preprocessing fitted on training data: mean subtraction, standardization, PCA whitening.

Each transform learns its statistics in ``fit`` (from the training split only) and
applies them to any split with ``transform``. Statistics live on the device of the
data they were fitted on, and transforms run there too (NumPy or CuPy).
"""

from __future__ import annotations

import numpy as np

from .devices import array_module, device_of
from .validation import check_array, check_finite, check_int, check_number


def _matrix(X, name: str = "X"):
    """X as a finite floating-point (N, D) matrix on its own device (float64 input stays float64)."""
    X = check_array(name, X)
    if X.dtype.kind != "f":
        X = X.astype(np.float32)
    check_finite(name, X)
    return X


class Transform:
    """Base: ``fit(X)`` returns self, ``transform(X)``, ``fit_transform(X)``."""

    def fit(self, X):
        raise NotImplementedError

    def transform(self, X):
        raise NotImplementedError

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def _checked(self, X, attr: str):
        if not hasattr(self, attr):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(X_train) first")
        X = _matrix(X)
        width = getattr(self, attr).shape[0]
        if X.shape[1] != width:
            raise ValueError(f"X has {X.shape[1]} features, {type(self).__name__} was fitted on {width}")
        if device_of(X) != device_of(getattr(self, attr)):
            raise ValueError(f"X is on {device_of(X)}, {type(self).__name__} was fitted on {device_of(getattr(self, attr))}")
        return X


class MeanSubtraction(Transform):
    """X - mean_, the per-feature mean of the training data."""

    def fit(self, X):
        X = _matrix(X)
        self.mean_ = X.mean(axis=0)
        return self

    def transform(self, X):
        X = self._checked(X, "mean_")
        return X - self.mean_.astype(X.dtype, copy=False)


class Standardize(Transform):
    """(X - mean_) / std_ per feature; constant features keep std_ = 1 (they map to 0)."""

    def fit(self, X):
        X = _matrix(X)
        xp = array_module(X)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.std_ = xp.where(std > 0, std, xp.ones_like(std))
        return self

    def transform(self, X):
        X = self._checked(X, "mean_")
        return (X - self.mean_.astype(X.dtype, copy=False)) / self.std_.astype(X.dtype, copy=False)

    def inverse_transform(self, Z):
        Z = self._checked(Z, "mean_")
        return Z * self.std_.astype(Z.dtype, copy=False) + self.mean_.astype(Z.dtype, copy=False)


class PCAWhitening(Transform):
    """Decorrelate and scale to unit variance: Z = (X - mean_) U / sqrt(S + eps).

    U are the principal directions (``components_``, columns, by decreasing variance)
    and S the variances along them (``explained_variance_``), from the training
    covariance. ``n_components`` keeps the leading directions (all by default);
    ``eps`` keeps directions of tiny variance from being blown up. With every
    component kept, ``inverse_transform`` recovers X exactly.
    """

    def __init__(self, eps: float = 1e-5, n_components: int | None = None):
        self.eps = check_number("eps", eps, low=0)
        self.n_components = None if n_components is None else check_int("n_components", n_components, low=1)

    def fit(self, X):
        X = _matrix(X)
        xp = array_module(X)
        n, d = X.shape
        k = d if self.n_components is None else self.n_components
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

    def transform(self, X):
        X = self._checked(X, "mean_")
        scale = 1 / (self.explained_variance_ + self.eps) ** 0.5
        return (((X - self.mean_) @ self.components_) * scale).astype(X.dtype, copy=False)

    def inverse_transform(self, Z):
        if not hasattr(self, "components_"):
            raise RuntimeError("PCAWhitening is not fitted yet: call fit(X_train) first")
        Z = _matrix(Z, "Z")
        if Z.shape[1] != self.components_.shape[1]:
            raise ValueError(f"Z has {Z.shape[1]} columns, PCAWhitening keeps {self.components_.shape[1]} components")
        scale = (self.explained_variance_ + self.eps) ** 0.5
        return ((Z * scale) @ self.components_.T + self.mean_).astype(Z.dtype, copy=False)
