"""Choosing k for k-nearest neighbours by cross-validation: accuracy against k, L1 and L2.

Each point is one fold's validation accuracy; the line is their mean and the bars one
standard deviation over the folds. The best k (highest mean) is marked for each distance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..neighbors import cross_validate_k
from .common import image_data

KS = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
FOLDS = 5


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Cross-validate k for L1 and L2 kNN and draw accuracy against k, fold by fold.

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
        ``results`` (a :class:`gpunn.neighbors.CrossValidation` per metric), ``ks`` and ``folds``.
    """
    data = image_data(data_dir, seed)
    X = np.concatenate([data.X_train, data.X_val])  # k-NN has no epochs to validate: cross-validate on both
    y = np.concatenate([data.y_train, data.y_val])
    results = {metric: cross_validate_k(X, y, ks=KS, folds=FOLDS, metric=metric, device=device)
               for metric in ("l1", "l2")}
    files = [_draw(Path(out_dir), results, data.name, len(y))]
    lines = [f"{FOLDS}-fold cross-validation on {data.name} ({len(y)} rows)"]
    for metric, cv in results.items():
        lines.append(f"{metric.upper()}: best k = {cv.best_k} (mean accuracy {cv.mean[list(cv.ks).index(cv.best_k)]:.4f}); "
                     + ", ".join(f"k={k} {m:.3f}" for k, m in zip(cv.ks, cv.mean)))
    return {"files": files, "summary": "\n".join(lines), "results": results, "ks": KS, "folds": FOLDS}


def _draw(out_dir: Path, results, name: str, n: int) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (metric, cv), color, shift in zip(results.items(), ("C0", "C3"), (0.97, 1.03)):
        ks = np.asarray(cv.ks, dtype=float) * shift  # nudged apart so the two sets of folds do not hide each other
        for f in range(cv.fold_accuracies.shape[1]):
            ax.scatter(ks, cv.fold_accuracies[:, f], color=color, s=10, alpha=0.35)
        ax.errorbar(ks, cv.mean, yerr=cv.std, color=color, capsize=3, marker="o", ms=4,
                    label=f"{metric.upper()} distance (best k = {cv.best_k})")
        i = list(cv.ks).index(cv.best_k)
        ax.plot(ks[i], cv.mean[i], "*", color=color, ms=16, mec="k")
    ax.set(xscale="log", xlabel="k (log scale)", ylabel="validation accuracy",
           title=f"Cross-validating k on {name} ({n} rows, {FOLDS} folds): mean ± std over folds")
    ax.set_xticks(list(next(iter(results.values())).ks), [str(k) for k in next(iter(results.values())).ks])
    ax.minorticks_off()
    ax.legend()
    return save_figure(fig, out_dir / "knn_k.png")
