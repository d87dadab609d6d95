"""Six update rules on a ravine and a saddle, and their loss curves training the same net on digits.

SGD, momentum, Nesterov momentum, Adagrad, RMSProp and Adam, each gpunn's own optimizer
stepping a gn.nn.Parameter (x, y) whose gradient comes from gpunn.autograd. In the
ravine, plain SGD zigzags across the steep wall and crawls along the floor; momentum
builds speed along it. At the saddle the gradient along the way out is nearly zero:
SGD lingers, the per-coordinate step sizes of Adagrad/RMSProp/Adam get out quickly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import autograd as ag
from .. import nn, optim
from ..devices import device as make_device
from ..devices import to_numpy
from ..trainer import Trainer
from .common import image_data

OPTIMIZERS = {  # name -> (constructor, learning rate on the surfaces, learning rate for the net)
    "SGD": (lambda ps, lr: optim.SGD(ps, lr=lr), 0.45, 0.1),
    "Momentum": (lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9), 0.045, 0.02),
    "Nesterov": (lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True), 0.045, 0.02),
    "Adagrad": (lambda ps, lr: optim.Adagrad(ps, lr=lr), 0.5, 0.05),
    "RMSProp": (lambda ps, lr: optim.RMSProp(ps, lr=lr), 0.05, 2e-3),
    "Adam": (lambda ps, lr: optim.Adam(ps, lr=lr), 0.2, 5e-3),
}


def ravine(x, y):
    """A long, narrow valley: 100x steeper across (y) than along (x); minimum 0 at (0, 0)."""
    return 0.02 * x * x + 2.0 * y * y


def saddle(x, y):
    """A saddle at (0, 0) between two minima at (0, +-1): x^2 / 2 + y^4 / 4 - y^2 / 2."""
    return 0.5 * x * x + 0.25 * y ** 4 - 0.5 * y * y


SURFACES = {"ravine": (ravine, (-4.5, 1.2), 80, (-5, 1.5, -1.6, 1.6)),   # f, start, steps, (x0, x1, y0, y1) shown
            "saddle": (saddle, (-2.0, 1e-3), 80, (-2.3, 1.2, -1.6, 1.6))}


def trajectory(surface, start, steps: int, make, lr: float, device="cpu"):
    """Points (steps + 1, 2) and losses (steps + 1,) of ``make(params, lr)`` descending ``surface`` from ``start``."""
    dev = make_device(device)
    p = nn.Parameter(dev.asarray(np.array(start, dtype=np.float64)))
    opt = make([p], lr)
    points, losses = [to_numpy(p.data).copy()], []
    for _ in range(steps):
        xy = ag.tensor(p.data)
        f = surface(xy[0], xy[1])
        f.backward()
        losses.append(float(f.data))
        p.grad = xy.grad
        opt.step()
        points.append(to_numpy(p.data).copy())
    with ag.no_grad():
        losses.append(float(surface(*ag.tensor(p.data)).data))
    return np.array(points), np.array(losses)


def train_curves(data, device, seed: int, epochs: int = 15):
    """Per-iteration training loss of one 2-layer ReLU net (same initial weights) under each optimizer."""
    curves = {}
    D, C = data.X_train.shape[1], int(data.y_train.max()) + 1
    for name, (make, _, lr) in OPTIMIZERS.items():
        model = nn.Sequential(nn.Linear(D, 100, rng=seed), nn.ReLU(), nn.Linear(100, C, rng=seed + 1))
        trainer = Trainer(model, nn.SoftmaxCrossEntropy(), make(model.parameters(), lr), batch_size=100,
                          epochs=epochs, device=device, seed=seed, progress=False)
        history = trainer.fit(data.X_train, data.y_train)
        curves[name] = (np.array(history.iteration_loss), trainer.evaluate(data.X_val, data.y_val)["accuracy"])
    return curves


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    dev = make_device(device)
    paths = {}
    for sname, (f, start, steps, _) in SURFACES.items():
        paths[sname] = {name: trajectory(f, start, steps, make, lr, dev) for name, (make, lr, _) in OPTIMIZERS.items()}
    data = image_data(data_dir, seed)
    if data.name != "digits":  # CIFAR-10: 2000 rows, 5 epochs keep six trainings under a minute on 2 cores
        data = data._replace(X_train=data.X_train[:2000], y_train=data.y_train[:2000])
    curves = train_curves(data, dev, seed, epochs=15 if data.name == "digits" else 5)
    files = [_draw(Path(out_dir), paths, curves, data.name)]
    lines = []
    for sname, runs in paths.items():
        lines.append(f"{sname} after {SURFACES[sname][2]} steps: "
                     + ", ".join(f"{n} {losses[-1]:.3g}" for n, (_, losses) in runs.items()))
    lines.append(f"2-layer net on {data.name}, final minibatch loss / validation accuracy: "
                 + ", ".join(f"{n} {c[-1]:.3f}/{acc:.3f}" for n, (c, acc) in curves.items()))
    return {"files": files, "summary": "\n".join(lines), "paths": paths, "curves": curves}


def _draw(out_dir: Path, paths, curves, name: str) -> Path:
    from ..plots import CLASS_COLORS, pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    colors = dict(zip(OPTIMIZERS, CLASS_COLORS))
    for ax, (sname, runs) in zip(axes, paths.items()):
        f, start, steps, (x0, x1, y0, y1) = SURFACES[sname]
        gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        with ag.no_grad():
            z = f(ag.tensor(gx, dtype="float64"), ag.tensor(gy, dtype="float64")).data
        ax.contourf(gx, gy, z, levels=30, cmap="Greys_r", alpha=0.55)
        ax.contour(gx, gy, z, levels=30, colors="0.45", linewidths=0.4)
        for oname, (pts, _) in runs.items():
            ax.plot(pts[:, 0], pts[:, 1], ".-", color=colors[oname], lw=1.4, ms=3, label=oname)
        ax.plot(*start, "k*", ms=12)
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{sname}: {steps} steps from the star", xlabel="x", ylabel="y")
        ax.grid(False)
    axes[0].legend(loc="lower right", ncols=2)
    fig.suptitle("gpunn.optim on two surfaces (gradients from gpunn.autograd; learning rates tuned per method)")
    ax = axes[2]
    for oname, (c, acc) in curves.items():
        smooth = np.convolve(c, np.ones(10) / 10, mode="valid")
        ax.plot(np.arange(len(smooth)) + 10, smooth, color=colors[oname], label=f"{oname} (val acc {acc:.1%})")
    ax.set(yscale="log", xlabel="iteration (batch of 100)", ylabel="training loss (10-batch mean)",
           title=f"the same 2-layer net on {name}")
    ax.legend(loc="upper right")
    return save_figure(fig, out_dir / "optimizers.png")
