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
    """Split every global batch over the processes of ``comm`` (default ``MPI.COMM_WORLD``) and sum their gradients.

    GPUs: process r trains on ``cuda:(local rank % GPUs)``; gradients are summed by NCCL (CuPy's
    ``cupy.cuda.nccl``) where CuPy has it, otherwise copied to the host for MPI. BatchNorm uses
    each process's own batch statistics (not synchronised): with batchnorm, results depend on the
    number of processes. Everything else matches one process up to the order of the sums.
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
        if device.type != "cuda":
            return device
        from ..devices import _cuda_device_count

        return Device("cuda", self.local_rank % max(1, _cuda_device_count()))

    def start(self, model, X, y) -> None:
        """Every process must hold data of one shape and a model of one layout; then all take rank 0's weights."""
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
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def reduce(self, value, grads):
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
        return self.comm.allreduce(value, op=self._MPI.SUM)

    def __repr__(self):
        return f"MPIDataParallel(rank={self.rank}, size={self.size})"
