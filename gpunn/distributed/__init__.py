"""Scale-out on engines users already run: data-parallel training over MPI.

:class:`Solo` is the one-process case every Trainer uses by default; :class:`MPIDataParallel`
(``Trainer(..., distributed=True)``, ``gpunn train --distributed`` under ``mpirun``) splits each
global batch across the processes of ``MPI.COMM_WORLD`` and sums their gradients with one
allreduce per step (NCCL through CuPy on GPUs where it is there, MPI otherwise).
"""

from .parallel import Solo

__all__ = ["MPIDataParallel", "Solo", "data_parallel"]


def data_parallel(distributed):
    """The Trainer's data-parallel seam: one process (False), MPI (True), or an object given by the caller.

    Parameters
    ----------
    distributed : bool, None or object
        False or None: :class:`Solo`; True: :class:`MPIDataParallel` over ``MPI.COMM_WORLD``; an
        object with ``rows``, ``reduce``, ``start``, ``total`` and ``device_for`` is used as it is.

    Returns
    -------
    Solo or MPIDataParallel or object
        What the Trainer calls at each step.

    Raises
    ------
    TypeError
        For anything else.

    Examples
    --------
    >>> gn.distributed.data_parallel(False)
    Solo()
    >>> gn.distributed.data_parallel("yes")
    Traceback (most recent call last):
        ...
    TypeError: distributed must be True, False or a gpunn.distributed object, got str
    """
    if distributed is False or distributed is None:
        return Solo()
    if distributed is True:
        from .mpi import MPIDataParallel

        return MPIDataParallel()
    if all(hasattr(distributed, m) for m in ("rows", "reduce", "start", "total", "device_for")):
        return distributed
    raise TypeError(f"distributed must be True, False or a gpunn.distributed object, got {type(distributed).__name__}")


def __getattr__(name):  # mpi4py is imported only when MPI is asked for
    if name == "MPIDataParallel":
        from .mpi import MPIDataParallel

        return MPIDataParallel
    raise AttributeError(name)
