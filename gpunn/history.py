"""History: what a training run measured, per iteration and per epoch, saved as JSON."""

from __future__ import annotations

import json

from .checkpoint import atomic_write


class History:
    """What a training run measured: the loss per iteration and a record per epoch (what :meth:`gpunn.Trainer.fit` returns).

    The losses are *data* losses: they do not include the L2 penalty (lambda / 2) sum ||W||^2
    that weight decay adds to the objective (``LOSS_INCLUDES_PENALTY`` is False). ``penalty`` is
    that term at the end of each epoch, so ``train_loss + penalty`` approximates the objective.

    Attributes
    ----------
    iteration_loss : list of float
        The data loss of each minibatch, in order (the Trainer records every ``log_every`` steps).
    epochs : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``train_accuracy`` (means over the epoch's
        minibatches, as trained: dropout on), ``val_loss``, ``val_accuracy`` (None without
        validation), ``lr``, ``penalty`` and ``seconds``.
    best_epoch : int or None
        The epoch of the best validation accuracy; None without validation.
    changes : list of dict
        Hyperparameters changed on resume: ``{"epoch", "name", "from", "to"}``.

    Examples
    --------
    >>> h = gn.History()
    >>> h.epochs = [{"epoch": 1, "val_accuracy": 0.8}, {"epoch": 2, "val_accuracy": 0.9}]
    >>> h.best_epoch = 2
    >>> h.column("val_accuracy"), h.best
    ([0.8, 0.9], {'epoch': 2, 'val_accuracy': 0.9})
    >>> gn.History.from_dict(h.to_dict())
    History(epochs=2, best_epoch=2)
    """

    LOSS_INCLUDES_PENALTY = False

    def __init__(self):
        self.iteration_loss: list[float] = []
        self.epochs: list[dict] = []
        self.best_epoch: int | None = None
        self.changes: list[dict] = []

    def column(self, key: str) -> list:
        """One value per epoch, e.g. ``history.column("val_accuracy")``.

        Parameters
        ----------
        key : str
            A field of the epoch records.

        Returns
        -------
        list
            That field of every epoch, in order.

        Raises
        ------
        KeyError
            If an epoch record has no ``key``.
        """
        return [e[key] for e in self.epochs]

    @property
    def best(self) -> dict | None:
        """The record of the best epoch (None without validation)."""
        return next((e for e in self.epochs if e["epoch"] == self.best_epoch), None)

    def to_dict(self) -> dict:
        """The history as JSON-ready data (what :meth:`save` writes).

        Returns
        -------
        dict
            ``iteration_loss``, ``epochs``, ``best_epoch``, ``changes`` and ``loss_includes_penalty``.
        """
        return {"iteration_loss": self.iteration_loss, "epochs": self.epochs, "best_epoch": self.best_epoch,
                "changes": self.changes, "loss_includes_penalty": self.LOSS_INCLUDES_PENALTY}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """A history from :meth:`to_dict`'s data (or a ``history.json`` read back).

        Parameters
        ----------
        d : dict
            As :meth:`to_dict` returns it; missing fields are empty.

        Returns
        -------
        History
            A new history holding copies of the records.
        """
        h = cls()
        h.iteration_loss = [float(v) for v in d.get("iteration_loss", [])]
        h.epochs = [dict(e) for e in d.get("epochs", [])]
        h.best_epoch = d.get("best_epoch")
        h.changes = [dict(c) for c in d.get("changes", [])]
        return h

    def save(self, path):
        """Write the history as JSON, atomically (a failed write leaves the previous file).

        Parameters
        ----------
        path : str or pathlib.Path
            The file, e.g. ``runs/train/history.json``.

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        text = json.dumps(self.to_dict(), indent=1).encode()
        return atomic_write(path, lambda f: f.write(text))

    def __repr__(self):
        return f"History(epochs={len(self.epochs)}, best_epoch={self.best_epoch})"
