"""Training an autoencoder: compile, fit with compact progress, stop on divergence."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``epoch`` is the 1-based epoch where it happened."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"loss diverged to {loss} at epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


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

    def __init__(self, history: History, *, epochs: int, progress_every: int) -> None:
        super().__init__()
        self.history_ = history
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
    callbacks: list[keras.callbacks.Callback] = (),
) -> History:
    """Fit ``model`` to reconstruct ``x_train`` with Adam and MSE, as the seed did.

    ``callbacks`` run after the built-in recorder, so they see a filled history.

    Raises
    ------
    TrainingDiverged
        When the training loss is no longer finite; training stops at that epoch.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    history = History()
    recorder = _Recorder(history, epochs=epochs, progress_every=progress_every)
    model.fit(
        x_train,
        x_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_val, x_val) if x_val is not None and len(x_val) else None,
        callbacks=[recorder, *callbacks],
        verbose=0,
    )
    if recorder.diverged is not None:
        raise recorder.diverged
    return history
