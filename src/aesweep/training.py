"""Training an autoencoder: compile, fit with compact progress, stop on divergence."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from aesweep.errors import TrainingDiverged

log = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch losses and wall times of one fit."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    @property
    def seconds_per_epoch(self) -> float:
        """Median epoch time, leaving out the first epoch, which traces the graph."""
        times = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(times)) if times else math.nan


class _Recorder(keras.callbacks.Callback):
    """Fills a :class:`History`, prints a line every few epochs, stops on a NaN loss."""

    def __init__(self, history: History, *, epochs: int, progress_every: int, on_epoch_end) -> None:
        super().__init__()
        self.history_ = history
        self.on_epoch_end_ = on_epoch_end
        self.epochs = epochs
        self.progress_every = progress_every
        self.diverged: TrainingDiverged | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.history_.epoch_seconds.append(time.perf_counter() - self._start)
        loss = float(logs.get("loss", math.nan))
        self.history_.loss.append(loss)
        if "val_loss" in logs:
            self.history_.val_loss.append(float(logs["val_loss"]))
        if self.on_epoch_end_ is not None:
            self.on_epoch_end_(epoch + 1, {k: float(v) for k, v in logs.items()})
        if not math.isfinite(loss):
            self.diverged = TrainingDiverged(epoch + 1, loss)
            self.model.stop_training = True
            return
        done = epoch + 1
        if done == 1 or done % self.progress_every == 0 or done == self.epochs:
            val = f"  val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
            log.info(
                "epoch %*d/%d  loss %.4f%s  (%.3f s/epoch)",
                len(str(self.epochs)),
                done,
                self.epochs,
                loss,
                val,
                self.history_.epoch_seconds[-1],
            )


def train_autoencoder(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray | None,
    *,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    progress_every: int = 25,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> History:
    """Fit ``model`` to reconstruct ``x_train`` with Adam and MSE, as the seed did.

    ``on_epoch_end(epoch, losses)`` is called after each epoch (1-based) with
    ``{"loss": ..., "val_loss": ...}``; tracking hooks in here.

    Raises
    ------
    TrainingDiverged
        When the training loss is no longer finite; training stops at that epoch.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    history = History()
    recorder = _Recorder(
        history, epochs=epochs, progress_every=progress_every, on_epoch_end=on_epoch_end
    )
    model.fit(
        x_train,
        x_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_val, x_val) if x_val is not None and len(x_val) else None,
        callbacks=[recorder],
        verbose=0,
    )
    if recorder.diverged is not None:
        raise recorder.diverged
    return history


def encode(model: keras.Model, x: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """``model(x)`` in batches, without ``predict``'s per-model graph tracing."""
    if not len(x):
        return np.empty((0, *model.output.shape[1:]), dtype=np.float32)
    parts = [model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts])
