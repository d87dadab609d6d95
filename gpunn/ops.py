"""Every op gpunn computes with, by name: an index of ``gpunn.kernels``.

Layers, losses and optimizers call these and never ask which backend they run on. Each op is defined in
its family's file in ``kernels/`` (its ``xp`` reference, its CPU and CUDA kernels and their binding,
together); calling it runs the fused kernel for its first array's device where one applies, else the
reference (``op.reference``, what the kernels are tested against). ``active_kernels()`` says which.
"""

from .kernels.activations import (activation, activation_backward, bias_activation,  # noqa: F401
                                  bias_activation_backward)
from .kernels.conv_direct import conv_algorithm, conv_direct, conv_direct_param_grads  # noqa: F401
from .kernels.conv_epilogue import conv_bias_activation, conv_bias_activation_backward  # noqa: F401
from .kernels.dropout import dropout_backward, dropout_forward, dropout_keep, dropout_threshold  # noqa: F401
from .kernels.im2col import col2im, im2col, output_size  # noqa: F401
from .kernels.losses import fused_loss  # noqa: F401
from .kernels.matmul import matmul  # noqa: F401
from .kernels.op import REGISTRY, active_kernels, has_kernel, use_kernels  # noqa: F401
from .kernels.multi_tensor import nonfinite_check  # noqa: F401
from .kernels.optimizers import update_step  # noqa: F401
from .kernels.padding import pad_images  # noqa: F401
from .kernels.pooling import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward  # noqa: F401

__all__ = sorted(name for name in dir() if not name.startswith("_"))  # every op imported above
