"""Training curves as a PNG (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path

from .history import History


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(history: History, path) -> Path:
    """Loss per iteration and per epoch, and accuracy per epoch, side by side; returns the PNG's path."""
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
