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
    """One process: the whole batch, no communication (the Trainer's default).

    Attributes
    ----------
    rank : int
        This process's index, 0.
    size : int
        The number of processes, 1.
    is_root : bool
        Whether this process prints and writes files: True.

    Examples
    --------
    >>> solo = gn.distributed.Solo()
    >>> solo.rows(256), solo.size
    (slice(0, 256, None), 1)
    """

    rank, size, is_root = 0, 1, True

    def device_for(self, device: Device) -> Device:
        """The device this process trains on.

        Parameters
        ----------
        device : Device
            The device the Trainer was given.

        Returns
        -------
        Device
            ``device`` itself, for one process.
        """
        return device

    def start(self, model, X, y) -> None:
        """Before training: check that every process has the same data and model, and make their weights equal.

        Parameters
        ----------
        model : gpunn.nn.Module
            The model about to be trained.
        X : array
            This process's training rows (every process holds all of them).
        y : array
            Their labels.
        """

    def rows(self, n: int) -> slice:
        """The rows of a global batch of ``n`` rows this process takes.

        Parameters
        ----------
        n : int
            The global batch's rows.

        Returns
        -------
        slice
            A contiguous part of ``range(n)``: all of it, for one process.
        """
        return slice(0, n)

    def reduce(self, value, grads):
        """Sum ``value`` (this process's share of the batch loss) and ``grads`` over the processes, in place.

        Parameters
        ----------
        value : array
            This process's loss, scaled by its share of the batch (a 0-d array on the device).
        grads : list of array
            The parameters' gradients, summed in place.

        Returns
        -------
        array
            The batch loss: ``value`` itself, for one process.
        """
        return value

    def total(self, value: float) -> float:
        """A host number summed over the processes.

        Parameters
        ----------
        value : float
            This process's number.

        Returns
        -------
        float
            The sum: ``value`` itself, for one process.
        """
        return value

    def __repr__(self):
        return "Solo()"
