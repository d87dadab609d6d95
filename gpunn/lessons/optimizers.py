"""Six update rules on a ravine and a saddle, and their loss curves training the same net on digits.

SGD, momentum, Nesterov momentum, Adagrad, RMSProp and Adam, each gpunn's own optimizer
stepping a gn.nn.Parameter (x, y) whose gradient comes from gpunn.autograd. In the
ravine, plain SGD zigzags across the steep wall and crawls along the floor; momentum
builds speed along it. The saddle is f = x^2 - y^2, entered along its stable axis (a hair
off it, y = 1e-6): there the gradient along the way out (y) is nearly zero, so plain SGD,
whose steps are the gradient, stalls at the saddle point; momentum adds up those small
pushes and escapes, and the per-coordinate step sizes of Adagrad/RMSProp/Adam make them as
big as any other step. Each method gets a panel of its own, the others' paths in grey.
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

OPTIMIZERS = {  # name -> (constructor, learning rate for the net); the surfaces' rates are in SURFACES
    "SGD": (lambda ps, lr: optim.SGD(ps, lr=lr), 0.1),
    "Momentum": (lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9), 0.02),
    "Nesterov": (lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True), 0.02),
    "Adagrad": (lambda ps, lr: optim.Adagrad(ps, lr=lr), 0.05),
    "RMSProp": (lambda ps, lr: optim.RMSProp(ps, lr=lr), 2e-3),
    "Adam": (lambda ps, lr: optim.Adam(ps, lr=lr), 5e-3),
}
# colour, line style and marker per method: each path and curve stays readable where they cross or coincide
STYLES = {"SGD": ("#1f77b4", "-", "o"), "Momentum": ("#d62728", "--", "s"), "Nesterov": ("#2ca02c", ":", "^"),
          "Adagrad": ("#ff7f0e", "-.", "D"), "RMSProp": ("#9467bd", (0, (5, 1)), "v"),
          "Adam": ("#8c564b", (0, (3, 1, 1, 1)), "P")}


def ravine(x, y):
    """A long, narrow valley: 100x steeper across (y) than along (x); minimum 0 at (0, 0)."""
    return 0.02 * x * x + 2.0 * y * y


def saddle(x, y):
    """The saddle f = x^2 - y^2 at (0, 0): a minimum along x, a maximum along y (unbounded below)."""
    return x * x - y * y


# name -> (f, start, steps, (x0, x1, y0, y1) shown, learning rate per method). On the ravine the rates are tuned
# per method; on the saddle SGD and the momentum methods share one rate (0.05), so what differs is momentum,
# and a path ends when it leaves the view (the saddle has no bottom).
SURFACES = {
    "ravine": (ravine, (-4.5, 1.2), 80, (-5, 1.5, -1.6, 1.6),
               {"SGD": 0.45, "Momentum": 0.045, "Nesterov": 0.045, "Adagrad": 0.5, "RMSProp": 0.05, "Adam": 0.2}),
    "saddle": (saddle, (-1.2, 1e-6), 80, (-1.5, 1.5, -1.5, 1.5),
               {"SGD": 0.05, "Momentum": 0.05, "Nesterov": 0.05, "Adagrad": 0.15, "RMSProp": 0.01, "Adam": 0.05}),
}


def trajectory(surface, start, steps: int, make, lr: float, device="cpu", bound: float | None = None):
    """Points (k + 1, 2) and losses (k + 1,) of ``make(params, lr)`` descending ``surface`` from ``start``.

    k = ``steps``, or fewer where a point leaves the square |x|, |y| <= ``bound`` (it is the last one kept).
    """
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
        if bound is not None and np.abs(points[-1]).max() > bound:
            break
    with ag.no_grad():
        losses.append(float(surface(*ag.tensor(p.data)).data))
    return np.array(points), np.array(losses)


def train_curves(data, device, seed: int, epochs: int = 15):
    """Per-iteration training loss of one 2-layer ReLU net (same initial weights) under each optimizer."""
    curves = {}
    D, C = data.X_train.shape[1], int(data.y_train.max()) + 1
    for name, (make, lr) in OPTIMIZERS.items():
        model = nn.Sequential(nn.Linear(D, 100, rng=seed), nn.ReLU(), nn.Linear(100, C, rng=seed + 1))
        trainer = Trainer(model, nn.SoftmaxCrossEntropy(), make(model.parameters(), lr), batch_size=100,
                          epochs=epochs, device=device, seed=seed, progress=False)
        history = trainer.fit(data.X_train, data.y_train)
        curves[name] = (np.array(history.iteration_loss), trainer.evaluate(data.X_val, data.y_val)["accuracy"])
    return curves


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Run the update rules on 2-D surfaces and a small net; draw each path and loss curve.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder for the figures (created by :func:`gpunn.lessons.run`).
    device : str or Device, default="auto"
        Where the lesson computes.
    data_dir : str or pathlib.Path, default=None
        CIFAR-10 batches for the net's loss curves instead of the embedded digits (the surfaces are
        formulas).
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        ``files`` (the pictures written), ``summary`` (the numbers behind them, a few lines) and
        ``paths`` (each rule's points on each surface) and ``curves`` (the net's losses).
    """
    dev = make_device(device)
    paths = {}
    for sname, (f, start, steps, view, lrs) in SURFACES.items():
        bound = max(map(abs, view)) if sname == "saddle" else None
        paths[sname] = {name: trajectory(f, start, steps, make, lrs[name], dev, bound)
                        for name, (make, _) in OPTIMIZERS.items()}
    data = image_data(data_dir, seed)
    if data.name != "digits":  # CIFAR-10: 2000 rows, 5 epochs keep six trainings under a minute on 2 cores
        data = data._replace(X_train=data.X_train[:2000], y_train=data.y_train[:2000])
    curves = train_curves(data, dev, seed, epochs=15 if data.name == "digits" else 5)
    files = [_draw(Path(out_dir), paths, curves, data.name)]
    lines = [f"ravine after {SURFACES['ravine'][2]} steps: "
             + ", ".join(f"{n} {losses[-1]:.3g}" for n, (_, losses) in paths["ravine"].items())]
    lines.append("saddle: " + ", ".join(f"{n} {_saddle_outcome(pts)}" for n, (pts, _) in paths["saddle"].items()))
    lines.append(f"2-layer net on {data.name}, final minibatch loss / validation accuracy: "
                 + ", ".join(f"{n} {c[-1]:.3f}/{acc:.3f}" for n, (c, acc) in curves.items()))
    return {"files": files, "summary": "\n".join(lines), "paths": paths, "curves": curves}


