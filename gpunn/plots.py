"""Training curves as a PNG (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path

from .history import History

__all__ = ["PlotExtraMissing", "matplotlib_available", "plot_history"]


def matplotlib_available() -> bool:
    """Whether matplotlib (the ``plot`` extra) can be imported.

    Returns
    -------
    bool
        True where it is installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(history: History, path) -> Path:
    """Draw a training run: loss per iteration and per epoch, and accuracy per epoch, side by side.

    Needs the ``plot`` extra (matplotlib); ``gpunn train`` writes this picture as ``curves.png``.

    Parameters
    ----------
    history : History
        What :meth:`gpunn.Trainer.fit` returned.
    path : str or pathlib.Path
        The picture's file (its suffix picks the format: .png, .svg, .pdf); parents are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        Without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    epochs = history.column("epoch")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if history.iteration_loss:
        per_epoch = len(history.iteration_loss) / max(len(epochs), 1)
        its = [(i + 1) / per_epoch for i in range(len(history.iteration_loss))]
        ax_loss.plot(its, history.iteration_loss, color="0.75", lw=0.8, label="minibatch loss")
    ax_loss.plot(epochs, history.column("train_loss"), "o-", label="train data loss (epoch mean)")
    if any(v is not None for v in history.column("val_loss")):
        ax_loss.plot(epochs, history.column("val_loss"), "s-", label="validation data loss")
    penalties = [e.get("penalty") or 0.0 for e in history.epochs]
    if any(penalties):
        objective = [loss + pen for loss, pen in zip(history.column("train_loss"), penalties)]
        ax_loss.plot(epochs, objective, "^--", label="train data loss + L2 penalty")
    ax_loss.set(xlabel="epoch", ylabel="loss (data loss: without the L2 penalty)", title="Loss")
    ax_loss.legend()
    ax_acc.plot(epochs, history.column("train_accuracy"), "o-", label="train")
    if any(v is not None for v in history.column("val_accuracy")):
        ax_acc.plot(epochs, history.column("val_accuracy"), "s-", label="validation")
    if history.best_epoch is not None:
        ax_acc.axvline(history.best_epoch, color="0.5", ls="--", lw=1, label=f"best epoch ({history.best_epoch})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax_acc.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- shared styling for the lessons

PLOT_EXTRA_HINT = "plotting needs the plot extra: pip install -e '.[plot]' in gpunn's directory (matplotlib)"
CLASS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")  # one colour per class / per compared method, the same in every figure
LESSON_STYLE = {
    "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
    "legend.fontsize": 9, "legend.frameon": False,
}


class PlotExtraMissing(ImportError):
    """matplotlib is not installed: the one-line message says which extra to install.

    Examples
    --------
    >>> print(gn.plots.PlotExtraMissing(gn.plots.PLOT_EXTRA_HINT))
    plotting needs the plot extra: pip install -e '.[plot]' in gpunn's directory (matplotlib)
    """


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend with gpunn's lesson style applied (process-wide).

    Raises :class:`PlotExtraMissing` (one line) where matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise PlotExtraMissing(PLOT_EXTRA_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(LESSON_STYLE)
    return plt


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` (parents created), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)  # pyplot keeps every figure until closed
    return path
