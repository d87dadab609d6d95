"""Losses: softmax cross-entropy, multiclass hinge (SVM), binary logistic, margin ranking.

``forward(scores, y)`` returns the mean loss over the batch as a 0-d array of the
scores' namespace (``float(value)`` reads it; on a GPU that is the one sync).
``backward()`` returns the gradient w.r.t. the scores, same shape and device.
All are written in numerically stable form: no exponential of a large positive number.

float16 scores (a model computing in mixed precision) are computed in float32: the classification losses
read them in their fused kernel, the others cast them first. Within :meth:`Loss.scaled` the gradient is
multiplied by a loss scale read on the device (the mixed-precision Trainer's, ``gpunn/loss_scaler.py``).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from .. import ops
from ..devices import DEFAULT_DTYPE, adopt, array_module, device_of
from ..kernels import losses as loss_kernels
from ..validation import check_finite, check_labels, check_number


def _on_scores_device(forward):
    """``forward(self, scores, ...)`` run on the scores' device: :func:`~gpunn.devices.on_device`, one call on
    the CPU (a loss runs every step)."""

    @functools.wraps(forward)
    def run(self, scores, *args, **kwargs):
        if type(scores) is np.ndarray:
            return forward(self, scores, *args, **kwargs)
        with device_of(scores):
            return forward(self, scores, *args, **kwargs)

    return run


def _on_cache_device(grad):
    """``_grad(self)`` run on the device of what forward kept (``self._cache[0]``), one call on the CPU."""

    @functools.wraps(grad)
    def run(self):
        if type(self._cache[0]) is np.ndarray:
            return grad(self)
        with device_of(self._cache[0]):
            return grad(self)

    return run


class Loss:
    """Base of the losses: validates inputs, keeps what backward needs.

    ``checks`` (True): check that the scores are finite and the labels in range on every call.
    Those checks read the device (a GPU sync each). The :class:`~gpunn.Trainer` checks its labels
    once per ``fit`` and watches the loss for NaN on the device, so it turns them off while training.

    A loss is used in two calls: ``loss(scores, y)`` (:meth:`forward`) gives the mean loss over the
    batch and keeps what the gradient needs; :meth:`~gpunn.nn.Loss.backward` then gives the gradient w.r.t. the
    scores, to feed the model's backward pass. For a loss of one's own written with autograd, see
    :class:`FunctionLoss`.

    Examples
    --------
    >>> loss = gn.nn.SoftmaxCrossEntropy()
    >>> scores, y = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]), np.array([0, 1])
    >>> value = loss(scores, y)  # the mean loss, a 0-d array
    >>> round(float(value), 4)
    0.3185
    >>> loss.backward().shape  # d loss / d scores
    (2, 3)
    >>> loss(scores, np.array([0, 3]))
    Traceback (most recent call last):
    ...
    ValueError: y must be class indices in [0, 3), got values from 0 to 3
    """

    checks = True
    _scale = None  # within scaled(): a 1-element device array whose value multiplies the gradient
    folds_scale = False  # True where forward's fused kernel applies _scale itself
    takes_float16 = False  # True where forward computes float16 scores in float32 itself (its fused kernel)

    def __init_subclass__(cls, **kwargs):
        """A loss computes on its scores' device (see :func:`gpunn.devices.on_device`)."""
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _on_scores_device(cls.__dict__["forward"])
        if "_grad" in cls.__dict__:
            cls._grad = _on_cache_device(cls.__dict__["_grad"])

    def __init__(self):
        self._cache = None

    @contextlib.contextmanager
    def unchecked(self):
        """Within the block the per-call checks (finite scores, labels in range) are off; a caller that has
        checked its labels once and watches for NaN on the device saves a host read per call.

        Shapes and dtypes are still checked. On leaving the block ``checks`` is what it was.

        Yields
        ------
        Loss
            This loss, with ``checks`` False.
        """
        checks, self.checks = self.checks, False
        try:
            yield self
        finally:
            self.checks = checks

    @contextlib.contextmanager
    def scaled(self, scale):
        """Within the block :meth:`~gpunn.nn.Loss.backward`'s gradient is multiplied by ``scale[0]`` (read on the device: a loss
        scale that changes without a host write).

        The loss value itself is not scaled. Blocks nest: on leaving, the previous scale is back.

        Parameters
        ----------
        scale : ndarray or None
            A float32 array on the scores' device whose first element is the scale (the
            mixed-precision Trainer's loss scale); None: unscaled.

        Yields
        ------
        Loss
            This loss, scaling its gradients.
        """
        previous, self._scale = self._scale, scale
        try:
            yield self
        finally:
            self._scale = previous

    def __call__(self, scores, y=None):
        return self.forward(scores, y)

    def forward(self, scores, y):
        """The mean loss over the batch; keeps what :meth:`~gpunn.nn.Loss.backward` needs. ``loss(scores, y)`` is the same.

        Parameters
        ----------
        scores : ndarray
            The model's outputs, a NumPy or CuPy float array, N >= 1 rows, of the shape the loss
            takes: (N, C) class scores (:class:`SoftmaxCrossEntropy`, :class:`MulticlassHinge`), (N,) or
            (N, 1) (:class:`BinaryLogistic`), (N, 2) (:class:`MarginRanking`). float16 scores are
            computed in float32.
        y : ndarray or None
            The targets: (N,) integer class labels in [0, C) for the class losses, 0/1 for
            :class:`BinaryLogistic`, +1/-1 or None for :class:`MarginRanking`. NumPy labels are moved
            to the scores' device; a list is read with ``np.asarray``.

        Returns
        -------
        ndarray
            The mean loss over the batch, a 0-d array on the scores' device (a NumPy scalar where
            NumPy's mean gives one); ``float(value)`` reads it.

        Raises
        ------
        NotImplementedError
            Here, on the base: each loss defines its own forward. The built-in losses raise
            ``ValueError`` for scores of the wrong shape, an empty batch, and (where ``checks``) NaN or
            infinite scores and labels out of range; ``TypeError`` for missing or non-integer labels.
        """
        raise NotImplementedError

    def backward(self, dout=1.0):
        """Gradient of ``dout * loss`` w.r.t. the scores of the last forward call.

        Within :meth:`scaled` the gradient is multiplied by the loss scale too.

        Parameters
        ----------
        dout : float, default=1.0
            The upstream gradient, the derivative of the final objective w.r.t. this loss (1 when the
            loss is the objective).

        Returns
        -------
        ndarray
            d(dout * loss)/d(scores): the shape, dtype and device of the last forward's scores (for
            float16 scores, float16 from the class losses' fused kernel, float32 from the losses that
            cast the scores first).

        Raises
        ------
        RuntimeError
            If there was no forward call before.
        ValueError
            If ``dout`` is NaN.
        TypeError
            If ``dout`` is not a real number.
        """
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        dout = check_number("dout", dout)
        grad = self._grad()
        if self._scale is not None and not self.folds_scale:
            grad = grad * self._scale[:1].astype(grad.dtype, copy=False)
        return grad if dout == 1.0 else grad * grad.dtype.type(dout)

    def _grad(self):
        raise NotImplementedError

    # ---------------------------------------------------------------- input checks
    def _scores(self, scores, shape_desc: str, ok) -> object:
        """Float scores on their own device, non-empty, finite (where ``checks``), and of a shape ``ok`` accepts."""
        if not hasattr(scores, "shape"):
            raise TypeError(f"scores must be an array of shape {shape_desc}, got {type(scores).__name__}")
        if type(scores) is not np.ndarray or scores.dtype.kind != "f":
            scores = adopt(scores, device_of(scores), "scores")
        if scores.dtype.kind != "f" or (scores.dtype == np.float16 and not self.takes_float16):
            scores = scores.astype(DEFAULT_DTYPE)
        if not ok(scores.shape):
            raise ValueError(f"scores must have shape {shape_desc}, got {tuple(scores.shape)}")
        if scores.shape[0] == 0:
            raise ValueError("scores is an empty batch (0 rows)")
        if self.checks:
            check_finite("scores", scores)
        return scores

    def _labels(self, y, scores, classes: int | None, name: str = "y"):
        """Integer labels (in [0, classes) where ``checks``), one per row of ``scores``, on the scores' device."""
        if y is None:
            raise TypeError(f"{name} (the labels) is required")
        if not hasattr(y, "dtype"):
            y = np.asarray(y)  # a list of labels: checked on the host, then moved
        check_labels(name, y, scores.shape[0], classes if self.checks else None)  # on y's device: host labels, no sync
        if type(y) is np.ndarray and type(scores) is np.ndarray:
            return y
        return adopt(y, device_of(scores), name)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ClassScores(Loss):
    """A loss on class scores (N, C) and integer labels, computed with its gradient and the correct count in one
    pass: ``value_and_grad`` is the formula in ``xp`` code, ``kernels`` the same in one kernel per batch
    (``gpunn/kernels/losses.py``). After ``forward``, ``correct`` holds how many rows' top score (the first, on
    ties) is their label, a 0-d int64 array on the scores' device (the Trainer's accuracy, with no extra pass)."""

    kernels = None
    folds_scale = takes_float16 = True

    def forward(self, scores, y):
        s = self._scores(scores, "(N, C)", lambda sh: len(sh) == 2 and sh[1] >= 1)
        y = self._labels(y, s, s.shape[1])
        loss, grad, self.correct = ops.fused_loss(s, y, self, self._scale)
        self._cache = (grad,)
        return loss

    def _grad(self):
        return self._cache[0]

    def kernel_numbers(self, dtype) -> tuple:
        """The loss's own numbers its kernel reads, in ``dtype``: none for softmax cross-entropy, ``(delta,)``
        for the multiclass hinge.

        Parameters
        ----------
        dtype : numpy.dtype
            The scores' dtype as the kernel computes it (float32 or float64).

        Returns
        -------
        tuple of numpy scalars
            The numbers, each a scalar of ``dtype``, in the order the kernel reads them.
        """
        return ()

    @staticmethod
    def _correct(scores, y):
        return (scores.argmax(axis=1) == y).sum()


