"""Trainer: minibatch gradient descent with validation, best weights, history, progress and checkpoints."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from . import checkpoint
from .data.splits import check_xy
from .devices import device as make_device
from .devices import device_of
from .history import History
from .metrics import correct_count
from .nn.losses import Loss
from .nn.module import Module, backward
from .optim.optimizer import Optimizer
from .optim.schedules import LRSchedule
from .validation import NonFiniteError, check_choice, check_finite, check_int, check_labels


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or the model's outputs became NaN or infinite.

    The model, optimizer and schedule are put back as they were at the start of the epoch
    that diverged (the end of the one before, or the weights training started from); the
    message says which, and whether their forward pass on the training data is finite.
    """


class Trainer:
    """Trains ``model`` on (X, y) with ``loss`` and ``optimizer``.

    ``batch_size``: 1 (stochastic), n (minibatch) or None (full batch). Each epoch visits
    every row once, in an order drawn from ``(seed, epoch)``; dropout masks come from the
    same pair, so a run resumed from a checkpoint replays exactly what the uninterrupted run did.
    ``schedule`` (an :class:`~gpunn.optim.LRSchedule`) is stepped after each epoch.
    With validation data the best epoch's weights (by validation accuracy) are restored at
    the end (``restore_best``); ``patience`` stops early after that many epochs without improvement.

    Divergence: the loss and gradients are checked before every update, and each epoch ends
    with a forward pass on a training batch (and the validation pass) that must be finite.
    When either fails, :class:`TrainingDiverged` is raised and model, optimizer and schedule
    return to the start of that epoch, whose weights passed the previous epoch's check. A
    checkpoint is written only after an epoch passed its check.

    ``metadata``: a JSON-serialisable dict saved in every checkpoint and restored on load
    (the command line keeps its options there).
    """

    def __init__(self, model: Module, loss: Loss, optimizer: Optimizer, batch_size: int | None = 256,
                 epochs: int = 10, device="auto", seed: int = 0, schedule: LRSchedule | None = None,
                 restore_best: bool = True, patience: int | None = None, progress: bool = True):
        for name, value, cls in (("model", model, Module), ("loss", loss, Loss), ("optimizer", optimizer, Optimizer)):
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be a gpunn {cls.__name__}, got {type(value).__name__}")
        if schedule is not None and (not isinstance(schedule, LRSchedule) or schedule.optimizer is not optimizer):
            raise TypeError("schedule must be an LRSchedule built on this trainer's optimizer")
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.patience = None if patience is None else check_int("patience", patience, low=1)
        self.device = make_device(device)
        self.model, self.loss, self.optimizer, self.schedule = model.to(self.device), loss, optimizer, schedule
        self.restore_best = bool(restore_best)
        self.progress = bool(progress)
        self.epoch = 0
        self.history = History()
        self._best_state = None
        self._trained_state = None  # the last epoch's weights, kept while the model holds the best ones
        self.metadata: dict = {}

    # ---------------------------------------------------------------- training
    def fit(self, X, y, val=None, resume=None, checkpoint_path=None, on_epoch=None) -> History:
        """Train until ``epochs`` epochs are done; returns the :class:`History`.

        ``val``: (X_val, y_val). ``resume``: a checkpoint to continue from.
        ``checkpoint_path``: where to write a checkpoint after every epoch.
        ``on_epoch``: called with each epoch's record (a dict, see :class:`History`).
        """
        X, y = self._data(X, y, "X", "y")
        if val is not None:
            if not isinstance(val, (tuple, list)) or len(val) != 2:
                raise TypeError("val must be a pair (X_val, y_val)")
            X_val, y_val = self._data(*val, "X_val", "y_val")
            if X_val.shape[1:] != X.shape[1:]:
                raise ValueError(f"X_val rows have shape {X_val.shape[1:]}, X rows {X.shape[1:]}")
        self._check_labels_fit_model(X, y, "y")
        if val is not None:
            self._check_labels_fit_model(X_val, y_val, "y_val")
        if resume is not None:
            self._resume(resume)
        elif self._trained_state is not None:  # training goes on from the last epoch, not from the best one
            self.model.load_state_dict(self._trained_state)
            self._trained_state = None
        n = X.shape[0]
        bs = n if self.batch_size is None else min(self.batch_size, n)
        per_epoch = math.ceil(n / bs)
        Xd, yd = self._resident(X), self._resident(y)
        bar = tqdm(total=(self.epochs - self.epoch) * per_epoch, unit="batch", leave=True, dynamic_ncols=True,
                   disable=not self.progress or not sys.stderr.isatty())
        stale = 0
        try:
            while self.epoch < self.epochs:
                epoch = self.epoch + 1
                bar.set_description(f"epoch {epoch}/{self.epochs}")
                good = self._snapshot()  # passed the previous epoch's end check (or is where training starts)
                try:
                    record = self._train_epoch(epoch, Xd, yd, n, bs, bar)
                    self._check_outputs(epoch, X[:bs], y[:bs], "a training batch")
                    scores = None if val is None else self._check_outputs(epoch, X_val, y_val, "the validation data")
                except TrainingDiverged as e:
                    raise TrainingDiverged(f"{e}; {self._restore(good, X, y)}") from None
                record["penalty"] = scores["penalty"] if scores else self.optimizer.penalty()
                if scores is not None:
                    record.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
                    best = self.history.best
                    if best is None or record["val_accuracy"] > best["val_accuracy"]:
                        self.history.best_epoch, stale = epoch, 0
                        self._best_state = self.model.state_dict()
                    else:
                        stale += 1
                if self.schedule is not None:
                    self.schedule.step()
                self.history.epochs.append(record)
                self.epoch = epoch
                bar.set_postfix(loss=f"{record['train_loss']:.4f}", acc=f"{record['train_accuracy']:.3f}",
                                val_acc="-" if val is None else f"{record['val_accuracy']:.3f}")
                if checkpoint_path is not None:
                    self.save_checkpoint(checkpoint_path)
                if on_epoch is not None:
                    on_epoch(record)
                if self.patience is not None and val is not None and stale >= self.patience:
                    break
        finally:
            bar.close()
        if self.restore_best and self._best_state is not None:
            self._trained_state = self.model.state_dict()
            self.model.load_state_dict(self._best_state)
        return self.history

    def _train_epoch(self, epoch: int, X, y, n: int, bs: int, bar) -> dict:
        start = time.perf_counter()
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        staged = self.device.type == "cuda" and device_of(X).type == "cpu"
        if staged:  # too big for the GPU: gather each batch on the host into pinned memory, then upload
            stage = self.device.pinned_empty((bs, *X.shape[1:]), self.model.dtype)
        elif device_of(X) != device_of(order):
            order = self.device.asarray(order)  # the data is on the GPU: gather batches there
        self.model.seed([self.seed, epoch]).train()
        losses, correct = [], 0
        for it, lo in enumerate(range(0, n, bs), start=1):
            idx = order[lo:lo + bs]
            if staged:
                np.take(X, idx, axis=0, out=stage[:len(idx)])
                xb, yb = self.device.asarray(stage[:len(idx)]), self.device.asarray(y[idx])  # synchronous copies
            else:
                xb, yb = X[idx], y[idx]
            self.optimizer.zero_grad()
            try:
                scores = self.model.forward(xb)
                value = self.loss.forward(scores, yb)
            except NonFiniteError as e:
                raise TrainingDiverged(f"training diverged at epoch {epoch}, iteration {it}: {e}") from None
            backward(self.model, self.loss.backward(), input_grad=False)  # X is data: no gradient wanted
            self._check_finite_step(value, epoch, it)
            self.optimizer.step()
            losses.append(value)
            correct = correct + correct_count(scores, yb)
            bar.update(1)
        losses = [float(v) for v in losses]
        self.history.iteration_loss.extend(losses)
        self.device.synchronize()
        return {
            "epoch": epoch, "train_loss": float(np.mean(losses)), "train_accuracy": float(correct) / n,
            "val_loss": None, "val_accuracy": None, "lr": self.optimizer.lr,
            "seconds": time.perf_counter() - start,
        }

    def _check_outputs(self, epoch: int, X, y, what: str) -> dict:
        """:meth:`evaluate` on (X, y), whose outputs and loss must be finite after the epoch's last update."""
        try:
            return self.evaluate(X, y)
        except NonFiniteError:
            raise TrainingDiverged(f"training diverged in epoch {epoch}: after its last update, the model's outputs "
                                   f"on {what} are not finite (try a smaller lr)") from None

    def _snapshot(self) -> dict:
        """Model, optimizer and schedule state (host copies), to go back to if the coming epoch diverges."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": None if self.schedule is None else self.schedule.state_dict(), "epoch": self.epoch}

    def _restore(self, good: dict, X, y) -> str:
        """Put ``good`` back; say which weights the model now holds and whether they work on (X, y)."""
        self.model.load_state_dict(good["model"])
        self.optimizer.load_state_dict(good["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(good["schedule"])
        self._trained_state = None
        epoch = good["epoch"]
        which = "the weights training started from" if epoch == 0 else f"the weights from the end of epoch {epoch}"
        try:
            self.evaluate(X, y)
        except NonFiniteError:
            return (f"the model holds {which}, but their outputs on the training data are not finite either: "
                    "check the data's scale and the model")
        return f"the model holds {which} (their loss on the training data is finite)"

    def _check_finite_step(self, value, epoch: int, it: int) -> None:
        """Refuse to step on a non-finite loss or gradient: one BLAS dot per gradient, one host read.

        g . g is NaN or infinite exactly when g holds a NaN or an infinity, or values beyond
        ~1e19 (float32), which is divergence too. It costs one read of the gradients
        (about 1 ms per step for 3.1M float32 on 2 cores, 20% less than a plain sum).
        """
        flat = [p.grad.reshape(-1) for p in self.optimizer.params if p.grad is not None]
        total = value + sum(g @ g for g in flat)
        if not math.isfinite(float(total)):
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}, iteration {it}: the loss ({float(value)}) or a gradient is "
                "NaN, infinite or huge (try a smaller lr)"
            )

    def evaluate(self, X, y, batch_size: int | None = None) -> dict:
        """Mean data loss, accuracy, and the full objective over (X, y), in evaluation mode.

        {"loss": mean data loss, "accuracy": fraction correct, "penalty": the optimizer's L2 term
        (lambda / 2) sum ||W||^2, "objective": loss + penalty (what the updates descend)}.
        """
        X, y = self._data(X, y, "X", "y")
        bs = check_int("batch_size", batch_size or max(self.batch_size or 0, 1024), low=1)
        was_training = self.model.training
        self.model.eval()
        total, correct = 0.0, 0
        try:
            for lo in range(0, X.shape[0], bs):
                xb, yb = X[lo:lo + bs], y[lo:lo + bs]
                scores = self.model.forward(xb)
                total += float(self.loss.forward(scores, yb)) * xb.shape[0]
                correct += int(correct_count(scores, self.device.asarray(yb)))
        finally:
            self.model.train(was_training)
        loss, penalty = total / X.shape[0], self.optimizer.penalty()
        return {"loss": loss, "accuracy": correct / X.shape[0], "penalty": penalty, "objective": loss + penalty}

    # ---------------------------------------------------------------- data
    def _data(self, X, y, xname: str, yname: str):
        X, y = check_xy(X, y, matrix=False)
        check_finite(xname, X)
        check_labels(yname, y, X.shape[0], None)
        if int(y.min()) < 0:
            raise ValueError(f"{yname} must be class indices >= 0, got {int(y.min())}")
        return X, y

    def _check_labels_fit_model(self, X, y, name: str) -> None:
        """Every label must name one of the model's outputs: checked with a one-row forward pass, before training."""
        was_training = self.model.training
        try:
            width = self.model.eval().forward(X[:1]).shape
        finally:
            self.model.train(was_training)
        classes = 2 if len(width) == 1 or width[1] == 1 else width[1]  # one output unit: labels 0 and 1
        if int(y.max()) >= classes:
            raise ValueError(f"{name} has label {int(y.max())}, but the model scores {classes} classes (0..{classes - 1})")

    def _resident(self, a):
        """``a`` on the training device when it fits there (GPU: half the free memory), else on the host."""
        dtype = self.model.dtype if a.dtype.kind == "f" else None
        if self.device.type == "cuda" and self.device.fits(a.nbytes):
            return self.device.asarray(a, dtype=dtype)
        return np.asarray(a, dtype=dtype)

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path):
        """Model, optimizer, schedule, epoch, seed and history in one ``.npz``, written atomically.

        The model's weights are those of the last epoch trained (even while ``restore_best``
        has put the best epoch's weights in the model); the best ones are saved beside them.
        """
        trained = self._trained_state if self._trained_state is not None else self.model.state_dict()
        arrays = {f"model.{k}": v for k, v in trained.items()}
        opt = self.optimizer.state_dict()
        for i, state in enumerate(opt.pop("state")):
            arrays.update({f"optim.{i}.{k}": v for k, v in state.items()})
        if self._best_state is not None:
            arrays.update({f"best.{k}": v for k, v in self._best_state.items()})
        meta = {
            "epoch": self.epoch, "seed": self.seed, "optimizer": opt, "n_params": len(self.optimizer.params),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "history": self.history.to_dict(), "metadata": self.metadata,
        }
        return checkpoint.save(path, arrays, meta)

    def load_checkpoint(self, path, weights: str = "last", optimizer: bool = True) -> "Trainer":
        """Restore a checkpoint; a file that does not fit leaves model, optimizer and schedule untouched.

        ``weights="last"`` puts the last trained epoch's weights in the model; ``"best"`` the best
        validation epoch's (training then goes on from the last ones, as after ``fit``).
        ``optimizer=False`` keeps this trainer's optimizer as it is (a different update rule).
        """
        check_choice("weights", weights, checkpoint.WEIGHTS)
        arrays, meta = checkpoint.load(path)
        try:
            opt = dict(meta["optimizer"])
            opt["state"] = [checkpoint.with_prefix(arrays, f"optim.{i}.") for i in range(int(meta["n_params"]))]
            model_state = checkpoint.with_prefix(arrays, "model.")
            best = checkpoint.with_prefix(arrays, "best.") or None
            epoch, history = check_int("epoch", meta["epoch"], low=0), History.from_dict(meta["history"])
            if weights == "best" and best is None:
                raise ValueError("it has no best weights (trained without validation data)")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{str(path)!r} is not a complete gpunn trainer checkpoint ({e})") from None
        saved = (self.model.state_dict(), self.optimizer.state_dict(),
                 None if self.schedule is None else self.schedule.state_dict())
        try:
            self.model.load_state_dict(model_state)
            if optimizer:
                self.optimizer.load_state_dict(opt)
            if (meta.get("schedule") is None) != (self.schedule is None):
                raise ValueError("the checkpoint and this trainer disagree on having a learning-rate schedule")
            if self.schedule is not None:
                self.schedule.load_state_dict(meta["schedule"])
        except (ValueError, TypeError) as e:
            self.model.load_state_dict(saved[0])
            self.optimizer.load_state_dict(saved[1])
            if saved[2] is not None:
                self.schedule.load_state_dict(saved[2])
            raise ValueError(f"checkpoint {str(path)!r} does not fit this trainer: {e}") from None
        self.epoch, self.history, self._best_state, self._trained_state = epoch, history, best, None
        self.metadata = dict(meta.get("metadata") or {})
        if weights == "best":
            self._trained_state = self.model.state_dict()
            self.model.load_state_dict(best)
        return self

    def _resume(self, path) -> None:
        """Load ``path``, then apply this trainer's own hyperparameters where they differ from the checkpoint's.

        Each change is recorded in ``history.changes`` (epoch it applies from, name, old and new value).
        """
        wanted = self.optimizer.hyperparameters()
        wanted_base = None if self.schedule is None else self.schedule.base_lr
        self.load_checkpoint(path)
        found = self.optimizer.hyperparameters()
        if self.schedule is not None:  # the schedule owns lr: compare the rates it starts from
            wanted["lr"], found["lr"] = wanted_base, self.schedule.base_lr
        for name, value in wanted.items():
            if _normal(value) == _normal(found[name]):
                continue
            if name == "lr" and self.schedule is not None:
                self.schedule.base_lr = value
                self.optimizer.lr = self.schedule.lr_at(self.schedule.epoch)
            else:
                setattr(self.optimizer, name, value)
            self.history.changes.append({"epoch": self.epoch + 1, "name": name, "from": _normal(found[name]),
                                         "to": _normal(value)})


def _normal(value):
    """Hyperparameter values compared as JSON stores them (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
