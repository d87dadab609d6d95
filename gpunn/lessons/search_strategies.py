"""Random search, random local search and gradient descent on one linear classifier's loss.

The same softmax classifier on the same training set, the same budget of loss evaluations.
Random search draws W afresh each time and keeps the best; random local search steps from
the best W in a random direction and keeps the step if the loss drops; gradient descent
steps along -dL/dW (each step counts as one evaluation: its forward pass, plus a backward
pass of about the same cost). Following the gradient wins by a wide margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn, optim
from ..devices import device as make_device
from .common import image_data

BUDGET = 300
SETTINGS = {"random search": 0.05, "random local search": 0.02, "gradient descent": 1.0}  # scale, step, lr


def _model(D: int, C: int, seed: int, dev):
    return nn.Sequential(nn.Linear(D, C, init=1e-3, rng=seed)).to(dev)


def search_curves(X, y, device="auto", seed: int = 0, budget: int = BUDGET):
    """Best training loss after each loss evaluation, and the final model, for each strategy."""
    dev = make_device(device)
    D, C = X.shape[1], int(y.max()) + 1
    Xd, yd = dev.asarray(X), dev.asarray(y)
    loss = nn.SoftmaxCrossEntropy()
    out = {}
    for name, setting in SETTINGS.items():
        model = _model(D, C, seed, dev)

        seen = []  # every loss evaluated, in order

        def closure():
            seen.append(float(loss.forward(model.forward(Xd), yd)))
            return seen[-1]

        if name == "gradient descent":
            opt = optim.SGD(model.parameters(), lr=setting)
            while len(seen) < budget:
                opt.zero_grad()
                closure()
                model.backward(loss.backward())
                opt.step()
        else:
            kind = optim.RandomSearch if name == "random search" else optim.RandomLocalSearch
            search = kind(model.parameters(), scale=setting, seed=seed)
            while len(seen) < budget:
                search.step(closure)  # the first step evaluates the starting point and one candidate
        best = np.minimum.accumulate(np.array(seen[:budget]))
        out[name] = (best, model)
    return out


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Compare random search, random local search and gradient descent on a linear classifier.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder for the figures (created by :func:`gpunn.lessons.run`).
    device : str or Device, default="auto"
        Where the lesson computes.
    data_dir : str or pathlib.Path, default=None
        CIFAR-10 batches to learn from instead of the embedded digits.
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        ``files`` (the pictures written), ``summary`` (the numbers behind them, a few lines) and
        ``curves`` (loss against evaluations, per strategy) and the test accuracies.
    """
    data = image_data(data_dir, seed)
    curves = search_curves(data.X_train, data.y_train, device, seed)
    acc = {name: float((model.predict(data.X_test) == data.y_test).mean()) for name, (_, model) in curves.items()}
    files = [_draw(Path(out_dir), curves, acc, data.name)]
    summary = "\n".join([f"softmax linear classifier on {data.name}, {BUDGET} loss evaluations each:"] + [
        f"  {name:20s} best training loss {c[-1]:.4f}, test accuracy {acc[name]:.3f}" for name, (c, _) in curves.items()])
    return {"files": files, "summary": summary, "curves": {k: c for k, (c, _) in curves.items()},
            "test_accuracy": acc}


def _draw(out_dir: Path, curves, acc, name: str) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (label, (c, _)), color in zip(curves.items(), ("C7", "C1", "C0")):
        ax.plot(np.arange(1, len(c) + 1), c, color=color, lw=2, label=f"{label} (test accuracy {acc[label]:.1%})")
    ax.set(xlabel="loss evaluations", ylabel="best training loss so far",
           title=f"Three strategies on one softmax classifier ({name}): loss against function evaluations")
    ax.legend()
    return save_figure(fig, out_dir / "search_strategies.png")
