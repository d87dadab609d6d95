"""Update rules, learning-rate schedules and gradient-free baselines."""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .by_name import OPTIMIZERS, make_optimizer
from .optimizer import Optimizer
from .rmsprop import RMSProp
from .schedules import CosineAnnealing, ExponentialDecay, LRSchedule, StepDecay
from .search import RandomLocalSearch, RandomSearch
from .sgd import SGD

__all__ = [
    "SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealing", "ExponentialDecay", "LRSchedule", "Optimizer",
    "OPTIMIZERS", "RMSProp", "RandomLocalSearch", "RandomSearch", "StepDecay", "make_optimizer",
]
