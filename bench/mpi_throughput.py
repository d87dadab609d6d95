"""Run under mpiexec by bench/test_distributed.py: each epoch's time of data-parallel training, and the allreduce's share.

usage: python mpi_throughput.py NET OUT.json   (NET: "3072-100-10 b200" or "3072-1024-10 b256")
"""

import json
import sys
import time

import numpy as np
from measured_files import files_run_by

import gpunn as gn

EPOCHS, BATCHES = 5, 20

net, out = sys.argv[1], sys.argv[2]
sizes, batch = net.split(" b")
d, h, c = map(int, sizes.split("-"))
bs = int(batch)
rng = np.random.default_rng(0)
n = bs * BATCHES
X, y = rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n)
model = gn.nn.Sequential(gn.nn.Linear(d, h, rng=1), gn.nn.ReLU(), gn.nn.Linear(h, c, rng=2))
trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3), batch_size=bs,
                     epochs=1, device="cpu", progress=False, distributed=True, restore_best=False)
reduce, spent = trainer.parallel.reduce, [0.0]


def timed_reduce(value, grads):
    start = time.perf_counter()
    result = reduce(value, grads)
    spent[0] += time.perf_counter() - start
    return result


trainer.parallel.reduce = timed_reduce
measured = files_run_by(lambda: trainer.fit(X, y))  # warm (kernels loaded, threads started), untimed
epochs = []
for e in range(EPOCHS):
    trainer.epochs += 1
    spent[0] = 0.0
    start = time.perf_counter()
    trainer.fit(X, y)
    epochs.append((time.perf_counter() - start, spent[0]))
if trainer.parallel.is_root:
    json.dump({"processes": trainer.parallel.size, "epoch_seconds": [s for s, _ in epochs],
               "allreduce_shares": [r / s for s, r in epochs], "steps_per_epoch": BATCHES, "samples_per_epoch": n,
               "measured_files": measured}, open(out, "w"))
