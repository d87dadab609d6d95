"""Random search over learning rate x regularization for a 2-layer net, judged on a validation split.

Both are drawn log-uniformly (a factor of 10 matters as much at 1e-4 as at 1e-1), each
setting trains the same net briefly and is scored on the validation rows, never on the
test rows; the best setting is then trained again and tested once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classifiers import MLPClassifier

TRIALS = 20
CIFAR = {"trials": 12, "epochs": 5, "train_rows": 2000}  # keeps the CIFAR-10 run under a minute on 2 cores
LR_RANGE, REG_RANGE = (1e-4, 1.0), (1e-6, 1.0)  # log-uniform
HIDDEN, EPOCHS = (100,), 10


def sample_settings(trials: int = TRIALS, seed: int = 0):
    """``trials`` (lr, reg) pairs, each coordinate log-uniform in its range."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(*np.log10(LR_RANGE), trials)
    reg = 10 ** rng.uniform(*np.log10(REG_RANGE), trials)
    return list(zip(lr.tolist(), reg.tolist()))


def _net(lr: float, reg: float, device, seed: int, epochs: int = EPOCHS) -> MLPClassifier:
    return MLPClassifier(hidden=HIDDEN, optimizer="momentum", lr=lr, reg=reg, batch_size=100, epochs=epochs,
                         validation_fraction=0.0, device=device, random_state=seed)


def search(data, device="auto", seed: int = 0, trials: int = TRIALS, epochs: int = EPOCHS):
    """Rows of {"lr", "reg", "train_accuracy", "val_accuracy"}, one per setting, in the order tried."""
    rows = []
    for lr, reg in sample_settings(trials, seed):
        try:
            clf = _net(lr, reg, device, seed, epochs).fit(data.X_train, data.y_train)
            train_acc, val_acc = clf.score(data.X_train, data.y_train), clf.score(data.X_val, data.y_val)
        except RuntimeError:  # gn.TrainingDiverged: a learning rate too large is a result too
            train_acc = val_acc = float("nan")
        rows.append({"lr": lr, "reg": reg, "train_accuracy": train_acc, "val_accuracy": val_acc})
    return rows


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Search learning rate and regularization at random, draw the trials, retrain the best.

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
        ``rows`` (each trial), ``best`` and ``retrained`` (the best settings trained longer).
    """
    from .common import image_data

    data = image_data(data_dir, seed)
    trials, epochs = TRIALS, EPOCHS
    if data.name != "digits":
        trials, epochs, n = CIFAR["trials"], CIFAR["epochs"], CIFAR["train_rows"]
        data = data._replace(X_train=data.X_train[:n], y_train=data.y_train[:n])
    rows = search(data, device, seed, trials, epochs)
    best = max(range(len(rows)), key=lambda i: -1 if np.isnan(rows[i]["val_accuracy"]) else rows[i]["val_accuracy"])
    b = rows[best]
    final = _net(b["lr"], b["reg"], device, seed, epochs).fit(data.X_train, data.y_train)
    retrained = {"lr": b["lr"], "reg": b["reg"], "val_accuracy": final.score(data.X_val, data.y_val),
                 "test_accuracy": final.score(data.X_test, data.y_test)}
    files = [_table(Path(out_dir), rows, best), _draw(Path(out_dir), rows, best, data.name)]
    order = sorted(range(len(rows)), key=lambda i: -np.nan_to_num(rows[i]["val_accuracy"], nan=-1))
    table = [f"{'lr':>10} {'reg':>10} {'train acc':>10} {'val acc':>8}"]
    table += [f"{rows[i]['lr']:10.2e} {rows[i]['reg']:10.2e} {rows[i]['train_accuracy']:10.3f} "
              f"{rows[i]['val_accuracy']:8.3f}{'  <- best' if i == best else ''}" for i in order]
    summary = "\n".join([f"{trials} random settings, 2-layer net {HIDDEN[0]} hidden, {epochs} epochs on {data.name} "
                         f"({len(data.y_train)} training rows):",
                         *table,
                         f"best (lr={b['lr']:.2e}, reg={b['reg']:.2e}) retrained: validation accuracy "
                         f"{retrained['val_accuracy']:.3f}, test accuracy {retrained['test_accuracy']:.3f}"])
    return {"files": files, "summary": summary, "rows": rows, "best": best, "retrained": retrained}


def _table(out_dir: Path, rows, best: int) -> Path:
    """The results as CSV, one row per setting in the order tried, the best one flagged."""
    path = out_dir / "hyperparameter_search.csv"
    lines = ["lr,reg,train_accuracy,val_accuracy,best"]
    lines += [f"{r['lr']:.6g},{r['reg']:.6g},{r['train_accuracy']:.4f},{r['val_accuracy']:.4f},{int(i == best)}"
              for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _draw(out_dir: Path, rows, best: int, name: str) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    lr = np.array([r["lr"] for r in rows])
    reg = np.array([r["reg"] for r in rows])
    acc = np.array([r["val_accuracy"] for r in rows])
    fig, ax = plt.subplots(figsize=(7.5, 5), layout="constrained")
    ok = ~np.isnan(acc)
    sc = ax.scatter(lr[ok], reg[ok], c=acc[ok], cmap="viridis", s=70, edgecolors="k", linewidths=0.4)
    if (~ok).any():
        ax.scatter(lr[~ok], reg[~ok], marker="x", color="C3", s=50, label="diverged")
    ax.scatter([lr[best]], [reg[best]], marker="*", s=400, facecolors="none", edgecolors="C3", linewidths=1.5,
               label=f"best: lr={lr[best]:.1e}, reg={reg[best]:.1e} ({acc[best]:.1%})")
    ax.set(xscale="log", yscale="log", xlabel="learning rate (log-uniform)", ylabel="L2 strength lambda (log-uniform)",
           title=f"Random search on {name}: {len(rows)} settings coloured by validation accuracy")
    fig.colorbar(sc, ax=ax, label="validation accuracy")
    ax.legend(loc="upper left")
    return save_figure(fig, out_dir / "hyperparameter_search.png")