class SoftmaxCrossEntropy(_ClassScores):
    """Mean of -log softmax(s)_y over the batch; scores (N, C), integer labels y (N,).

    The gradient w.r.t. the scores is (softmax(s) - onehot(y)) / N. Computed in one fused pass with
    the gradient and the number of correct rows (``correct``, a 0-d int64 array, after each forward).

    Examples
    --------
    >>> loss = gn.nn.SoftmaxCrossEntropy()
    >>> scores, y = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]), np.array([0, 1])
    >>> loss(scores, y)
    array(0.3185)
    >>> loss.backward()  # softmax(s) - onehot(y), over N = 2
    array([[-0.1705,  0.1212,  0.0493],
           [ 0.0543, -0.0988,  0.0445]])
    >>> int(loss.correct)  # both rows' top score is their label
    2
    """

    kernels = loss_kernels.SOFTMAX_CROSS_ENTROPY

    def value_and_grad(self, s, y):
        """(mean loss, its gradient (softmax(s) - onehot(y)) / N, correct count), in xp code.

        The formula the fused kernel computes, and what it is tested against.

        Parameters
        ----------
        s : ndarray of shape (N, C)
            Float scores (NumPy or CuPy).
        y : ndarray of shape (N,)
            Integer labels in [0, C), on the scores' device.

        Returns
        -------
        loss : scalar or 0-d ndarray
            The mean loss, in the scores' dtype.
        grad : ndarray of shape (N, C)
            Its gradient w.r.t. ``s``, in the scores' dtype.
        correct : scalar or 0-d ndarray
            How many rows' top score (the first, on ties) is their label, an int64.
        """
        xp = array_module(s)
        shifted = s - s.max(axis=1, keepdims=True)  # the largest score becomes 0: exp never overflows
        log_z = xp.log(xp.exp(shifted).sum(axis=1))
        rows = xp.arange(s.shape[0])
        loss = (log_z - shifted[rows, y]).mean()
        d = xp.exp(shifted - log_z[:, None])  # the probabilities
        d[rows, y] -= 1
        return loss, d / d.dtype.type(d.shape[0]), self._correct(s, y)


