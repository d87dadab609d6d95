"""The training precision: which float dtypes a Trainer computes in, decided once and applied for each fit.

``"float32"`` and ``"float64"``: the model, its gradients and the optimizer's state in that dtype.
``"mixed"``: on a CUDA GPU, the policy of PyTorch's ``autocast`` with ``GradScaler`` (apex's "O2"): what
is float16 and what stays float32 is decided here and by the layers' dtype handling:

- float16: the layers' compute (each parameter's ``data`` is a float16 copy of its float32 ``master``),
  their inputs, activations and gradients; the GEMMs run on tensor cores and accumulate in float32;
- float32: the master weights and the optimizer's state (the truth: checkpoints save them, and ``fit``
  ends with them loaded back, so the model it returns is float32); the loss (softmax and its sums, in the
  fused loss kernel, from float16 scores); batchnorm (parameters, statistics and arithmetic); the sums of
  the kernels' reductions (bias gradients);
- the loss is scaled (``gpunn/loss_scaler.py``) so that small float16 gradients do not vanish.

On the CPU ``"mixed"`` is refused: NumPy has no fast float16 matrix product (it would be slower than
float32, and no CPU kernel takes float16).
"""

from __future__ import annotations

import contextlib

from .devices import TRAINING_PRECISIONS, Device
from .validation import check_choice

MIXED = "mixed"


def training_precision(precision, model, device: Device, processes: int = 1) -> str:
    """The precision a Trainer of ``model`` on ``device`` computes in: ``precision`` checked, nothing changed (None: the
    model's own dtype; "float32" or "float64": the Trainer casts the model to it).

    Raises
    ------
    ValueError
        ``precision`` not one of "float32", "float64", "mixed"; or "mixed" on the CPU, for a model that is
        not float32 (mixed precision keeps float32 masters), or under MPI with several processes; or a model
        already computing in mixed precision.
    """
    if model.mixed:  # the Trainer applies the policy itself, for the length of each fit
        raise ValueError("model computes in mixed precision already (mixed_precision() was called): give the Trainer "
                         "the float32 model and precision='mixed'")
    if precision is None:
        return model.dtype.name
    check_choice("precision", precision, TRAINING_PRECISIONS)
    if precision != MIXED:
        return precision
    if device.type != "cuda":
        raise ValueError(f"precision='mixed' needs a CUDA device, and the device is {device}: on the CPU NumPy has no "
                         "fast float16 matrix product (train in precision='float32' there)")
    dtypes = {m.dtype.name for m in model.modules()}
    if dtypes != {"float32"}:
        raise ValueError(f"precision='mixed' keeps float32 master weights, but the model is "
                         f"{' and '.join(sorted(dtypes))}: cast it to float32 first (model.to('float32'))")
    if processes > 1:
        raise ValueError(f"precision='mixed' is not supported with {processes} MPI processes yet (the gradients' "
                         "float16 sums across processes are not built): use precision='float32'")
    return precision


@contextlib.contextmanager
def computing_in(precision: str, model):
    """Within the block ``model`` computes in ``precision``: for "mixed", float16 copies of float32 masters
    (:meth:`~gpunn.nn.Module.mixed_precision`), back to float32 at the end however the block ends."""
    if precision != MIXED:
        yield model
        return
    model.mixed_precision(True)
    try:
        yield model
    finally:
        model.mixed_precision(False)

