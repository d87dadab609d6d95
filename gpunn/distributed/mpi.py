"""MPIDataParallel: data-parallel training over MPI (mpi4py), with NCCL through CuPy on GPUs.

Launched as ``mpirun -n P python ...`` (or ``srun``): every process holds the data, builds the
same model and runs the same loop; each step it takes its contiguous part of the global batch,
and the processes' gradients (with the batch loss, so that every process sees the same loss and
the same divergence flag) are summed with one allreduce. The optimizer then steps identically
everywhere. What is sent per step: one buffer of (number of parameters + 1) values, in the
parameters' dtype (3072-100-10: 308,311 float32, 1.2 MB; 3072-1024-10: 3,157,003, 12.6 MB).
"""

from __future__ import annotations

import numpy as np

from ..devices import Device, device_of, to_numpy
from .parallel import Solo

INSTALL = "pip install -e '.[distributed]' in gpunn's directory (mpi4py and an MPI library: the mpich wheel)"


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ValueError(f"distributed training needs mpi4py and an MPI library ({e}): {INSTALL}") from None
    return MPI


class MPIDataParallel(Solo):
    """Split every global batch over the processes of ``comm`` and sum their gradients with one allreduce per step.

    GPUs: process r trains on ``cuda:(local rank % GPUs)``; gradients are summed by NCCL (CuPy's
    ``cupy.cuda.nccl``) where CuPy has it, otherwise copied to the host for MPI. BatchNorm uses
    each process's own batch statistics (not synchronised): with batchnorm, results depend on the
    number of processes. Everything else matches one process up to the order of the sums.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, default=None
        The processes to train on; None: ``MPI.COMM_WORLD``.

    Attributes
    ----------
    rank : int
        This process's rank in ``comm``.
    size : int
        The number of processes.
    is_root : bool
        Rank 0: the process that prints and writes files.
    local_rank : int
        The rank among the processes on this machine (it picks the GPU).

    Raises
    ------
    ValueError
        Where mpi4py or an MPI library is missing (the message says what to install).

    Examples
    --------
    Run under ``mpirun -n 2 python train.py``, where ``train.py`` holds::

        trainer = gn.Trainer(model, loss, opt, distributed=True)   # an MPIDataParallel over COMM_WORLD
        trainer.fit(X, y)                                          # every process: the same X, y and model
    """

    def __init__(self, comm=None):
        MPI = _mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        self.local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self._nccl = None

    def device_for(self, device: Device) -> Device:
        """The device this process trains on: on CUDA, the GPU of its local rank.

        Parameters
        ----------
        device : Device
            The device the Trainer was given.

        Returns
        -------
        Device
            ``device`` on the CPU; ``cuda:(local_rank % number of GPUs)`` on CUDA.
        """
        if device.type != "cuda":
            return device
        from ..devices import _cuda_device_count

        return Device("cuda", self.local_rank % max(1, _cuda_device_count()))

    def start(self, model, X, y) -> None:
        """Check that every process holds data of one shape and a model of one layout; then all take rank 0's weights.

        Parameters
        ----------
        model : gpunn.nn.Module
            The model about to be trained.
        X : array
            This process's training rows.
        y : array
            Their labels.

        Raises
        ------
        ValueError
            If the processes disagree on the data's shapes or the model's parameters (nothing is
            trained; the message names the ranks).
        """
        mine = (tuple(X.shape), tuple(y.shape), [(n, p.shape) for n, p in model.named_parameters()])
        everyone = self.comm.allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs[:2] != mine[:2]:
                raise ValueError(f"the processes disagree on the data: rank {self.rank} has X {mine[0]}, y {mine[1]}; "
                                 f"rank {rank} has X {theirs[0]}, y {theirs[1]} (nothing was trained)")
            if theirs[2] != mine[2]:
                raise ValueError(f"the processes disagree on the model: rank {self.rank} and rank {rank} have "
                                 "different parameters (nothing was trained)")
        model.load_state_dict(self.comm.bcast(model.state_dict() if self.is_root else None, root=0))

    def rows(self, n: int) -> slice:
        """The contiguous part of a global batch of ``n`` rows this process takes.

        Parameters
        ----------
        n : int
            The global batch's rows.

        Returns
        -------
        slice
            Rows ``rank * n // size`` to ``(rank + 1) * n // size``.
        """
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def reduce(self, value, grads):
        """Sum the loss share and the gradients over the processes, in place, with one allreduce.

        Parameters
        ----------
        value : array
            This process's loss, scaled by its share of the batch (a 0-d array on the device).
        grads : list of array
            The parameters' gradients, one dtype, summed in place.

        Returns
        -------
        array
            The batch loss, the same on every process.
        """
        xp = device_of(value).xp
        dtype = grads[0].dtype
        buf = xp.concatenate([value.reshape(1).astype(dtype)] + [g.reshape(-1) for g in grads])
        self._allreduce(buf)
        offset = 1
        for g in grads:
            g[...] = buf[offset:offset + g.size].reshape(g.shape)
            offset += g.size
        return buf[0]

    def _allreduce(self, buf) -> None:
        """Sum ``buf`` over the processes, in place, on its device."""
        if device_of(buf).type == "cpu":
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
            return
        nccl = self._nccl_comm(buf)
        if nccl is None:  # no NCCL in this CuPy: through the host (a synchronisation per step)
            host = to_numpy(buf)
            self.comm.Allreduce(self._MPI.IN_PLACE, host, op=self._MPI.SUM)
            buf.set(host)
            return
        import cupy
        from cupy.cuda import nccl as nccl_api

        kind = nccl_api.NCCL_FLOAT32 if buf.dtype == np.float32 else nccl_api.NCCL_FLOAT64
        nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind, nccl_api.NCCL_SUM,
                       cupy.cuda.get_current_stream().ptr)

    def _nccl_comm(self, buf):
        """An NCCL communicator over the same processes (its id sent by MPI), or None where CuPy has no NCCL."""
        if self._nccl is None:
            try:
                from cupy.cuda import nccl as nccl_api
            except ImportError:
                nccl_api = None
            if nccl_api is None or not getattr(nccl_api, "available", False):  # no libnccl: CuPy imports a stub
                self._nccl = False
                return None
            uid = self.comm.bcast(nccl_api.get_unique_id() if self.is_root else None, root=0)
            self._nccl = nccl_api.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl or None

    def total(self, value: float) -> float:
        """A host number summed over the processes.

        Parameters
        ----------
        value : float
            This process's number.

        Returns
        -------
        float
            The sum over ``comm``.
        """
        return self.comm.allreduce(value, op=self._MPI.SUM)

    def __repr__(self):
        return f"MPIDataParallel(rank={self.rank}, size={self.size})"
