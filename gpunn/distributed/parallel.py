"""Solo: the Trainer's seam to data parallelism, for the one-process case (it does nothing).

The Trainer calls these at fixed points of every step; a data-parallel implementation
(:class:`~gpunn.distributed.mpi.MPIDataParallel`) overrides them. Each global batch of ``n``
rows is split in contiguous parts, one per process; each process scales its loss by its
share of the rows, so that summing the processes' gradients gives the gradient of the
mean loss over the whole batch, exactly the one-process computation (up to summation order).
"""

from __future__ import annotations

from ..devices import Device


class Solo:
    """One process: the whole batch, no communication."""

    rank, size, is_root = 0, 1, True

    def device_for(self, device: Device) -> Device:
        """The device this process trains on."""
        return device

    def start(self, model, X, y) -> None:
        """Before training: check that every process has the same data and model, and make their weights equal."""

    def rows(self, n: int) -> slice:
        """The rows of a global batch of ``n`` rows this process takes."""
        return slice(0, n)

    def reduce(self, value, grads):
        """Sum ``value`` (this process's share of the batch loss) and ``grads`` over the processes, in place.

        Returns the batch loss. One process: nothing to add.
        """
        return value

    def total(self, value: float) -> float:
        """A host number summed over the processes."""
        return value

    def __repr__(self):
        return "Solo()"
