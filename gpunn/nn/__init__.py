"""Layers (gates with forward/backward) and losses.

The activation gates are whatever ``activations.py`` defines (its ``__all__``); each registers itself in
:data:`ACTIVATIONS`, so a new one needs no line here.
"""

from . import activations
from .activations import *  # noqa: F401,F403 (every activation gate, ACTIVATIONS and activation_layer)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .convnet import three_layer_convnet
from .dropout import Dropout
from .flatten import Flatten
from .lambda_layer import FunctionLoss, Lambda
from .linear import Linear
from .losses import BinaryLogistic, Loss, MarginRanking, MulticlassHinge, SoftmaxCrossEntropy
from .maxout import Maxout
from .module import Module
from .parameter import Parameter
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .sequential import Sequential

__all__ = [
    *activations.__all__, "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "BinaryLogistic", "Conv2d", "Dropout",
    "Flatten", "FunctionLoss", "GlobalAvgPool2d", "Lambda", "Linear", "Loss", "MarginRanking", "MaxPool2d", "Maxout",
    "Module", "MulticlassHinge", "Parameter", "Sequential", "SoftmaxCrossEntropy", "three_layer_convnet",
]
