"""Datasets: CIFAR-10 and MNIST from their files, the embedded 8x8 digits, spirals, and splits.

Nothing here downloads: the loaders read files you already have.
"""

from .by_name import DATASETS, IMAGE_SHAPES, load_dataset
from .cifar10 import load_cifar10
from .digits import load_digits
from .mnist import load_mnist
from .splits import Split, train_val_split
from .spiral import make_spiral

__all__ = ["DATASETS", "IMAGE_SHAPES", "Split", "load_dataset", "load_cifar10", "load_digits", "load_mnist", "make_spiral", "train_val_split"]
