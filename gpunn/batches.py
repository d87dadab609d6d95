"""The minibatches of a training epoch, in the epoch's order, ready on the training device.

Data that fits on the device (a GPU: half its free memory) lives there and batches are gathered there.
Data that does not is kept on the host: each batch is gathered there into one of two page-locked
buffers in turn and uploaded asynchronously while the other is filled. Under MPI each process takes its
part of every global batch (``parallel.rows``), so random layers can draw those rows' part of the
whole batch's randomness.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .devices import device_of, to_numpy


class Batch(NamedTuple):
    x: object  # this process's rows of the global batch, on the training device
    y: object
    share: float  # its fraction of the global batch (1 alone; 0 when there are more processes than rows)
    first_row: int  # where its rows start in the global batch


class Batches:
    """Minibatches of (X, y) for ``device``, ``batch_size`` rows each (all of them for None), split by ``parallel``."""

    def __init__(self, device, X, y, batch_size: int | None, parallel, dtype):
        self.device, self.parallel = device, parallel
        self.X, self.y = resident(device, X, y, dtype)
        self.n = X.shape[0]
        self.size = self.n if batch_size is None else min(batch_size, self.n)
        self.staged = device.type == "cuda" and device_of(self.X).type == "cpu"
        if self.staged:  # two page-locked buffers, and the event after the upload that last read each
            self._buffers = [(device.pinned_empty((self.size, *X.shape[1:]), self.X.dtype),
                              device.pinned_empty((self.size,), self.y.dtype)) for _ in range(2)]
            self._uploaded = [None, None]

    def __len__(self) -> int:
        return math.ceil(self.n / self.size)

    def epoch(self, order: np.ndarray):
        """Yield a :class:`Batch` per global batch, the rows taken in ``order`` (a permutation of the rows)."""
        if not self.staged and device_of(self.X) != device_of(order):
            order = self.device.asarray(order)  # the data is on the GPU: gather batches there
        for it, lo in enumerate(range(0, self.n, self.size)):
            idx = order[lo:lo + self.size]
            mine = self.parallel.rows(len(idx))  # this process's part of the global batch (all of it, alone)
            share = (mine.stop - mine.start) / len(idx)
            x, y = self._gather(idx[mine], it % 2)
            yield Batch(x, y, share, mine.start)

    def _gather(self, idx, slot: int):
        if not self.staged:
            return self.X[idx], self.y[idx]
        host_x, host_y = self._buffers[slot]
        if self._uploaded[slot] is not None:
            self._uploaded[slot].synchronize()  # that copy ended long ago: the GPU is two batches on
        np.take(self.X, idx, axis=0, out=host_x[:len(idx)])
        np.take(self.y, idx, out=host_y[:len(idx)])
        (xb, _), (yb, self._uploaded[slot]) = self.device.upload(host_x[:len(idx)]), self.device.upload(host_y[:len(idx)])
        return xb, yb


def resident(device, X, y, dtype):
    """(X, y) on ``device`` when both fit there (GPU: half the free memory), else both on the host.

    X in ``dtype`` where it holds floats (the model's). Host data is uploaded batch by batch (:class:`Batches`).
    """
    dtype = dtype if X.dtype.kind == "f" else X.dtype
    if device.type == "cuda" and device.fits(X.nbytes + y.nbytes):
        return device.asarray(X, dtype=dtype), device.asarray(y)
    return to_numpy(X).astype(dtype, copy=False), to_numpy(y)
