"""gpunn: neural networks and classic classifiers, cs231n style, on NumPy (CPU) or CuPy (CUDA).

    import gpunn as gn
    dev = gn.device("auto")
    model = gn.nn.Sequential(gn.nn.Linear(3072, 100), gn.nn.ReLU(), gn.nn.Linear(100, 10)).to(dev)
"""

from . import autograd, checkpoint, cli, data, gradcheck, lessons, neighbors, nn, ops, optim, plots, preprocessing
from .classifiers import LinearClassifier, MLPClassifier
from .devices import Device, cuda_available, cuda_unavailable_reason, device, device_of, to_numpy
from .history import History
from .kernels.matmul import get_matmul_precision, set_matmul_precision
from .loss_scaler import LossScaler
from .neighbors import KNeighborsClassifier
from .trainer import Trainer, TrainingDiverged

__version__ = "0.2.0"

__all__ = [
    "Device", "History", "KNeighborsClassifier", "LinearClassifier", "LossScaler", "MLPClassifier", "Trainer",
    "TrainingDiverged", "autograd", "cli", "cuda_available", "cuda_unavailable_reason", "data", "device", "device_of",
    "get_matmul_precision", "gradcheck", "lessons", "neighbors", "nn", "ops", "optim", "plots", "preprocessing",
    "set_matmul_precision", "to_numpy", "checkpoint",
]