class MulticlassHinge(_ClassScores):
    """Multiclass SVM loss: mean over the batch of sum_{j != y} max(0, s_j - s_y + delta).

    Scores (N, C), integer labels y (N,). Each class j != y whose margin is violated
    (s_j - s_y + delta > 0) gets gradient +1 / N, and the label's score -1 / N for each of them.
    ``correct`` holds how many rows' top score is their label after each forward.

    Parameters
    ----------
    delta : float, default=1.0
        The margin the label's score should clear the others by, >= 0.

    Raises
    ------
    ValueError
        If ``delta`` is negative or NaN.
    TypeError
        If ``delta`` is not a number.

    Examples
    --------
    >>> loss = gn.nn.MulticlassHinge(delta=1.0)
    >>> scores, y = np.array([[3.0, 1.0, 2.5], [0.0, 2.0, 1.5]]), np.array([0, 2])
    >>> loss(scores, y)  # row 0: 2.5 - 3 + 1; row 1: 2 - 1.5 + 1; averaged
    array(1.)
    >>> loss.backward()
    array([[-0.5,  0. ,  0.5],
           [ 0. ,  0.5, -0.5]])
    """

    kernels = loss_kernels.MULTICLASS_HINGE

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = check_number("delta", delta, low=0)

    def value_and_grad(self, s, y):
        """(mean loss, its gradient, correct count), in xp code: each violating class j gets +1 / N, the label
        -1 / N for each of them.

        The formula the fused kernel computes, and what it is tested against.

        Parameters
        ----------
        s : ndarray of shape (N, C)
            Float scores (NumPy or CuPy).
        y : ndarray of shape (N,)
            Integer labels in [0, C), on the scores' device.

        Returns
        -------
        loss : scalar or 0-d ndarray
            The mean loss, in the scores' dtype.
        grad : ndarray of shape (N, C)
            Its gradient w.r.t. ``s``, in the scores' dtype.
        correct : scalar or 0-d ndarray
            How many rows' top score (the first, on ties) is their label, an int64.
        """
        xp = array_module(s)
        rows = xp.arange(s.shape[0])
        margins = xp.maximum(0, s - s[rows, y][:, None] + s.dtype.type(self.delta))
        margins[rows, y] = 0
        d = (margins > 0).astype(margins.dtype)
        d[rows, y] = -d.sum(axis=1)  # the correct class is pushed once for each violating class
        n = s.dtype.type(s.shape[0])
        return margins.sum() / n, d / n, self._correct(s, y)

    def kernel_numbers(self, dtype) -> tuple:
        return (dtype.type(self.delta),)

    def __repr__(self):
        return f"MulticlassHinge(delta={self.delta})"


