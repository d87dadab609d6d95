"""Run under mpiexec by tests/test_distributed.py: train data-parallel and save rank 0's weights.

usage: python train.py OUT.npz [--bad-rank] [--cuda]
  --bad-rank: rank 1 holds fewer rows, which must be refused
  --cuda: train on CUDA, each process on its node-local rank's GPU; with GPUNN_TEST_GPU=sim on the
          simulated GPU (tests/simulated_gpu), two devices per machine, installed before gpunn is imported
"""

import os
import sys

sys.path.insert(0, __file__.rsplit("/", 2)[0])
if os.environ.get("GPUNN_TEST_GPU") == "sim":
    import simulated_gpu

    simulated_gpu.install()
    simulated_gpu.strict_cupy._VISIBLE[0] = simulated_gpu.strict_cupy.DEVICES

import numpy as np  # noqa: E402

from test_distributed import make_data, make_trainer  # noqa: E402

out = sys.argv[1]
X, y = make_data()
trainer = make_trainer(distributed=True, device="cuda" if "--cuda" in sys.argv else "cpu")
if "--cuda" in sys.argv:  # rank r trains on cuda:r (its node-local rank; two GPUs on this machine)
    assert trainer.device == trainer.parallel.device_for(trainer.device) and trainer.device.index == trainer.parallel.rank
if "--bad-rank" in sys.argv and trainer.parallel.rank == 1:
    X, y = X[:-7], y[:-7]
try:
    history = trainer.fit(X, y, val=(X[:50], y[:50]))
except ValueError as e:
    print(f"rank {trainer.parallel.rank}: ValueError: {e}", flush=True)
    sys.exit(3)
if trainer.parallel.is_root:
    np.savez(out, history=np.array(history.iteration_loss), val=np.array(history.column("val_accuracy")),
             **trainer.model.state_dict())
