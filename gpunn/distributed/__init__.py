"""Scale-out on engines users already run: data-parallel training over MPI.

:class:`Solo` is the one-process case every Trainer uses by default; :class:`MPIDataParallel`
(``Trainer(..., distributed=True)``, ``gpunn train --distributed`` under ``mpirun``) splits each
global batch across the processes of ``MPI.COMM_WORLD`` and sums their gradients with one
allreduce per step (NCCL through CuPy on GPUs where it is there, MPI otherwise).
"""

from .parallel import Solo

__all__ = ["MPIDataParallel", "Solo"]


def __getattr__(name):  # mpi4py is imported only when MPI is asked for
    if name == "MPIDataParallel":
        from .mpi import MPIDataParallel

        return MPIDataParallel
    raise AttributeError(name)