class BinaryLogistic(Loss):
    """Sigmoid + binary cross-entropy on one output unit: scores (N,) or (N, 1), labels 0/1.

    The mean over the batch of -log sigmoid(s) where y = 1 and -log(1 - sigmoid(s)) where y = 0,
    computed as ``max(s, 0) - s y + log(1 + exp(-|s|))``, which never overflows. The gradient w.r.t. the
    scores is (sigmoid(s) - y) / N, in the scores' shape.

    Examples
    --------
    >>> loss = gn.nn.BinaryLogistic()
    >>> scores, y = np.array([2.0, -1.0, 0.0]), np.array([1, 0, 1])
    >>> round(float(loss(scores, y)), 4)
    0.3778
    >>> loss.backward()  # (sigmoid(s) - y) / 3
    array([-0.0397,  0.0896, -0.1667])
    """

    def forward(self, scores, y):
        s = self._scores(scores, "(N,) or (N, 1)", lambda sh: len(sh) == 1 or (len(sh) == 2 and sh[1] == 1))
        y = self._labels(y, s, 2)
        xp = array_module(s)
        flat = s.reshape(-1)
        t = y.astype(s.dtype)
        # -log sigmoid(s) for y=1, -log(1 - sigmoid(s)) for y=0, as max(s, 0) - s y + log(1 + e^-|s|)
        loss = (xp.maximum(flat, 0) - flat * t + xp.log1p(xp.exp(-xp.abs(flat)))).mean()
        self._cache = (flat, t, s.shape)
        return loss

    def _grad(self):
        flat, t, shape = self._cache
        xp = array_module(flat)
        prob = 0.5 * xp.tanh(0.5 * flat) + 0.5  # sigmoid, overflow-free
        return ((prob - t) / flat.dtype.type(flat.shape[0])).reshape(shape)


