"""Parameter: a trainable array and the gradient accumulated into it."""

from __future__ import annotations

from ..devices import ArrayHolder, device_of


class Parameter(ArrayHolder):
    """A trainable array ``data`` with its gradient ``grad`` (``None`` until a backward pass).

    ``decay`` says whether weight decay (L2 regularization) applies to it: true for
    weight matrices, false for biases and normalisation scales/shifts.

    In mixed precision (:meth:`gpunn.nn.Module.mixed_precision`) ``master`` holds the float32 weights, the
    truth that the optimizer updates, checkpoints save and training returns to, and ``data`` is their
    float16 copy that the layer computes with (and ``grad`` its float16 gradient). Otherwise ``master`` is
    None. :attr:`weights` is whichever is the truth.

    Parameters
    ----------
    data : ndarray
        The initial weights, a NumPy or CuPy array of any shape, kept as it is (not copied); the
        layers make it float32 on the CPU, and :meth:`gpunn.nn.Module.to` moves and casts it.
    decay : bool, default=True
        Whether weight decay applies (False for biases and normalisation parameters).

    Examples
    --------
    >>> w = gn.nn.Parameter(np.zeros((2, 3), np.float32))
    >>> w
    Parameter(shape=(2, 3), dtype=float32, device=cpu)
    >>> w.accumulate(np.ones((2, 3), np.float32))
    >>> w.accumulate(np.ones((2, 3), np.float32))
    >>> w.grad
    array([[2., 2., 2.],
           [2., 2., 2.]], dtype=float32)
    >>> w.zero_grad()
    >>> w.grad is None
    True
    """

    __slots__ = ("data", "grad", "decay", "master")

    def __init__(self, data, decay: bool = True):
        self.data = data
        self.grad = None
        self.decay = bool(decay)
        self.master = None

    @property
    def shape(self) -> tuple:
        """The weights' shape, a tuple of ints."""
        return tuple(self.data.shape)

    @property
    def dtype(self):
        """The dtype of ``data``, what the layer computes with (float16 in mixed precision)."""
        return self.data.dtype

    @property
    def device(self):
        """The :class:`~gpunn.devices.Device` that ``data`` lives on."""
        return device_of(self.data)

    @property
    def weights(self):
        """The weights themselves: the float32 ``master`` in mixed precision, else ``data``."""
        return self.data if self.master is None else self.master

    def assign(self, value) -> None:
        """Make ``value`` the weights: in mixed precision the master, and ``data`` its float16 copy.

        Parameters
        ----------
        value : ndarray
            The new weights, of the weights' shape and dtype, on their device; kept as it is (not
            copied). The gradient is left as it was.
        """
        if self.master is None:
            self.data = value
        else:
            self.master, self.data = value, value.astype(self.data.dtype)

    def accumulate(self, g) -> None:
        """Add ``g`` into ``grad``; the first gradient since :meth:`~gpunn.nn.Parameter.zero_grad` is taken as it is (no copy).

        Parameters
        ----------
        g : ndarray
            A gradient w.r.t. ``data``: its shape, dtype and device. Later gradients are added into it in
            place, so the caller must not reuse the first one's array.
        """
        if self.grad is None:
            self.grad = g
        else:
            self.grad += g

    def zero_grad(self) -> None:
        """Forget the gradient: ``grad`` becomes None, and the next :meth:`accumulate` starts it afresh."""
        self.grad = None

    def __repr__(self):
        mixed = "" if self.master is None else f", master={self.master.dtype}"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{mixed}, device={self.device})"
