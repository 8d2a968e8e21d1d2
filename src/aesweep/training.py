"""Training an autoencoder: Adam on MSE, one compiled graph per epoch, stop on divergence.

The mathematics are those of ``model.compile(Adam(lr), "mse")`` + ``model.fit(x, x,
batch_size, shuffle=True)``: the same optimizer object, loss, batch size and a fresh
shuffle each epoch. What differs is the bookkeeping: ``fit`` returns to Python after every
batch (callbacks, iterators, metrics), while :func:`train_autoencoder` runs a whole epoch,
all its batches and the validation pass, as one ``tf.function`` call. With ten batches an
epoch, that overhead is a large share of the seed's small networks' epoch time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from aesweep import kernels
from aesweep.augment import Augment, batch_seed
from aesweep.errors import TrainingDiverged

log = logging.getLogger(__name__)

DIVERGED_FACTOR = 1000.0  # a loss this many times an all-zeros output's has blown up


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


def compile_autoencoder(model: keras.Model, *, learning_rate: float) -> None:
    """``compile(Adam(learning_rate), "mse")`` as the seed did, so a saved model goes on with fit.

    On a CPU, Adam's update runs as TensorFlow's fused kernel (:func:`kernels.fused_adam`).
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    if kernels.enabled():
        model.optimizer.build(model.trainable_variables)
        kernels.fused_adam(model.optimizer)


def make_epoch_step(
    model: keras.Model,
    x_train: np.ndarray,
    *,
    batch_size: int,
    augment: Augment | None = None,
) -> Callable[..., tf.Tensor]:
    """A compiled function ``step(order, seed=(0, 0)) -> mean loss`` that trains one epoch.

    ``order`` is a permutation of the training indices; batches are its consecutive
    slices of ``batch_size`` (the last may be smaller), as ``fit`` makes them. The loss is
    the mean over samples of the per-batch MSE, as ``fit`` reports it. With ``augment``,
    each batch is augmented first (its randomness drawn from ``seed`` and the batch's
    index) and the network reconstructs the augmented digits, as DEC-DA trains.
    """
    x = tf.constant(x_train)
    n_samples = len(x_train)
    n_batches = math.ceil(n_samples / batch_size)
    loss_fn = keras.losses.MeanSquaredError()
    optimizer = model.optimizer
    variables = model.trainable_variables

    @tf.function
    def step(order: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        total = tf.constant(0.0)
        for i in tf.range(n_batches):
            batch = tf.gather(x, order[i * batch_size : (i + 1) * batch_size])
            if augment is not None:
                batch = augment(batch, batch_seed(seed, i))
            with tf.GradientTape() as tape:
                loss = loss_fn(batch, model(batch, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            total += loss * tf.cast(tf.shape(batch)[0], tf.float32)
        return total / n_samples

    def run(order: tf.Tensor, seed: tuple[int, int] = (0, 0)) -> tf.Tensor:
        return step(order, tf.constant(seed, tf.int64))

    return run


def make_eval_step(model: keras.Model, x_val: np.ndarray) -> Callable[[], tf.Tensor]:
    """A compiled function ``evaluate() -> MSE`` of ``model`` on all of ``x_val`` at once."""
    x = tf.constant(x_val)
    loss_fn = keras.losses.MeanSquaredError()

    @tf.function
    def evaluate() -> tf.Tensor:
        return loss_fn(x, model(x, training=False))

    return evaluate


def train_autoencoder(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray | None,
    *,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    random_state: int = 0,
    progress_every: int = 25,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    augment: Augment | None = None,
) -> History:
    """Fit ``model`` to reconstruct ``x_train`` with Adam and MSE, as the seed did.

    ``on_epoch_end(epoch, losses)`` is called after each epoch (1-based) with
    ``{"loss": ..., "val_loss": ...}``; tracking hooks in here. ``augment`` (see
    :func:`make_epoch_step`) moves the training digits, never the held-out ``x_val``.

    Raises
    ------
    TrainingDiverged
        When the training loss is no longer finite, or :data:`DIVERGED_FACTOR` times that of
        a network that outputs zeros (a learning rate far too large can climb to 1e7
        without reaching inf); training stops at that epoch.
    """
    compile_autoencoder(model, learning_rate=learning_rate)
    train_epoch = make_epoch_step(model, x_train, batch_size=batch_size, augment=augment)
    evaluate = make_eval_step(model, x_val) if x_val is not None and len(x_val) else None
    rng = np.random.default_rng(random_state)
    zeros_loss = float(np.mean(np.square(x_train))) or 1.0
    history = History()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = tf.constant(rng.permutation(len(x_train)))
        losses = {"loss": float(train_epoch(order, (random_state, epoch)))}
        if evaluate is not None:
            losses["val_loss"] = float(evaluate())
        history.epoch_seconds.append(time.perf_counter() - start)
        history.loss.append(losses["loss"])
        if "val_loss" in losses:
            history.val_loss.append(losses["val_loss"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, losses)
        if not math.isfinite(losses["loss"]):
            raise TrainingDiverged(epoch, losses["loss"])
        if losses["loss"] > DIVERGED_FACTOR * zeros_loss:
            why = f" ({DIVERGED_FACTOR:g}x the {zeros_loss:.3g} of an all-zeros output)"
            raise TrainingDiverged(epoch, losses["loss"], why)
        if epoch == 1 or epoch % progress_every == 0 or epoch == epochs:
            _log_progress(epoch, epochs, losses, history.epoch_seconds[-1])
    return history


def _log_progress(epoch: int, epochs: int, losses: dict[str, float], seconds: float) -> None:
    val = f"  val_loss {losses['val_loss']:.4f}" if "val_loss" in losses else ""
    width = len(str(epochs))
    log.info(
        "epoch %*d/%d  loss %.4f%s  (%.3f s/epoch)",
        width,
        epoch,
        epochs,
        losses["loss"],
        val,
        seconds,
    )


def set_threads(threads: int | None) -> None:
    """Limit TensorFlow to ``threads`` intra- and inter-op threads (None: its default).

    Only possible before TensorFlow runs its first op; a worker process that already ran
    a job keeps its setting.
    """
    if threads is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            log.warning("train.threads=%d ignored: TensorFlow was already initialised", threads)


def encode(model: keras.Model, x: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """``model(x)`` in batches, without ``predict``'s per-model graph tracing."""
    if not len(x):
        return np.empty((0, *model.output.shape[1:]), dtype=np.float32)
    parts = [model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts])