class MarginRanking(Loss):
    """Max-margin ranking: mean of max(0, delta - y (s_a - s_b)) over pairs.

    ``scores`` is (N, 2): column 0 is s_a, column 1 is s_b. ``y`` (N,) holds +1 where
    a should outrank b and -1 where b should outrank a; ``y=None`` means a is always
    the positive, giving the max-margin objective max(0, delta + s_neg - s_pos). With ``checks``,
    labels other than +1 and -1 are a ``ValueError``. The gradient is -y / N for s_a and +y / N for
    s_b on the pairs whose margin is violated, 0 elsewhere.

    Parameters
    ----------
    delta : float, default=1.0
        The margin by which the right score should win, >= 0.

    Raises
    ------
    ValueError
        If ``delta`` is negative or NaN.
    TypeError
        If ``delta`` is not a number.

    Examples
    --------
    >>> loss = gn.nn.MarginRanking(delta=1.0)
    >>> scores = np.array([[1.5, 0.8], [0.3, 0.8]])  # (s_a, s_b) per pair
    >>> round(float(loss(scores)), 4)  # (0.3 + 1.5) / 2: a should win by 1 in both
    0.9
    >>> loss.backward()
    array([[-0.5,  0.5],
           [-0.5,  0.5]])
    >>> round(float(loss(scores, np.array([1, -1]))), 4)  # pair 1: b should win, and does by 0.5
    0.4
    """

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = check_number("delta", delta, low=0)

    def forward(self, scores, y=None):
        s = self._scores(scores, "(N, 2)", lambda sh: len(sh) == 2 and sh[1] == 2)
        xp = array_module(s)
        if y is None:
            sign = xp.ones(s.shape[0], dtype=s.dtype)
        else:
            labels = self._labels(y, s, None)
            if self.checks and not bool(((labels == 1) | (labels == -1)).all()):
                raise ValueError("y must hold +1 (column 0 should rank higher) or -1 (column 1 should), got other values")
            sign = labels.astype(s.dtype)
        margin = s.dtype.type(self.delta) - sign * (s[:, 0] - s[:, 1])
        active = margin > 0
        self._cache = (active, sign)
        return xp.maximum(margin, 0).mean()

    def _grad(self):
        active, sign = self._cache
        xp = array_module(sign)
        g = active.astype(sign.dtype) * sign / sign.dtype.type(sign.shape[0])
        return xp.stack([-g, g], axis=1)

    def __repr__(self):
        return f"MarginRanking(delta={self.delta})"
