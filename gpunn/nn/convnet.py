"""cs231n's three-layer ConvNet: conv - relu - 2x2 max pool - affine - relu - affine."""

from __future__ import annotations

from ..validation import check_int, check_number
from .activations import activation_layer
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d, pair
from .dropout import Dropout
from .flatten import Flatten
from .init import as_rng
from .linear import Linear
from .pooling import MaxPool2d
from .sequential import Sequential


def three_layer_convnet(input_shape=(3, 32, 32), n_classes: int = 10, num_filters: int = 32, filter_size: int = 7,
                        hidden: int = 100, batchnorm: bool = False, init="he", rng=None, activation: str = "relu",
                        dropout: float = 0.0) -> Sequential:
    """Conv2d(C, F, k, padding=(k - 1) // 2) - [BatchNorm2d] - ReLU - MaxPool2d(2) - Flatten
    - Linear(F H/2 W/2, hidden) - [BatchNorm1d] - ReLU - [Dropout] - Linear(hidden, n_classes).

    ``input_shape`` is one image's (C, H, W); an odd ``filter_size`` keeps H and W through the
    convolution, and the pool halves them (rounding down). cs231n's defaults: 32 filters of 7x7,
    100 hidden units. ``init`` ("he", "xavier" or a float std, as cs231n's ``weight_scale``) sets the
    conv and hidden weights; the last layer uses "xavier"; ``rng`` seeds them.
    ``activation`` (a name of :func:`~gpunn.nn.activation_layer`) replaces both ReLUs. ``dropout`` > 0
    drops hidden units after the affine layer's activation, where AlexNet and VGG put it (not after
    the convolution).

    Parameters
    ----------
    input_shape : tuple of int, default=(3, 32, 32)
        One image's (C, H, W): CIFAR-10's by default.
    n_classes : int, default=10
        Classes, the last layer's outputs; >= 2.
    num_filters : int, default=32
        Filters F of the convolution, >= 1.
    filter_size : int or tuple of int, default=7
        The filters' (kh, kw); an int k means (k, k). Odd sizes keep H and W.
    hidden : int, default=100
        Units of the hidden affine layer, >= 1.
    batchnorm : bool, default=False
        Whether to add BatchNorm2d after the convolution and BatchNorm1d after the hidden layer.
    init : {"he", "xavier"} or float, default="he"
        The conv and hidden weights' standard deviation (see :class:`~gpunn.nn.Linear`).
    rng : None, int or numpy.random.Generator, default=None
        An int seed or a Generator for reproducible weights (one stream for all layers); None for
        fresh entropy.
    activation : str, default="relu"
        The activation's name, a key of :data:`~gpunn.nn.ACTIVATIONS` ("relu", "tanh", "gelu", ...).
    dropout : float, default=0.0
        The probability of dropping each hidden unit, in [0, 1); 0 adds no Dropout layer.

    Returns
    -------
    Sequential
        The layers above, in float32 on the CPU; scores (N, n_classes) for images (N, C, H, W).

    Raises
    ------
    ValueError
        If ``input_shape`` is not three sizes, or is too small for the convolution and a 2x2 pool
        (H and W after the convolution must be at least 2); if a size is below its minimum,
        ``dropout`` is outside [0, 1), or ``activation`` is unknown.
    TypeError
        If a size is not an integer.

    Examples
    --------
    >>> net = gn.nn.three_layer_convnet(input_shape=(1, 8, 8), n_classes=3, num_filters=4, filter_size=3,
    ...                                 hidden=10, rng=0)
    >>> net
    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): ReLU()
      (2): MaxPool2d(kernel_size=(2, 2), stride=(2, 2))
      (3): Flatten()
      (4): Linear(64, 10)
      (5): ReLU()
      (6): Linear(10, 3)
    )
    >>> net.forward(np.zeros((2, 1, 8, 8))).shape
    (2, 3)
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be one image's (C, H, W), got {input_shape!r}")
    c, h, w = (check_int(f"input_shape[{i}]", v, low=1) for i, v in enumerate(input_shape))
    n_classes = check_int("n_classes", n_classes, low=2)
    f = check_int("num_filters", num_filters, low=1)
    kh, kw = pair("filter_size", filter_size, 1)
    hidden = check_int("hidden", hidden, low=1)
    p = check_number("dropout", dropout, low=0, high=1, high_open=True)
    activation_layer(activation)  # an unknown name is refused before any weight is drawn
    rng = as_rng(rng)
    conv = Conv2d(c, f, (kh, kw), padding=((kh - 1) // 2, (kw - 1) // 2), init=init, rng=rng)
    ho, wo = conv.output_shape(h, w)
    if ho < 2 or wo < 2:
        raise ValueError(f"input_shape {tuple(input_shape)} is too small for a convolution of {kh}x{kw} and a 2x2 pool")
    layers = [conv] + ([BatchNorm2d(f)] if batchnorm else []) + [activation_layer(activation), MaxPool2d(2), Flatten()]
    layers += [Linear(f * (ho // 2) * (wo // 2), hidden, init=init, rng=rng)] + ([BatchNorm1d(hidden)] if batchnorm else [])
    layers += [activation_layer(activation)] + ([Dropout(p)] if p > 0 else [])
    layers += [Linear(hidden, n_classes, init="xavier", rng=rng)]
    return Sequential(*layers)
