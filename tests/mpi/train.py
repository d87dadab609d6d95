"""Run under mpiexec by tests/test_distributed.py: train data-parallel and save rank 0's weights.

usage: python train.py OUT.npz [--bad-rank]   (--bad-rank: rank 1 holds fewer rows, which must be refused)
"""

import sys

import numpy as np


sys.path.insert(0, __file__.rsplit("/", 2)[0])
from test_distributed import make_data, make_trainer  # noqa: E402

out = sys.argv[1]
X, y = make_data()
trainer = make_trainer(distributed=True)
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
