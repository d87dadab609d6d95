"""Trainer: minibatch gradient descent with validation, best weights, history, progress and checkpoints."""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from . import resume as resuming
from . import trainer_checkpoint
from .batches import Batches, resident
from .data.splits import check_xy
from .devices import device as make_device
from .devices import PRECISIONS, on_device
from .distributed import data_parallel
from .divergence import DivergenceFlag
from .history import History
from .loss_scaler import LossScaler
from .metrics import correct_count
from .nn.losses import Loss
from .nn.module import Module, backward
from .optim.optimizer import Optimizer
from .optim.schedules import LRSchedule
from .precision import MIXED, computing_in, training_precision
from .validation import NonFiniteError, check_choice, check_finite, check_int, check_labels

MONITORS = {"val_accuracy": 1, "val_loss": -1}  # what a better epoch has more of (1) or less of (-1)


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or the model's outputs became NaN or infinite.

    The model, optimizer and schedule are put back as they were at the start of the epoch
    that diverged (the end of the one before, or the weights training started from); the
    message says which, and whether their forward pass on the training data is finite.
    """


class Diverged(NamedTuple):
    """What an epoch reports instead of its record when it diverged."""

    message: str
    candidate: str | None  # the weights the divergence flag left in place (after the last good step), if any


class Trainer:
    """Trains ``model`` on (X, y) with ``loss`` and ``optimizer``: minibatch gradient descent.

    Each epoch visits every row once, in an order drawn from ``(seed, epoch)``; dropout masks come
    from the same pair, so a run resumed from a checkpoint replays exactly what the uninterrupted run
    did. With validation data the best epoch's weights (by ``monitor``) are put in the model at the
    end of :meth:`fit` (``restore_best``).

    Divergence: the loss and gradients are checked before every update, and each epoch ends with a
    forward pass on a training batch (and the validation pass) that must be finite. When either
    fails, :class:`TrainingDiverged` is raised and model, optimizer and schedule return to the start
    of that epoch, whose weights passed the previous epoch's check (or to the weights after the last
    good update, where their loss is finite). A checkpoint is written only after an epoch passed its
    check.

    No host round-trips in a step: labels are checked once per ``fit`` (the loss's own per-call
    checks are off while training), the finiteness check is a flag on the device that the update
    kernels read (``gpunn/divergence.py``), and losses and correct counts add up on the device.
    The host reads them every ``log_every`` steps (the progress bar) and at the end of each epoch.

    Parameters
    ----------
    model : Module
        The network to train. It is moved to ``device`` (and cast to ``precision`` where that is
        "float32" or "float64") when the trainer is made.
    loss : Loss
        The data loss, e.g. :class:`~gpunn.nn.SoftmaxCrossEntropy`.
    optimizer : Optimizer
        Updates the model's parameters (another model's are refused). Built from a part of them,
        it leaves the rest as they are, which is how parameters are frozen on purpose. A parameter
        it holds but whose gradient no backward pass sets is named in a warning after each fit's
        first step.
    batch_size : int or None, default=256
        Rows per update: 1 (stochastic), n (minibatch) or None (full batch, every row at once).
    epochs : int, default=10
        The epochs to train, >= 1, counted from the start of the run (a resumed run continues
        to this number).
    device : str or Device, default="auto"
        Where the model trains: "auto", "cpu", "cuda", "cuda:N" or a :class:`~gpunn.Device`.
    seed : int, default=0
        Seeds each epoch's row order and dropout masks (with the epoch number), >= 0.
    schedule : LRSchedule or None, default=None
        A learning-rate schedule built on ``optimizer``, stepped after each epoch.
    restore_best : bool, default=True
        Whether :meth:`fit` with validation data ends with the best epoch's weights in the model
        (training goes on from the last epoch's if ``fit`` is called again).
    patience : int or None, default=None
        With validation data, stop after this many epochs without improvement of ``monitor``;
        None trains every epoch.
    progress : bool, default=True
        Whether to show a progress bar (tqdm; shown only where stderr is a terminal).
    log_every : int, default=50
        Steps between the host's reads of the losses (for the bar and the divergence check), >= 1.
    distributed : bool or object, default=False
        True: data-parallel over MPI, launched with ``mpirun -n P`` (see :mod:`gpunn.distributed`);
        each process takes its part of every global batch, gradients are summed across processes,
        and only rank 0 writes checkpoints. An object with :class:`~gpunn.distributed.Solo`'s
        methods may be given instead.
    monitor : {"val_accuracy", "val_loss"}, default="val_accuracy"
        What makes an epoch the best: a higher validation accuracy, or a lower validation loss
        (finer on a small validation set).
    precision : {None, "float32", "float64", "mixed"}, default=None
        None: the model's own dtype; "float32" or "float64": the model is cast to it; "mixed": on
        a CUDA device, float16 compute with float32 master weights and optimizer state, and dynamic
        loss scaling on the device. What stays float32 is said in ``gpunn/precision.py``; a step
        whose float16 gradients overflow is skipped and the scale halved, which is not divergence.
        ``fit`` ends with the float32 masters in the model; checkpoints hold the masters and the
        scaler's state.
    loss_scaler : LossScaler or None, default=None
        The loss scaler of ``precision="mixed"`` (PyTorch ``GradScaler``'s defaults when None).

    Attributes
    ----------
    model, loss, optimizer, schedule : Module, Loss, Optimizer, LRSchedule or None
        As given (the model on ``device``).
    device : Device
        Where the model trains.
    precision : str
        The precision it trains in: "float32", "float64" or "mixed".
    epoch : int
        Epochs trained so far (restored from a checkpoint on resume).
    history : History
        What the training measured, per iteration and per epoch.
    metadata : dict
        JSON-serialisable; saved in every checkpoint and restored on load (the command line keeps
        its options there).

    Raises
    ------
    TypeError
        If ``model``, ``loss``, ``optimizer`` or ``loss_scaler`` is not a gpunn object of its kind,
        ``schedule`` is not an LRSchedule of this optimizer, or a number is not an int.
    ValueError
        If the optimizer holds parameters that are not the model's, a number is out of range,
        ``monitor`` or ``precision`` is unknown, "mixed" is asked for on the CPU (or for a model that
        is not float32), or ``loss_scaler`` is given without "mixed".

    Examples
    --------
    A linear classifier of 3 features, trained for two epochs with a validation split:

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> model = gn.nn.Sequential(gn.nn.Linear(3, 2, rng=0))
    >>> opt = gn.optim.SGD(model.parameters(), lr=0.5)
    >>> trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=10, epochs=2,
    ...                      device="cpu", progress=False)
    >>> history = trainer.fit(X[:30], y[:30], val=(X[30:], y[30:]))
    >>> history
    History(epochs=2, best_epoch=2)
    >>> history.column("val_accuracy"), opt.steps
    ([0.8, 0.9], 6)
    >>> round(trainer.evaluate(X, y)["accuracy"], 2)
    0.95
    """

    def __init__(self, model: Module, loss: Loss, optimizer: Optimizer, batch_size: int | None = 256,
                 epochs: int = 10, device="auto", seed: int = 0, schedule: LRSchedule | None = None,
                 restore_best: bool = True, patience: int | None = None, progress: bool = True, log_every: int = 50,
                 distributed=False, monitor: str = "val_accuracy", precision: str | None = None,
                 loss_scaler: LossScaler | None = None):
        for name, value, cls in (("model", model, Module), ("loss", loss, Loss), ("optimizer", optimizer, Optimizer)):
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be a gpunn {cls.__name__}, got {type(value).__name__}")
        if schedule is not None and (not isinstance(schedule, LRSchedule) or schedule.optimizer is not optimizer):
            raise TypeError("schedule must be an LRSchedule built on this trainer's optimizer")
        optimizer.check_trains(model)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.patience = None if patience is None else check_int("patience", patience, low=1)
        self.monitor = check_choice("monitor", monitor, tuple(MONITORS))
        self.log_every = check_int("log_every", log_every, low=1)
        if loss_scaler is not None and not isinstance(loss_scaler, LossScaler):
            raise TypeError(f"loss_scaler must be a gpunn LossScaler or None, got {type(loss_scaler).__name__}")
        self.parallel = data_parallel(distributed)
        self.device = self.parallel.device_for(make_device(device))
        self.precision = training_precision(precision, model, self.device, self.parallel.size)
        if loss_scaler is not None and self.precision != MIXED:
            raise ValueError(f"loss_scaler is for precision='mixed' (float16 gradients), got precision="
                             f"{self.precision!r}")
        # checked: now the model moves (and is cast to "float32" or "float64" where that was asked)
        dtype = precision if precision in PRECISIONS else None
        self.model, self.loss, self.optimizer, self.schedule = model.to(self.device, dtype), loss, optimizer, schedule
        self.restore_best = bool(restore_best)
        self.progress = bool(progress)
        self.epoch = 0
        self.history = History()
        self._best_state = None
        self._trained_state = None  # the last epoch's weights, kept while the model holds the best ones
        self.metadata: dict = {}
        self._flag = DivergenceFlag(self.device)
        self.loss_scaler = None  # mixed precision: its state on the device, read by the loss, check and update
        if self.precision == MIXED:
            self.loss_scaler = (loss_scaler or LossScaler()).bind(self.device)

    # ---------------------------------------------------------------- training
    @on_device(lambda self, *rest: self.device)
    def fit(self, X, y, val=None, resume=None, checkpoint_path=None, on_epoch=None) -> History:
        """Train until ``epochs`` epochs are done; returns the :class:`History`.

        The epoch count carries over between calls: a second ``fit`` with ``epochs`` already done
        warns that nothing is left to train (raise ``trainer.epochs`` to go on). Training goes on
        from the last epoch's weights, not the best ones ``restore_best`` put in the model.

        Parameters
        ----------
        X : array of shape (N, ...) (NumPy or CuPy)
            The training rows, finite numbers (any trailing shape the model takes, e.g. (N, C, H, W)
            for a convnet); moved to the device in batches, or whole where it fits.
        y : array of shape (N,), int
            Class indices, 0 <= y < the model's number of outputs (0 or 1 for one output unit).
        val : tuple (X_val, y_val) or None, default=None
            Validation data, rows shaped like ``X``'s: scored after each epoch, for ``monitor``,
            ``patience`` and ``restore_best``.
        resume : str, pathlib.Path or None, default=None
            A checkpoint (from :meth:`save_checkpoint` or ``checkpoint_path``) to continue from: its
            weights, optimizer state, epoch and history are loaded, and this trainer's own
            hyperparameters apply where they differ (each change recorded in ``history.changes``;
            the rules are in ``gpunn/resume.py``).
        checkpoint_path : str, pathlib.Path or None, default=None
            Where to write a checkpoint after every epoch (by rank 0 only, under MPI).
        on_epoch : callable or None, default=None
            Called with each epoch's record (a dict, see :class:`~gpunn.History`) at the end of the epoch,
            after its checkpoint (if any) is written.

        Returns
        -------
        History
            ``self.history``: the loss of each iteration and a record per epoch.

        Raises
        ------
        TrainingDiverged
            If the loss, a gradient or the model's outputs became NaN or infinite (the model is left
            with working weights; the message says which).
        ValueError
            If the data are not finite, the labels do not fit the model, ``X_val`` rows are shaped
            unlike ``X``'s, or ``resume`` is not a checkpoint that fits this trainer.
        TypeError
            If ``val`` is not a pair.
        """
        X, y = self._data(X, y, "X", "y")
        val = None if val is None else self._validation(val, X)
        self._check_labels_fit_model(X, y, "y")
        if val is not None:
            self._check_labels_fit_model(*val, "y_val")
        if resume is not None:
            resuming.continue_from(self, resume)
        elif self._trained_state is not None:  # training goes on from the last epoch, not from the best one
            self.model.load_device_state(self._trained_state)
            self._trained_state = None
        done = resuming.nothing_left(self.epoch, self.epochs)
        if done:
            warnings.warn(done, UserWarning, stacklevel=3)
        self.parallel.start(self.model, X, y)  # same data everywhere, and rank 0's weights
        with computing_in(self.precision, self.model):  # mixed: float16 copies of float32 masters, for this fit
            # the data in the model's compute dtype (float16 in mixed precision: half the bytes, cast once)
            batches = Batches(self.device, X, y, self.batch_size, self.parallel, self.model.dtype)
            val_d = None if val is None else resident(self.device, *val, self.model.dtype)  # uploaded once per fit
            bar = tqdm(total=(self.epochs - self.epoch) * len(batches), unit="batch", leave=True, dynamic_ncols=True,
                       disable=not self.progress or not sys.stderr.isatty())
            self._gradients_looked_at = False  # after this fit's first step: parameters that got no gradient
            scale = None if self.loss_scaler is None else self.loss_scaler.scale_array
            try:  # labels were checked above; a NaN shows in the divergence flag
                with self.loss.unchecked(), self.loss.scaled(scale), np.errstate(over="ignore", invalid="ignore"):
                    self._epochs(batches, val_d, bar, checkpoint_path, on_epoch)
            finally:
                bar.close()
            if self.restore_best and self._best_state is not None:
                self._trained_state = self.model.device_state()
                self.model.load_device_state(self._best_state)
        return self.history

    def _validation(self, val, X):
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            raise TypeError("val must be a pair (X_val, y_val)")
        X_val, y_val = self._data(*val, "X_val", "y_val")
        if X_val.shape[1:] != X.shape[1:]:
            raise ValueError(f"X_val rows have shape {X_val.shape[1:]}, X rows {X.shape[1:]}")
        return X_val, y_val

    def _epochs(self, batches: Batches, val, bar, checkpoint_path, on_epoch) -> None:
        """Epochs until ``epochs`` are done (or patience runs out): train, check, validate, record, save."""
        stale = 0
        probe = (batches.X[:batches.size], batches.y[:batches.size])
        while self.epoch < self.epochs:
            epoch = self.epoch + 1
            bar.set_description(f"epoch {epoch}/{self.epochs}")
            good = self._snapshot()  # passed the previous epoch's end check (or is where training starts)
            record = self._train_epoch(epoch, batches, bar)
            if not isinstance(record, Diverged):
                record = self._end_of_epoch(epoch, record, probe, val)
            if isinstance(record, Diverged):
                raise TrainingDiverged(f"{record.message}; {self._settle(record.candidate, good, *probe)}")
            if val is not None:
                stale = 0 if self._improved(record) else stale + 1
            if self.schedule is not None:
                self.schedule.step()
            self.history.epochs.append(record)
            self.epoch = epoch
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", acc=f"{record['train_accuracy']:.3f}",
                            val_acc="-" if val is None else f"{record['val_accuracy']:.3f}")
            if checkpoint_path is not None and self.parallel.is_root:
                self.save_checkpoint(checkpoint_path)
            if on_epoch is not None:
                on_epoch(record)
            if self.patience is not None and val is not None and stale >= self.patience:
                break

    def _end_of_epoch(self, epoch: int, record: dict, probe, val):
        """The epoch's record with its penalty and validation scores; Diverged where the outputs are not finite."""
        checks = [("a training batch", probe)] + ([] if val is None else [("the validation data", val)])
        for what, (X, y) in checks:
            try:
                scores = self._evaluate(X, y)
            except NonFiniteError:
                return Diverged(f"training diverged in epoch {epoch}: after its last update, the model's outputs "
                                f"on {what} are not finite (try a smaller lr)", None)
            if what == "a training batch":
                record["penalty"] = scores["penalty"]
            else:
                record.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
        return record

    def _improved(self, record: dict) -> bool:
        """True, and the weights kept, when this epoch beats the best so far by ``monitor``."""
        best, sign = self.history.best, MONITORS[self.monitor]
        if best is not None and sign * record[self.monitor] <= sign * best[self.monitor]:
            return False
        self.history.best_epoch = record["epoch"]
        self._best_state = self.model.device_state()
        return True

    def _train_epoch(self, epoch: int, batches: Batches, bar):
        """One pass over the data in the epoch's order: the epoch's record, or Diverged.

        Reads the device every ``log_every`` steps and at the end.
        """
        start = time.perf_counter()
        self.model.seed([self.seed, epoch]).train()
        self._flag.reset()
        losses, pending, counted = [], [], []
        first_row = 0  # where this process's rows start in the global batch: random layers draw those rows' part
        order = np.random.default_rng([self.seed, epoch]).permutation(batches.n)
        for it, batch in enumerate(batches.epoch(order), start=1):
            if batch.first_row != first_row:
                first_row = batch.first_row
                self.model.rows_from(first_row)
            value, correct = self._step(batch)
            pending.append(value)
            counted.append(correct)
            bar.update(1)
            if it % self.log_every == 0 or it == len(batches):
                bad, values = self._read_losses(pending)
                losses += values
                pending = []
                if bad:  # the update kernels skipped that step and the rest: the step count stopped there too
                    return Diverged(f"training diverged at epoch {epoch}, iteration {bad}: {self._why_bad(losses[bad - 1])}",
                                    f"the weights after iteration {bad - 1} of epoch {epoch}" if bad > 1 else None)
                bar.set_postfix(loss=f"{np.mean(losses[-self.log_every:]):.4f}")
        if first_row:
            self.model.rows_from(0)  # outside training the model sees whole batches again
        self.history.iteration_loss.extend(losses)
        correct = self.device.read(self.device.xp.stack(counted).sum())  # one read: the epoch's correct rows
        return {
            "epoch": epoch, "train_loss": float(np.mean(losses)),
            "train_accuracy": self.parallel.total(float(correct)) / batches.n,
            "val_loss": None, "val_accuracy": None, "lr": self.optimizer.lr, "seconds": time.perf_counter() - start,
        }

    def _step(self, batch):
        """One update on ``batch``: (the global batch's loss, and this process's correct rows, on the device)."""
        xp, params = self.device.xp, self.optimizer.params
        self.optimizer.zero_grad()
        if batch.share:
            scores = self.model.forward(batch.x)
            value = self.loss.forward(scores, batch.y)
            backward(self.model, self.loss.backward(batch.share), input_grad=False)  # X is data: no gradient wanted
            correct = self._correct(scores, batch.y)
            if not self._gradients_looked_at:
                self._gradients_looked_at = True
                self._warn_of_parameters_without_gradient()
        else:  # more processes than rows in this batch: this one adds nothing
            value, correct = xp.zeros((), self.model.dtype), xp.zeros((), np.int64)
            for p in params:
                p.grad = xp.zeros_like(p.data)
        grads = [p.grad for p in params if p.grad is not None]
        if batch.share != 1:  # this process's share of the global batch's mean loss
            value = value * value.dtype.type(batch.share)
        value = self.parallel.reduce(value, grads)  # the batch's loss and gradients
        # mixed precision: the same check decides the loss scaler's step (an overflow skips it, halves the scale)
        self._flag.check(value, grads, self.loss_scaler)
        # the kernels read the flag (no update from the first bad step on) and the scaler's decision
        self.optimizer.step(skip=self._flag.state, scaler=self.loss_scaler)
        return value, correct

    def _why_bad(self, loss: float) -> str:
        """What the divergence flag recorded, in words: a loss or gradient that is not finite (or too large); in mixed
        precision, a loss that is not finite, or too many float16 overflows in a row."""
        if self.loss_scaler is None:
            return f"the loss ({loss}) or a gradient is NaN, infinite or huge (try a smaller lr)"
        if not math.isfinite(loss):
            return f"the loss ({loss}) is NaN or infinite (try a smaller lr)"
        return (f"the float16 gradients overflowed in {self.loss_scaler.max_consecutive_overflows} steps in a row, "
                "the loss scale halved each time (try a smaller lr, or precision='float32')")

    def _correct(self, scores, y):
        """The rows of ``scores`` whose top score is their label (0-d, on the device), after ``loss.forward``:
        a classification loss counts them in the same pass (``loss.correct``); another loss's are counted here."""
        counted = getattr(self.loss, "correct", None)
        return correct_count(scores, y) if counted is None else counted

    def _warn_of_parameters_without_gradient(self) -> None:
        """Name the optimizer's parameters that a backward pass left without a gradient (host-side: no device read).

        The optimizer skips them, so they would stay as they are through the whole fit without a word.
        """
        trained = {id(p) for p in self.optimizer.params}
        missing = [name for name, p in self.model.named_parameters() if id(p) in trained and p.grad is None]
        if missing:
            one = len(missing) == 1
            what = f"parameter {missing[0]}" if one else f"parameters {', '.join(missing)}"
            warnings.warn(f"{what} got no gradient in the first step, so training will not change "
                          f"{'it' if one else 'them'}: a layer's backward that never sets a parameter's grad leaves "
                          "it out (gpunn.gradcheck.check_model finds such gaps); to freeze parameters on purpose, "
                          "leave them out of the optimizer", UserWarning, stacklevel=5)

    def _read_losses(self, pending: list) -> tuple[int, list[float]]:
        """One host read: (the divergence flag's first bad step, 0 if none; the pending losses as floats)."""
        xp = self.device.xp
        both = self.device.read(xp.concatenate([self._flag.state[:1].astype(np.float64),
                                                xp.stack(pending).astype(np.float64)]))
        return int(both[0]), [float(v) for v in both[1:]]

    def _snapshot(self) -> dict:
        """Model, optimizer, schedule and loss scaler state (copies on the device), to go back to if the coming epoch
        diverges."""
        return {"model": self.model.device_state(), "optimizer": self.optimizer.device_state(),
                "schedule": None if self.schedule is None else self.schedule.state_dict(), "epoch": self.epoch,
                "scaler": None if self.loss_scaler is None else self.loss_scaler.device_state()}

    def _settle(self, candidate: str | None, good: dict, X, y) -> str:
        """Leave the model with working weights after a divergence; say which they are.

        ``candidate``: the weights after the last update before the bad step (where the divergence flag
        skipped the rest), kept when their loss on the training data is finite; else ``good``, the start
        of the epoch.
        """
        self._trained_state = None
        if candidate is not None and self._finite_on(X, y):
            return f"the model holds {candidate}, the last update before it (their loss on the training data is finite)"
        self.model.load_device_state(good["model"])
        self.optimizer.load_device_state(good["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(good["schedule"])
        if self.loss_scaler is not None:
            self.loss_scaler.load_device_state(good["scaler"])
        epoch = good["epoch"]
        which = "the weights training started from" if epoch == 0 else f"the weights from the end of epoch {epoch}"
        if not self._finite_on(X, y):
            return (f"the model holds {which}, but their outputs on the training data are not finite either: "
                    "check the data's scale and the model")
        return f"the model holds {which} (their loss on the training data is finite)"

    def _finite_on(self, X, y) -> bool:
        try:
            self._evaluate(X, y)
        except NonFiniteError:
            return False
        return True

    @on_device(lambda self, *rest: self.device)
    def evaluate(self, X, y, batch_size: int | None = None) -> dict:
        """Mean data loss, accuracy, and the full objective over (X, y), in evaluation mode.

        Parameters
        ----------
        X : array of shape (N, ...) (NumPy or CuPy)
            The rows to score, finite numbers shaped as the model takes them.
        y : array of shape (N,), int
            Their class indices.
        batch_size : int or None, default=None
            Rows per forward pass; None: the larger of the trainer's ``batch_size`` and 1024.

        Returns
        -------
        dict
            ``{"loss": mean data loss, "accuracy": fraction correct, "penalty": the optimizer's L2
            term (lambda / 2) sum ||W||^2, "objective": loss + penalty}`` (what the updates
            descend), as floats.

        Raises
        ------
        NonFiniteError
            A ``ValueError`` raised where the model's outputs, the loss or the penalty are not finite.
        """
        X, y = self._data(X, y, "X", "y")
        bs = check_int("batch_size", batch_size or max(self.batch_size or 0, 1024), low=1)
        try:
            return self._evaluate(X, y, bs)
        except NonFiniteError as e:
            raise NonFiniteError(f"the model's outputs on X are not finite ({e})") from None

    def _evaluate(self, X, y, batch_size: int | None = None) -> dict:
        """:meth:`evaluate` on checked data (host or device): sums on the device, one host read at the end."""
        bs = batch_size or max(self.batch_size or 0, 1024)
        xp = self.device.xp
        total, correct = xp.zeros((), np.float64), xp.zeros((), np.int64)
        with self.model.evaluating(), self.loss.unchecked():  # a non-finite score makes the sum non-finite
            for lo in range(0, X.shape[0], bs):
                xb, yb = X[lo:lo + bs], self.device.asarray(y[lo:lo + bs])
                scores = self.model.forward(xb)
                total = total + self.loss.forward(scores, yb).astype(np.float64) * xb.shape[0]
                correct = correct + self._correct(scores, yb)
        penalty = self.optimizer.penalty_array()
        parts = [total, correct.astype(np.float64)] + ([] if penalty is None else [penalty.astype(np.float64)])
        values = self.device.read(xp.stack(parts))
        if not np.isfinite(values).all():
            raise NonFiniteError("the loss or the L2 penalty is NaN or infinite")
        loss, penalty = float(values[0]) / X.shape[0], float(values[2]) if penalty is not None else 0.0
        return {"loss": loss, "accuracy": float(values[1]) / X.shape[0], "penalty": penalty, "objective": loss + penalty}

    # ---------------------------------------------------------------- data
    def _data(self, X, y, xname: str, yname: str):
        X, y = check_xy(X, y, matrix=False, names=(xname, yname))
        check_finite(xname, X)
        check_labels(yname, y, X.shape[0], None)
        if int(y.min()) < 0:
            raise ValueError(f"{yname} must be class indices >= 0, got {int(y.min())}")
        return X, y

    def _check_labels_fit_model(self, X, y, name: str) -> None:
        """Every label must name one of the model's outputs: checked with a one-row forward pass, before training."""
        with self.model.evaluating():
            width = self.model.forward(X[:1]).shape
        classes = 2 if len(width) == 1 or width[1] == 1 else width[1]  # one output unit: labels 0 and 1
        if int(y.max()) >= classes:
            raise ValueError(f"{name} has label {int(y.max())}, but the model scores {classes} classes (0..{classes - 1})")

    # ---------------------------------------------------------------- checkpoints (gpunn/trainer_checkpoint.py)
    def save_checkpoint(self, path):
        """Model, optimizer, schedule, epoch, seed and history in one ``.npz``, written atomically.

        The model's weights are those of the last epoch trained (even while ``restore_best``
        has put the best epoch's weights in the model); the best ones are saved beside them,
        with ``metadata`` and the loss scaler's state.

        Parameters
        ----------
        path : str or pathlib.Path
            The file to write (replaced if it exists).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        return trainer_checkpoint.save(self, path)

    def load_checkpoint(self, path, weights: str = "last", optimizer: bool = True) -> "Trainer":
        """Restore a checkpoint; a file that does not fit leaves model, optimizer and schedule untouched.

        The epoch, history, best weights and ``metadata`` come from the file too.

        Parameters
        ----------
        path : str or pathlib.Path
            A checkpoint written by :meth:`save_checkpoint`.
        weights : {"last", "best"}, default="last"
            "last" puts the last trained epoch's weights in the model; "best" the best validation
            epoch's (training then goes on from the last ones, as after ``fit``).
        optimizer : bool, default=True
            Whether to load the optimizer's state; False keeps this trainer's optimizer as it is
            (a different update rule).

        Returns
        -------
        Trainer
            ``self``.

        Raises
        ------
        ValueError
            If the file is missing or not a complete gpunn trainer checkpoint, does not fit this
            trainer's model, optimizer or schedule, or has no best weights for ``weights="best"``.

        Examples
        --------
        >>> import os, tempfile
        >>> model = gn.nn.Sequential(gn.nn.Linear(3, 2, rng=0))
        >>> trainer = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters()),
        ...                      epochs=1, device="cpu", progress=False)
        >>> _ = trainer.fit(np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]))
        >>> path = trainer.save_checkpoint(os.path.join(tempfile.mkdtemp(), "run.npz"))
        >>> again = gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), gn.optim.SGD(model.parameters()),
        ...                    epochs=3, device="cpu", progress=False)
        >>> again.load_checkpoint(path).epoch
        1
        """
        return trainer_checkpoint.load(self, path, weights, optimizer)
