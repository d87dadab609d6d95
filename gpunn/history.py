"""History: what a training run measured, per iteration and per epoch, saved as JSON."""

from __future__ import annotations

import json

from .checkpoint import atomic_write


class History:
    """Per-iteration training loss and per-epoch records.

    Each record of ``epochs`` holds ``epoch``, ``train_loss``, ``train_accuracy`` (means over
    the epoch's minibatches, as trained: dropout on), ``val_loss``, ``val_accuracy`` (or None),
    ``lr``, ``penalty`` and ``seconds``. ``best_epoch`` is the epoch of the best validation accuracy.

    The losses are *data* losses: they do not include the L2 penalty (lambda / 2) sum ||W||^2
    that weight decay adds to the objective (``LOSS_INCLUDES_PENALTY`` is False). ``penalty`` is
    that term at the end of each epoch, so ``train_loss + penalty`` approximates the objective.
    ``changes`` lists hyperparameters changed on resume: {"epoch", "name", "from", "to"}.
    """

    LOSS_INCLUDES_PENALTY = False

    def __init__(self):
        self.iteration_loss: list[float] = []
        self.epochs: list[dict] = []
        self.best_epoch: int | None = None
        self.changes: list[dict] = []

    def column(self, key: str) -> list:
        """One value per epoch, e.g. ``history.column("val_accuracy")``."""
        return [e[key] for e in self.epochs]

    @property
    def best(self) -> dict | None:
        """The record of the best epoch (None without validation)."""
        return next((e for e in self.epochs if e["epoch"] == self.best_epoch), None)

    def to_dict(self) -> dict:
        return {"iteration_loss": self.iteration_loss, "epochs": self.epochs, "best_epoch": self.best_epoch,
                "changes": self.changes, "loss_includes_penalty": self.LOSS_INCLUDES_PENALTY}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls()
        h.iteration_loss = [float(v) for v in d.get("iteration_loss", [])]
        h.epochs = [dict(e) for e in d.get("epochs", [])]
        h.best_epoch = d.get("best_epoch")
        h.changes = [dict(c) for c in d.get("changes", [])]
        return h

    def save(self, path):
        """Write the history as JSON (atomically)."""
        text = json.dumps(self.to_dict(), indent=1).encode()
        return atomic_write(path, lambda f: f.write(text))

    def __repr__(self):
        return f"History(epochs={len(self.epochs)}, best_epoch={self.best_epoch})"
