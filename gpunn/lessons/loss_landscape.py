"""A linear SVM's loss along random directions: piecewise linear for one example, a bowl for the mean.

Train a multiclass SVM (s = x W + b) to convergence, then evaluate L(W + a W1) along one
random direction W1 and L(W + a W1 + b W2) on a plane, for one training example and for the
regularized mean over the training set. Each example's loss is a sum of hinges, so it is
piecewise linear in a; the mean of many is a convex bowl, lowest at a = 0 for a trained W.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classifiers import LinearClassifier
from ..devices import device as make_device
from ..devices import array_module, to_numpy
from .common import image_data

REG = 0.005       # L2 strength lambda: the objective is mean hinge + (lambda / 2) ||W||^2
STEPS_1D, STEPS_2D = 201, 61
EPOCHS = {"digits": 600, "CIFAR-10": 150}  # full-batch steps to convergence; CIFAR's are 50x dearer


def hinge(S, y, delta: float = 1.0):
    """Multiclass hinge loss per example for scores S (..., N, C) and labels y (N,): shape (..., N)."""
    xp = array_module(S)
    rows = xp.arange(S.shape[-2])
    correct = S[..., rows, y][..., None]
    margins = xp.maximum(0, S - correct + delta)
    return margins.sum(axis=-1) - delta  # the correct class contributes exactly delta: take it out


def objective(W, b, X, y, reg: float = REG) -> float:
    """The trained objective at (W, b): mean hinge over (X, y) plus (reg / 2) ||W||^2."""
    return float(hinge(X @ W + b, y).mean()) + 0.5 * reg * float((W * W).sum())


def landscape(W, b, X, y, W1, W2, alphas, reg: float = REG, example: int = 0):
    """Loss along W + a W1 (1-D) and over W + a W1 + c W2 (2-D), for one example and the regularized mean.

    Scores are linear in a and c: S = S0 + a S1 + c S2, so each grid point costs one pass over S.
    Returns dict of NumPy arrays: one_1d, mean_1d (len(alphas)), one_2d, mean_2d (len(alphas), len(alphas)).
    """
    xp = array_module(X)
    S0, S1, S2 = X @ W + b, X @ W1, X @ W2
    a = xp.asarray(alphas, dtype=X.dtype)

    def penalty(A, C):  # (reg / 2) ||W + A W1 + C W2||^2, expanded
        ww, w1, w2 = (W * W).sum(), (W * W1).sum(), (W * W2).sum()
        q11, q22, q12 = (W1 * W1).sum(), (W2 * W2).sum(), (W1 * W2).sum()
        return 0.5 * reg * (ww + 2 * A * w1 + 2 * C * w2 + A * A * q11 + C * C * q22 + 2 * A * C * q12)

    line = hinge(S0 + a[:, None, None] * S1, y)                     # (A, N)
    one_1d, mean_1d = line[:, example], line.mean(axis=1) + penalty(a, 0)
    one_2d, mean_2d = xp.empty((len(a), len(a)), X.dtype), xp.empty((len(a), len(a)), X.dtype)
    for i, c in enumerate(a):                                       # row i: W2 coefficient c
        plane = hinge(S0 + a[:, None, None] * S1 + c * S2, y)      # (A, N)
        one_2d[i], mean_2d[i] = plane[:, example], plane.mean(axis=1) + penalty(a, c)
    return {k: to_numpy(v).astype(np.float64) for k, v in
            {"one_1d": one_1d, "mean_1d": mean_1d, "one_2d": one_2d, "mean_2d": mean_2d}.items()}


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Train a linear SVM, then draw its loss along random directions: a line and a plane.

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
        ``alphas``, ``grid``, ``line`` and ``plane`` (the losses drawn).
    """
    dev = make_device(device)
    data = image_data(data_dir, seed)
    clf = LinearClassifier(loss="svm", reg=REG, optimizer="momentum", lr=0.05, batch_size=None, epochs=EPOCHS[data.name],
                           device=dev, random_state=seed).fit(data.X_train, data.y_train)
    lin = clf.model_[0]
    W, b = dev.asarray(to_numpy(lin.W.data), np.float64), dev.asarray(to_numpy(lin.b.data), np.float64)
    X, y = dev.asarray(data.X_train, np.float64), dev.asarray(data.y_train)
    rng = np.random.default_rng(seed)
    norm = float(to_numpy((W * W).sum())) ** 0.5
    W1, W2 = (dev.asarray(d * norm / np.linalg.norm(d)) for d in rng.standard_normal((2, *W.shape)))
    alphas = np.linspace(-1.0, 1.0, STEPS_1D)
    grid = np.linspace(-1.0, 1.0, STEPS_2D)
    # the example drawn: the first whose hinges switch on and off along the line (many sit at 0 throughout)
    per_example = to_numpy(hinge(X @ W + b + dev.asarray(alphas)[:, None, None] * (X @ W1), y))
    example = int(np.argmax((per_example > 0).mean(axis=0) >= 0.5))
    line = landscape(W, b, X, y, W1, W2, alphas, example=example)
    plane = landscape(W, b, X, y, W1, W2, grid, example=example)
    a_min = float(alphas[np.argmin(line["mean_1d"])])
    files = _draw(Path(out_dir), alphas, line, grid, plane, data.name)
    kinks = np.count_nonzero(np.abs(np.diff(line["one_1d"], 2)) > 1e-9)
    summary = "\n".join([
        f"multiclass SVM on {data.name} ({len(data.y_train)} training rows), lambda={REG}: "
        f"objective {line['mean_1d'][STEPS_1D // 2]:.4f} at W, "
        f"training accuracy {clf.score(data.X_train, data.y_train):.3f}",
        f"along a random direction W1 (|W1| = |W|): mean loss lowest at a = {a_min:+.3f}, "
        f"{line['mean_1d'][0]:.3f} at a = -1, {line['mean_1d'][-1]:.3f} at a = +1",
        f"one example's loss (training row {example}): {kinks} kinks on the line "
        f"(piecewise linear), min {line['one_1d'].min():.3f}",
    ])
    return {"files": files, "summary": summary, "alphas": alphas, "grid": grid, "line": line, "plane": plane,
            "argmin_alpha": a_min, "W": to_numpy(W), "b": to_numpy(b), "W1": to_numpy(W1), "W2": to_numpy(W2),
            "reg": REG, "example": example}


def _draw(out_dir: Path, alphas, line, grid, plane, name: str):
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(alphas, line["one_1d"], color="C0")
    axes[0].set(title="one example: L_i(W + a W1), piecewise linear", xlabel="a", ylabel="hinge loss")
    axes[1].plot(alphas, line["mean_1d"], color="C3")
    axes[1].axvline(0, color="0.5", ls="--", lw=1, label="a = 0 (trained W)")
    axes[1].set(title=f"mean over {name} + (lambda/2)|W|^2: a convex bowl", xlabel="a", ylabel="loss")
    axes[1].legend(loc="upper center")
    one = save_figure(fig, out_dir / "loss_landscape_1d.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    for ax, key, title in ((axes[0], "one_2d", "one example"), (axes[1], "mean_2d", "regularized mean")):
        im = ax.imshow(plane[key], origin="lower", extent=extent, cmap="jet", aspect="equal")
        ax.contour(grid, grid, plane[key], levels=12, colors="k", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], "w+", ms=10, mew=2)
        ax.set(title=f"{title}: L(W + a W1 + b W2), + = trained W", xlabel="a (along W1)", ylabel="b (along W2)")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.85, label="loss")
    two = save_figure(fig, out_dir / "loss_landscape_2d.png")
    return [one, two]
