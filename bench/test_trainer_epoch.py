"""Trainer overhead: one epoch through Trainer.fit beside the same steps driven by hand.

Both run SGD on the 3072-1024-10 net (float32, batch 256, 10 batches of random data).
The raw loop slices fixed batches and calls forward / loss / backward / step; the Trainer
adds shuffling and gathering, the finite-loss-and-gradient check, accuracy and history.
"""

from __future__ import annotations

import numpy as np
from peers import gpunn_peer, record

import gpunn as gn

D, H, C, BATCH, BATCHES = 3072, 1024, 10, 256, 10


def setup():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH * BATCHES, D)).astype(np.float32)
    y = rng.integers(0, C, BATCH * BATCHES)
    model = gn.nn.Sequential(gn.nn.Linear(D, H, rng=1), gn.nn.ReLU(), gn.nn.Linear(H, C, rng=2))
    return X, y, model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters(), lr=1e-3)


def raw_epoch():
    X, y, model, loss, opt = setup()
    batches = [(X[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(y), BATCH)]

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss.forward(model.forward(xb), yb)
            model.backward(loss.backward())
            opt.step()

    return epoch


def trainer_epoch():
    X, y, model, loss, opt = setup()
    trainer = gn.Trainer(model, loss, opt, batch_size=BATCH, epochs=1, device="cpu", progress=False)

    def epoch():
        trainer.epochs = trainer.epoch + 1
        trainer.fit(X, y)

    return epoch


def test_epoch(benchmark, interleaved):
    benchmark.group = "epoch 3072-1024-10 b256 x10"
    record(benchmark, {"trainer": gpunn_peer, "raw": gpunn_peer},
           data=f"random: X float32 ({BATCH * BATCHES}, {D}) standard normal, labels uniform over {C} classes (seed 0)")
    interleaved({"trainer": trainer_epoch(), "raw": raw_epoch()}, primary="trainer", rounds=10, block=2)
