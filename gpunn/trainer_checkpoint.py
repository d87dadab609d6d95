"""A Trainer's checkpoint: what it writes after each epoch, and how a file is read back into it.

One ``.npz`` (:mod:`gpunn.checkpoint`, written atomically): the model's weights of the last epoch trained
(and the best epoch's beside them), the optimizer's state, the schedule, the epoch, the seed, the history
and the trainer's ``metadata``. Loading checks the whole file against the trainer first; a file that
does not fit leaves model, optimizer and schedule as they were.

A mixed-precision run saves what is its truth: the float32 master weights (the model's state holds them),
the float32 optimizer state, and the loss scaler's scale, growth tracker and overflow counts, so that a
resumed run takes exactly the steps the uninterrupted one would. A trainer without a loss scaler ignores a
file's; one with a scaler keeps its own where the file has none (a float32 run continued in mixed precision).
"""

from __future__ import annotations

from . import checkpoint
from .history import History
from .validation import check_choice, check_int


def save(trainer, path):
    """Model, optimizer, schedule, epoch, seed and history in one ``.npz``, written atomically.

    The model's weights are those of the last epoch trained (even while ``restore_best``
    has put the best epoch's weights in the model); the best ones are saved beside them.
    """
    trained = trainer._trained_state if trainer._trained_state is not None else trainer.model.device_state()
    arrays = {f"model.{k}": trainer.device.read(v) for k, v in trained.items()}
    opt = trainer.optimizer.state_dict()
    for i, state in enumerate(opt.pop("state")):
        arrays.update({f"optim.{i}.{k}": v for k, v in state.items()})
    if trainer._best_state is not None:
        arrays.update({f"best.{k}": trainer.device.read(v) for k, v in trainer._best_state.items()})
    meta = {
        "epoch": trainer.epoch, "seed": trainer.seed, "optimizer": opt, "n_params": len(trainer.optimizer.params),
        "schedule": None if trainer.schedule is None else trainer.schedule.state_dict(),
        "history": trainer.history.to_dict(), "metadata": trainer.metadata, "batch_size": trainer.batch_size,
        "precision": trainer.precision,
        "loss_scaler": None if trainer.loss_scaler is None else trainer.loss_scaler.state_dict(),
    }
    return checkpoint.save(path, arrays, meta)


def load(trainer, path, weights: str = "last", optimizer: bool = True):
    """Restore a checkpoint; a file that does not fit leaves model, optimizer and schedule untouched.

    ``weights="last"`` puts the last trained epoch's weights in the model; ``"best"`` the best
    validation epoch's (training then goes on from the last ones, as after ``fit``).
    ``optimizer=False`` keeps this trainer's optimizer as it is (a different update rule).
    """
    check_choice("weights", weights, checkpoint.WEIGHTS)
    model_state, opt, best, epoch, history, meta = _read(path, weights)
    scaler = trainer.loss_scaler
    saved = (trainer.model.state_dict(), trainer.optimizer.state_dict(),
             None if trainer.schedule is None else trainer.schedule.state_dict(),
             None if scaler is None else scaler.state_dict())  # to undo a load that fails
    try:
        trainer.model.load_state_dict(model_state)
        if optimizer:
            trainer.optimizer.load_state_dict(opt)
        if (meta.get("schedule") is None) != (trainer.schedule is None):
            raise ValueError("the checkpoint and this trainer disagree on having a learning-rate schedule")
        if trainer.schedule is not None:
            trainer.schedule.load_state_dict(meta["schedule"])
        if scaler is not None and meta.get("loss_scaler") is not None:
            scaler.load_state_dict(meta["loss_scaler"])
    except (ValueError, TypeError) as e:
        trainer.model.load_state_dict(saved[0])
        trainer.optimizer.load_state_dict(saved[1])
        if saved[2] is not None:
            trainer.schedule.load_state_dict(saved[2])
        if saved[3] is not None:
            scaler.load_state_dict(saved[3])
        raise ValueError(f"checkpoint {str(path)!r} does not fit this trainer: {e}") from None
    trainer.epoch, trainer.history, trainer._trained_state = epoch, history, None
    trainer._best_state = None if best is None else _on_device(trainer, best)
    trainer.metadata = dict(meta.get("metadata") or {})
    if weights == "best":
        trainer._trained_state = trainer.model.device_state()
        trainer.model.load_device_state(trainer._best_state)
    return trainer


def _read(path, weights: str):
    """(model state, optimizer state, best weights or None, epoch, history, meta) from a trainer's checkpoint."""
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
    return model_state, opt, best, epoch, history, meta


def _on_device(trainer, state: dict) -> dict:
    """A host state dict (from a file) as a device state of this model: names and shapes checked."""
    current = trainer.model.device_state()
    if state.keys() != current.keys() or any(state[k].shape != current[k].shape for k in state):
        raise ValueError("the checkpoint's best weights do not fit this model")
    return {k: trainer.device.asarray(v, dtype=current[k].dtype) for k, v in state.items()}
