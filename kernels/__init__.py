"""The ops gpunn computes with, and their fused Numba kernels, installed as ``gpunn.kernels``.

One op family per file, each holding together its ops' references (plain ``xp`` code, the readable
definitions), their CPU (``numba.njit``) and CUDA (``numba.cuda.jit``) kernels, and the bindings that
check, allocate and launch:

- ``activations.py``: y = f(x), its backward, and f fused into an affine layer's bias add;
- ``dropout.py``: the mask from a counter-based hash, applied in one pass;
- ``optimizers.py``: SGD, Adagrad, RMSProp, Adam/AdamW updates in one pass per parameter;
- ``matmul.py``: every layer's matrix product (NumPy's BLAS on Numba's threads: ``blas_pool.py``);
- ``im2col.py``, ``conv_epilogue.py``, ``conv_direct.py``, ``padding.py``, ``pooling.py``: convolution
  and pooling of NCHW images;
- ``knn_l2.py``, ``knn_l1.py``, ``knn_ivf.py``, ``topk.py``, ``cluster_sums.py``: k-nearest neighbours'
  distances fused with each query's k-best selection, exact and through an inverted-file index
  (``simd.py`` holds the vectors these and the direct convolution share).

The mechanism is shared: ``op.py`` (an op and the one place that picks reference or kernel, by device
and size), ``launch.py`` (threads on the CPU, grids and streams on CUDA), ``checks.py`` (argument checks
and allocation), ``arrays.py`` (the one door back into gpunn: an array's namespace and device).
``GPUNN_KERNELS=0`` (or ``use_kernels(False)``) runs every op's reference.
"""

from . import (activations, cluster_sums, conv_direct, conv_epilogue, dropout, elementwise, im2col, knn_ivf, knn_l1,
               knn_l2, losses, matmul, multi_tensor, optimizers, padding, pooling, topk)
from .op import REGISTRY, active_kernels, has_kernel, use_kernels

__all__ = ["REGISTRY", "activations", "active_kernels", "cluster_sums", "conv_direct", "conv_epilogue", "dropout",
           "elementwise", "losses", "multi_tensor",
           "has_kernel", "im2col", "knn_ivf", "knn_l1", "knn_l2", "matmul", "optimizers", "padding", "pooling", "topk",
           "use_kernels"]
