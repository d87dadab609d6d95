"""Resuming a run from its checkpoint: what it keeps, what it may change, and how a change is recorded.

One set of rules for ``Trainer.fit(resume=...)`` and ``gpunn train --resume``:

- the model and the data stay as the checkpoint describes them (:data:`FIXED`: a resumed run that asks
  for another architecture, dataset or seed is refused, with the option named);
- the training hyperparameters (:data:`CHANGEABLE`) may change: the new values apply from the next
  epoch, each change recorded in ``history.changes`` and said once;
- another update rule than the checkpoint's starts with fresh optimizer state (its own state arrays
  would not fit), the weights and epoch count still resumed;
- a checkpoint that already holds ``epochs`` epochs leaves nothing to train, and says so.
"""

from __future__ import annotations

from . import checkpoint

# The command line's options, with their defaults: those that describe the model and the data, which a resumed
# run keeps, and those of training, which it may change.
FIXED = {"dataset": "digits", "model": "mlp", "hidden": [256], "activation": "relu", "dropout": 0.0,
         "batchnorm": False, "seed": 0}
CHANGEABLE = {"optimizer": "adam", "lr": 1e-3, "reg": 1e-3, "batch_size": 64, "epochs": 40, "precision": "float32"}


def options(given: dict, saved: dict) -> tuple[dict, list[str]]:
    """(the run's options, the training options that differ from the checkpoint's, as text).

    ``given``: the options asked for (None where not given); ``saved``: those the checkpoint recorded
    ({} for a new run). An option not given takes the checkpoint's value, else its default.
    """
    for name in FIXED:
        if given.get(name) is not None and name in saved and given[name] != saved[name]:
            raise ValueError(f"--{name.replace('_', '-')} {text(given[name])} differs from the checkpoint's "
                             f"{text(saved[name])}: a resumed run keeps its model and data (use another --out to "
                             "start a new run)")
    settings, changes = {}, []
    for name, default in {**FIXED, **CHANGEABLE}.items():
        value = given[name] if given.get(name) is not None else saved.get(name, default)
        if name in CHANGEABLE and name in saved and value != saved[name] and name != "epochs":
            changes.append(f"--{name.replace('_', '-')} {text(saved[name])} -> {text(value)}")
        settings[name] = value
    return settings, changes


def saved_options(path) -> tuple[dict, int]:
    """(the options a checkpoint's run recorded, the epochs it holds)."""
    _, meta = checkpoint.load(path)
    return (meta.get("metadata") or {}).get("cli") or {}, int(meta.get("epoch", 0))


def nothing_left(done: int, epochs: int, option: str = "epochs") -> str | None:
    """Why a run holding ``done`` epochs of ``epochs`` has nothing left to train (``option``: what sets epochs,
    in the caller's words); None where it has something left."""
    if done < epochs:
        return None
    if done == epochs:
        return f"nothing left to train: {done} of {epochs} epochs are done; raise {option} to continue"
    return f"nothing left to train: {done} epochs are done, more than {option}={epochs}; raise {option} above {done}"


def continue_from(trainer, path) -> None:
    """Load ``path`` into ``trainer``, then apply the trainer's own hyperparameters where they differ.

    The trainer's update rule, batch size, learning rate (or its schedule's starting rate) and other
    hyperparameters win over the file's; each difference is recorded in ``history.changes`` (the epoch
    it applies from, the name, the old and the new value). The trainer's ``metadata`` (the command
    line's options, where it has them) replaces the file's.
    """
    _, meta = checkpoint.load(path)
    wanted = trainer.optimizer.hyperparameters()
    wanted_base = None if trainer.schedule is None else trainer.schedule.base_lr
    mine, batch_size = dict(trainer.metadata), trainer.batch_size
    saved_rule, rule = meta.get("optimizer", {}).get("type"), type(trainer.optimizer).__name__
    same_rule = saved_rule in (None, rule)
    trainer.load_checkpoint(path, optimizer=same_rule)
    if mine:
        trainer.metadata = mine
    record = trainer.history.changes.append
    if not same_rule:  # the new rule starts with fresh state, and keeps its own hyperparameters
        record({"epoch": trainer.epoch + 1, "name": "optimizer", "from": saved_rule, "to": rule})
        return
    saved_batch = meta.get("batch_size", batch_size)
    if saved_batch != batch_size:
        record({"epoch": trainer.epoch + 1, "name": "batch_size", "from": saved_batch, "to": batch_size})
    found = trainer.optimizer.hyperparameters()
    if trainer.schedule is not None:  # the schedule owns lr: compare the rates it starts from
        wanted["lr"], found["lr"] = wanted_base, trainer.schedule.base_lr
    for name, value in wanted.items():
        if _as_saved(value) == _as_saved(found[name]):
            continue
        if name == "lr" and trainer.schedule is not None:
            trainer.schedule.base_lr = value
            trainer.optimizer.lr = trainer.schedule.lr_at(trainer.schedule.epoch)
        else:
            setattr(trainer.optimizer, name, value)
        record({"epoch": trainer.epoch + 1, "name": name, "from": _as_saved(found[name]), "to": _as_saved(value)})


def text(value) -> str:
    """An option's value as the command line writes it."""
    return " ".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) else str(value)


def _as_saved(value):
    """Hyperparameter values compared as JSON stores them (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
