"""Decision boundaries of 2-layer nets on the spiral data: sizes x L2 strengths.

Don't use network size as a regularizer; use lambda. Small nets cannot bend around the
spiral; a big net with little regularization wraps each training point (and its noise);
the same big net with a larger lambda draws a smoother boundary that holds on new points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classifiers import MLPClassifier
from ..data.spiral import make_spiral

HIDDEN = (3, 10, 100)
LAMBDAS = (1e-5, 1e-3, 5e-3)
EPOCHS = 1500
N_PER_CLASS, NOISE = 80, 0.5


def fit_grid(device="auto", seed: int = 0):
    """Train one net per (hidden size, lambda); returns the data and {(h, lam): fitted classifier}."""
    X, y = make_spiral(N_PER_CLASS, 3, seed=seed, noise=NOISE)
    X_test, y_test = make_spiral(N_PER_CLASS, 3, seed=seed + 1, noise=NOISE)
    nets = {}
    for h in HIDDEN:
        for lam in LAMBDAS:
            nets[h, lam] = MLPClassifier(hidden=(h,), reg=lam, optimizer="adam", lr=0.02, batch_size=None,
                                         epochs=EPOCHS, validation_fraction=0.0, device=device,
                                         random_state=seed).fit(X, y)
    return (X, y, X_test, y_test), nets


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Train nets of growing L2 strength on the spiral and draw their decision regions.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder for the figures (created by :func:`gpunn.lessons.run`).
    device : str or Device, default="auto"
        Where the lesson computes.
    data_dir : str or pathlib.Path, default=None
        Not read: the spiral is generated.
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        ``files`` (the pictures written), ``summary`` (the numbers behind them, a few lines) and
        ``train_accuracy`` and ``test_accuracy`` of each net.
    """
    (X, y, X_test, y_test), nets = fit_grid(device, seed)
    train_acc = {k: clf.score(X, y) for k, clf in nets.items()}
    test_acc = {k: clf.score(X_test, y_test) for k, clf in nets.items()}
    files = [_draw(Path(out_dir), X, y, nets, train_acc, test_acc)]
    lines = [f"spiral: 3 arms x {N_PER_CLASS} points (noise {NOISE}), test on a fresh draw; train / test accuracy",
             "hidden \\ lambda " + "".join(f"{lam:>14g}" for lam in LAMBDAS)]
    for h in HIDDEN:
        lines.append(f"{h:>15d} " + "".join(f"{train_acc[h, lam]:>8.2f} / {test_acc[h, lam]:.2f}" for lam in LAMBDAS))
    return {"files": files, "summary": "\n".join(lines), "train_accuracy": train_acc, "test_accuracy": test_acc,
            "hidden": HIDDEN, "lambdas": LAMBDAS}


def _draw(out_dir: Path, X, y, nets, train_acc, test_acc) -> Path:
    from ..plots import CLASS_COLORS, pyplot, save_figure

    plt = pyplot()
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(CLASS_COLORS[:3])
    g = np.linspace(-1.15, 1.15, 250)
    gx, gy = np.meshgrid(g, g)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    fig, axes = plt.subplots(len(HIDDEN), len(LAMBDAS), figsize=(3.3 * len(LAMBDAS), 3.3 * len(HIDDEN)),
                             layout="constrained")
    for i, h in enumerate(HIDDEN):
        for j, lam in enumerate(LAMBDAS):
            ax = axes[i, j]
            z = nets[h, lam].predict(grid).reshape(gx.shape)
            ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5, 2.5], cmap=cmap, alpha=0.3)
            ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, s=9, edgecolors="k", linewidths=0.3)
            ax.set_title(f"{h} hidden, lambda={lam:g}\ntrain {train_acc[h, lam]:.0%}, test {test_acc[h, lam]:.0%}")
            ax.set(xticks=[], yticks=[], aspect="equal")
            ax.grid(False)
    fig.suptitle("Don't use network size as a regularizer; use lambda\n(rows: hidden units; columns: L2 strength)")
    return save_figure(fig, out_dir / "regularization.png")
