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
    """Subtract the per-feature mean of the training data: ``X - mean_``.

    Attributes
    ----------
    mean_ : array
        (n_features,) the training rows' mean, on their device.
    n_features_in_ : int
        The number of features seen by :meth:`fit`.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    >>> centre = gn.preprocessing.MeanSubtraction().fit(X)
    >>> centre.mean_
    array([2., 4.], dtype=float32)
    >>> centre.transform(X)
    array([[-1., -2.],
           [ 1.,  2.]], dtype=float32)
    """

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_`` from the training rows ``X``.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) training rows: NumPy or CuPy, float32 or float64 kept as they
            come, other numbers become float32.
        y : None, default=None
            Ignored (accepted for scikit-learn's pipelines).

        Returns
        -------
        MeanSubtraction
            ``self``, fitted; its statistics on ``X``'s device.

        Raises
        ------
        ValueError
            If ``X`` is not a 2-D matrix of finite numbers with at least one row; a failed fit
            leaves the fitted state as it was.
        """
        X = check_X(self, X, reset=True)
        self.mean_ = X.mean(axis=0)
        return self

    @on_input_device
    def transform(self, X):
        """Subtract the training mean from ``X``.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) rows with as many features as the fit saw, on any device.

        Returns
        -------
        array
            ``X - mean_``, in ``X``'s array type and float dtype.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If ``X`` has another number of features than the fit saw.
        """
        X, here = self._checked(X)
        return X - here(self.mean_)


class Standardize(OneToOneFeatureMixin, Transform):
    """Standardize each feature by the training data's statistics: ``(X - mean_) / std_``.

    A constant feature keeps ``std_ = 1`` (it maps to 0 rather than to NaN).

    Attributes
    ----------
    mean_ : array
        (n_features,) the training rows' mean, on their device.
    std_ : array
        (n_features,) their standard deviation (divided by n), 1 where it is 0.
    n_features_in_ : int
        The number of features seen by :meth:`fit`.

    Examples
    --------
    >>> X = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> scale = gn.preprocessing.Standardize().fit(X)
    >>> scale.transform(X)
    array([[-1.,  0.],
           [ 1.,  0.]])
    >>> scale.inverse_transform(scale.transform(X))
    array([[1., 5.],
           [3., 5.]])
    """

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_`` and ``std_`` from the training rows ``X``.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) training rows: NumPy or CuPy, float32 or float64 kept as they
            come, other numbers become float32.
        y : None, default=None
            Ignored (accepted for scikit-learn's pipelines).

        Returns
        -------
        Standardize
            ``self``, fitted; its statistics on ``X``'s device.

        Raises
        ------
        ValueError
            If ``X`` is not a 2-D matrix of finite numbers with at least one row; a failed fit
            leaves the fitted state as it was.
        """
        X = check_X(self, X, reset=True)
        xp = array_module(X)
        std = X.std(axis=0)
        self.mean_ = X.mean(axis=0)
        self.std_ = xp.where(std > 0, std, xp.ones_like(std))
        return self

    @on_input_device
    def transform(self, X):
        """Standardize ``X`` with the training statistics.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) rows with as many features as the fit saw, on any device.

        Returns
        -------
        array
            ``(X - mean_) / std_``, in ``X``'s array type and float dtype.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If ``X`` has another number of features than the fit saw.
        """
        X, here = self._checked(X)
        return (X - here(self.mean_)) / here(self.std_)

    @on_input_device
    def inverse_transform(self, X):
        """Undo :meth:`transform`: ``X * std_ + mean_``.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) rows with as many features as the fit saw, on any device.

        Returns
        -------
        array
            The rows in the input's units, in ``X``'s array type and float dtype.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If ``X`` has another number of features than the fit saw.
        """
        X, here = self._checked(X)
        return X * here(self.std_) + here(self.mean_)


class PCAWhitening(ClassNamePrefixFeaturesOutMixin, Transform):
    """Decorrelate and scale to unit variance: ``Z = (X - mean_) U / sqrt(S + eps)``.

    U are the principal directions (``components_``, one direction per column, by decreasing
    variance) and S the variances along them (``explained_variance_``), from the training
    covariance (divided by n, computed in float64). With every component kept,
    :meth:`inverse_transform` recovers X.

    Parameters
    ----------
    eps : float, default=1e-05
        Added to each variance before the square root, so that directions of tiny variance are
        not blown up; at least 0.
    n_components : int, default=None
        Keep this many leading directions (at most the number of features); None keeps all.

    Attributes
    ----------
    mean_ : array
        (n_features,) float64 training mean.
    components_ : array
        (n_features, n_components) the principal directions, one per column.
    explained_variance_ : array
        (n_components,) the variance along each, decreasing.
    n_features_in_ : int
        The number of features seen by :meth:`fit`.

    Examples
    --------
    >>> mix = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.1]])
    >>> X = np.random.default_rng(0).standard_normal((500, 3)) @ mix   # correlated
    >>> white = gn.preprocessing.PCAWhitening().fit(X)
    >>> Z = white.transform(X)
    >>> np.allclose(np.cov(Z.T, bias=True), np.eye(3), atol=1e-3)
    True
    >>> np.allclose(white.inverse_transform(Z), X)
    True
    >>> gn.preprocessing.PCAWhitening(n_components=2).fit(X).transform(X).shape
    (500, 2)
    """

    def __init__(self, eps=1e-5, n_components=None):
        self.eps = eps
        self.n_components = n_components

    @keeps_state_on_failure
    @on_input_device
    def fit(self, X, y=None):
        """Learn ``mean_``, ``components_`` and ``explained_variance_`` from the training rows ``X``.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) training rows: NumPy or CuPy, float32 or float64 kept as they
            come, other numbers become float32.
        y : None, default=None
            Ignored (accepted for scikit-learn's pipelines).

        Returns
        -------
        PCAWhitening
            ``self``, fitted; its statistics on ``X``'s device.

        Raises
        ------
        ValueError
            If ``X`` is not a 2-D matrix of finite numbers with at least one row; a failed fit
            leaves the fitted state as it was. Also if ``n_components`` exceeds the features
            or ``eps`` is negative.
        TypeError
            If ``eps`` or ``n_components`` is not a number.
        """
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
        """Whiten ``X``: project on the kept directions and scale each to unit variance.

        Parameters
        ----------
        X : array_like
            (n_samples, n_features) rows with as many features as the fit saw, on any device.

        Returns
        -------
        array
            (n_samples, n_components) whitened rows, in ``X``'s array type and float dtype.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If ``X`` has another number of features than the fit saw.
        """
        X, here = self._checked(X)
        return ((X - here(self.mean_)) @ here(self.components_)) * self._scale(here)

    @on_input_device
    def inverse_transform(self, X):
        """Map whitened rows back to the input space (exactly, where every component was kept).

        Parameters
        ----------
        X : array_like
            (n_samples, n_components) whitened rows, on any device.

        Returns
        -------
        array
            (n_samples, n_features) rows in the input's units, in ``X``'s array type.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If ``X`` does not have ``n_components`` columns.
        """
        check_is_fitted(self)
        X = check_matrix(self, X)
        k = self.components_.shape[1]
        if X.shape[1] != k:
            raise ValueError(f"X has {X.shape[1]} features, but PCAWhitening.inverse_transform is expecting {k} "
                             "(the number of components) as input.")
        here = _mover(X)
        return (X / self._scale(here)) @ here(self.components_).T + here(self.mean_)