def _saddle_outcome(pts) -> str:
    """'left the view at step k' or 'still at the saddle after k steps (distance d)'."""
    steps = len(pts) - 1
    if steps < SURFACES["saddle"][2]:
        return f"left the view at step {steps}"
    return f"still {np.hypot(*pts[-1]):.2g} from the saddle point after {steps} steps"


def _draw(out_dir: Path, paths, curves, name: str) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig = plt.figure(figsize=(17, 10.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2, 1.1])  # the panels' widths apart from the curves' labels
    panels = top.subplots(2, 6)
    for row, (sname, runs) in enumerate(paths.items()):
        f, start, steps, (x0, x1, y0, y1), lrs = SURFACES[sname]
        gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        with ag.no_grad():
            z = f(ag.tensor(gx, dtype="float64"), ag.tensor(gy, dtype="float64")).data
        for col, (oname, (pts, losses)) in enumerate(runs.items()):
            ax = panels[row, col]
            ax.contourf(gx, gy, z, levels=30, cmap="Greys_r", alpha=0.45)
            ax.contour(gx, gy, z, levels=30, colors="0.5", linewidths=0.3)
            for other, (opts, _) in runs.items():  # the others, faint, for comparison
                if other != oname:
                    ax.plot(opts[:, 0], opts[:, 1], color="0.35", lw=0.7, alpha=0.55)
            color, style, marker = STYLES[oname]
            ax.plot(pts[:, 0], pts[:, 1], color=color, ls="-", lw=1.6, marker=marker, ms=3.2, zorder=3)
            ax.plot(*start, "k*", ms=11, zorder=4)
            ax.plot(0, 0, "x", color="k", ms=7, mew=1.5, zorder=4)
            outcome = (f"f = {losses[-1]:.2g} after {steps}" if sname == "ravine"
                       else _saddle_outcome(pts).replace(" from the saddle point", " from (0, 0)"))
            ax.set_title(f"{oname} (lr {lrs[oname]:g})\n{outcome}", fontsize=9.5, color=color)
            ax.set(xlim=(x0, x1), ylim=(y0, y1), xticks=[], yticks=[])
            ax.grid(False)
            if col == 0:
                what = ("ravine 0.02 x\u00b2 + 2 y\u00b2" if sname == "ravine"
                        else "saddle x\u00b2 - y\u00b2, from (-1.2, 1e-6)")
                ax.set_ylabel(f"{what}\n(star: start, x: {'minimum' if sname == 'ravine' else 'saddle point'})",
                              fontsize=9.5)
    ax_r, ax_s, ax_n = bottom.subplots(1, 3)
    for oname in OPTIMIZERS:
        color, style, _ = STYLES[oname]
        ax_r.plot(paths["ravine"][oname][1], color=color, ls=style, lw=1.6, label=oname)
        ax_s.plot(paths["saddle"][oname][1], color=color, ls=style, lw=1.6, label=oname)
        c, acc = curves[oname]
        smooth = np.convolve(c, np.ones(10) / 10, mode="valid")
        ax_n.plot(np.arange(len(smooth)) + 10, smooth, color=color, ls=style, lw=1.4,
                  label=f"{oname} (val acc {acc:.1%})")
    ax_r.set(yscale="log", xlabel="step", ylabel="f(x, y)", title="ravine: the value along each path")
    ax_s.axhline(0, color="0.6", lw=0.8)
    ax_s.set(xlabel="step", ylabel="f(x, y)", title="saddle: the value until each path leaves the view (f = 0 at the saddle)")
    ax_n.set(yscale="log", xlabel="iteration (batch of 100)", ylabel="training loss (10-batch mean)",
             title=f"the same 2-layer net on {name}")
    ax_r.legend(loc="upper right", ncols=2)
    ax_s.legend(loc="lower left", ncols=2)
    ax_n.legend(loc="upper right")
    fig.suptitle("gpunn.optim on two surfaces (gradients from gpunn.autograd), each method in its own panel with the "
                 "others' paths in grey; the rates on the ravine are tuned per method", fontsize=12)
    return save_figure(fig, out_dir / "optimizers.png")
