"""Self-labelling of a trained encoder: it learns to predict its clusterer's labels.

SCAN's last step (Van Gansbeke et al., ECCV 2020) and the pseudo-label training of
deep-clustering methods: the encoder gets a softmax head over the clusters, and both train
with cross-entropy towards the labels that the clusterer (``cluster=...``, any of them)
gave the training digits, each batch augmented (``augment=...``) so that the network must
give a digit its label however it is moved. The labels are fixed (the clusterer's, on the
clean digits); the run's labels afterwards are the head's argmax, for the training digits
and for the held-out ones, which the head labels directly (no UMAP transform).

Unlike DEC/IDEC (:mod:`aesweep.finetune`), it needs no centres in the latent space, so it
follows a UMAP + GMM partition as well as KMeans'. The model maps an image to its cluster
probabilities and loads with plain Keras.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from aesweep.augment import Augment
from aesweep.config import FinetuneConfig
from aesweep.errors import TrainingDiverged
from aesweep.finetune import (
    PROGRESS_UPDATES,
    BatchStream,
    FineTuned,
    Update,
    latents_and_assignments,
    make_optimizer,
    step_batch,
)

log = logging.getLogger(__name__)

HEAD_LAYER = "cluster_head"  # the softmax over the clusters, on the encoder's latent
#: checks of the labels (and progress lines) per fine-tuning, whatever max_steps is
CHECKS = 10


def build_labeller(
    encoder: keras.Model, n_clusters: int, *, seed: int = 0
) -> tuple[keras.Model, keras.Model]:
    """``image -> p`` (the encoder, shared, with a softmax head whose first weights are
    drawn from ``seed``) and ``image -> (z, p)``."""
    inputs = keras.Input(shape=encoder.input_shape[1:], name="image")
    z = encoder(inputs)
    initializer = keras.initializers.GlorotUniform(seed=seed)
    p = layers.Dense(
        n_clusters, activation="softmax", kernel_initializer=initializer, name=HEAD_LAYER
    )(z)
    model = keras.Model(inputs, p, name="self_labelled")
    probe = keras.Model(inputs, [z, p], name="self_labelled_probe")
    return model, probe


def make_label_steps(
    model: keras.Model,
    x_train: np.ndarray,
    labels: np.ndarray,
    optimizer: keras.optimizers.Optimizer,
    *,
    augment: Augment | None = None,
) -> Callable[..., tf.Tensor]:
    """A compiled ``steps(batches, n, seed) -> mean cross-entropy`` of ``n`` steps towards
    the fixed ``labels``, one per row of ``batches`` (indices into ``x_train``); ``augment``
    moves each batch's digits (drawn from ``seed`` and the step), not their labels."""
    x = tf.constant(x_train)
    y = tf.constant(labels.astype(np.int32))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([2], tf.int64),
        ]
    )
    def steps(batches: tf.Tensor, n: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        total = tf.constant(0.0)
        for i in tf.range(n):
            idx = batches[i]
            batch = step_batch(x, idx, augment, seed, i)
            with tf.GradientTape() as tape:
                loss = cross_entropy(tf.gather(y, idx), model(batch, training=True))
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            total += loss
        return total / tf.cast(n, tf.float32)

    def run(batches: np.ndarray, n: int, seed: tuple[int, int]) -> tf.Tensor:
        return steps(tf.constant(batches), tf.constant(n, tf.int32), tf.constant(seed, tf.int64))

    return run


def self_label(
    autoencoder: keras.Model,
    labels: np.ndarray,
    x_train: np.ndarray,
    config: FinetuneConfig,
    *,
    n_clusters: int,
    random_state: int = 0,
    on_update: Callable[[Update], None] | None = None,
    augment: Augment | None = None,
) -> FineTuned:
    """Train ``autoencoder``'s encoder (in place) and a softmax head to predict ``labels``
    (the clusterer's, of ``x_train``) for ``config.max_steps`` steps.

    ``on_update(update)`` is called at each of the :data:`CHECKS` checks: the fraction of
    the training digits whose label (argmax of the head) changed since the last check
    (at step 0: the share that differs from ``labels``), and the mean cross-entropy of the
    steps since. The checks see the clean digits.

    Raises
    ------
    TrainingDiverged
        When the loss is no longer finite.
    """
    start = time.perf_counter()
    model, probe = build_labeller(autoencoder.get_layer("encoder"), n_clusters, seed=random_state)
    train_steps = make_label_steps(model, x_train, labels, make_optimizer(config), augment=augment)
    stream = BatchStream(len(x_train), config.batch_size, np.random.default_rng(random_state))
    every = max(1, math.ceil(config.max_steps / CHECKS))
    updates: list[Update] = []
    previous, step, loss = labels, 0, None
    while True:
        z, p = latents_and_assignments(probe, x_train)
        now = p.argmax(axis=1)
        update = Update(step=step, changed=float(np.mean(now != previous)), cross_entropy=loss)
        previous = now
        updates.append(update)
        if on_update is not None:
            on_update(update)
        if len(updates) == 1 or len(updates) % PROGRESS_UPDATES == 0 or step >= config.max_steps:
            log.info(
                "self-labelling step %*d/%d  labels changed %.2f%%%s",
                len(str(config.max_steps)),
                step,
                config.max_steps,
                100 * update.changed,
                "" if loss is None else f"  cross-entropy {loss:.4f}",
            )
        if step >= config.max_steps:
            break
        n_steps = min(every, config.max_steps - step)
        loss = float(train_steps(stream.take(n_steps), n_steps, (random_state, step)))
        step += n_steps
        if not math.isfinite(loss):
            raise TrainingDiverged(step, loss, unit="self-labelling step")
    agreement = float(np.mean(previous == labels))
    seconds = time.perf_counter() - start
    log.info(
        "selflabel stopped after %d steps, %.1f s: %.1f%% of the training digits keep "
        "their clusterer's label",
        step,
        seconds,
        100 * agreement,
    )
    return FineTuned(
        model=model,
        probe=probe,
        train_latents=z,
        train_q=p,
        steps=step,
        converged=False,  # no stopping rule: it runs its max_steps
        updates=updates,
        seconds=seconds,
        agreement=agreement,
    )
