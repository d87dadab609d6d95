"""Layers (gates with forward/backward) and losses."""

from .activations import ACTIVATIONS, ELU, GELU, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Tanh, activation_layer
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
    "ACTIVATIONS", "GELU", "Identity", "Activation", "BatchNorm1d", "BinaryLogistic", "Dropout", "ELU", "Flatten", "FunctionLoss", "Lambda", "LeakyReLU",
    "Linear",
    "Loss", "MarginRanking", "Maxout", "Module", "MulticlassHinge", "Parameter", "ReLU", "Sequential",
    "Sigmoid", "SoftmaxCrossEntropy", "Tanh", "activation_layer",
    "AvgPool2d", "BatchNorm2d", "Conv2d", "GlobalAvgPool2d", "MaxPool2d", "three_layer_convnet",
]
