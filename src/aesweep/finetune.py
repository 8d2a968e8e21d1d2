"""Clustering-oriented fine-tuning of a trained encoder: DEC (Xie et al. 2016) and IDEC
(Guo et al. 2017).

A clustering head turns a latent z_i into Student's t soft assignments to learnable
centres mu_j (alpha = 1 in both papers)::

    q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha + 1) / 2), normalised over j

and training pulls q towards a sharpened target, recomputed every ``update_interval``
steps from q itself and held fixed in between::

    p_ij = (q_ij^2 / f_j), normalised over j, with f_j = sum_i q_ij

DEC minimises KL(P || Q) over the encoder and the centres; IDEC adds the autoencoder's
reconstruction loss, ``mse + gamma * KL``, so the decoder trains too. Training stops when
fewer than ``tol`` of the labels (argmax q) changed between two targets, or at
``max_steps``.

The head is built from Keras' own layers and ops (the centres are the kernel of a Dense
layer), so the fine-tuned model saves and loads with plain Keras: no aesweep needed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from aesweep.augment import Augment, batch_seed
from aesweep.config import FinetuneConfig, FinetuneName, Optimizer
from aesweep.errors import TrainingDiverged
from aesweep.training import encode

log = logging.getLogger(__name__)

CENTRES_LAYER = "clustering_centres"  # its kernel's rows are the centres mu_j
PROGRESS_UPDATES = 10  # log a progress line every this many target updates


def soft_assignment(z: np.ndarray, centres: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """Student's t soft assignments q of the rows of ``z`` to ``centres`` (rows sum to 1)."""
    d2 = np.sum((z[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    q = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return q / q.sum(axis=1, keepdims=True)


def target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's target p: q squared, divided by each cluster's soft frequency, rows sum to 1.

    Squaring sharpens confident assignments; dividing by the frequency keeps large
    clusters from swallowing the others.
    """
    weight = q**2 / q.sum(axis=0)
    return weight / weight.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(P || Q) per sample, averaged over samples (Keras' ``KLDivergence``)."""
    eps = keras.config.epsilon()
    p, q = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def build_clustering_model(
    encoder: keras.Model,
    centres: np.ndarray,
    *,
    alpha: float = 1.0,
    decoder: keras.Model | None = None,
) -> tuple[keras.Model, keras.Model]:
    """``image -> q``: ``encoder`` (shared, not copied) with a clustering head at ``centres``;
    and the model to train: the same, or with ``decoder`` (IDEC) ``image -> (q, reconstruction)``
    from one pass through the encoder."""
    model, trained, _ = _build(encoder, centres, alpha=alpha, decoder=decoder)
    return model, trained


def _build(
    encoder: keras.Model, centres: np.ndarray, *, alpha: float, decoder: keras.Model | None
) -> tuple[keras.Model, keras.Model, keras.Model]:
    """:func:`build_clustering_model`'s two models, and ``image -> (z, q)`` over the same
    graph, which gives the latents and their assignments in one pass."""
    inputs = keras.Input(shape=encoder.input_shape[1:], name="image")
    z = encoder(inputs)
    q = _clustering_head(z, centres, alpha=alpha)
    model = keras.Model(inputs, q, name="clustering_model")
    probe = keras.Model(inputs, [z, q], name="latents_and_q")
    if decoder is None:
        return model, model, probe
    return model, keras.Model(inputs, [q, decoder(z)], name="idec"), probe


def _clustering_head(z: keras.KerasTensor, centres: np.ndarray, *, alpha: float):
    """q of the latents ``z``, with the centres as a trainable weight starting at ``centres``.

    The centres are the kernel of a bias-free Dense layer applied to the identity matrix
    (row j of its output is mu_j), which keeps them a weight of a built-in layer. The
    identity is tied to ``z`` (plus 0 * sum(z)) only so that Keras keeps it in the graph
    instead of computing it once.
    """
    n_clusters, latent_dim = centres.shape
    identity = ops.eye(n_clusters) + 0.0 * ops.sum(z)
    centres_layer = layers.Dense(latent_dim, use_bias=False, name=CENTRES_LAYER)
    mu = centres_layer(identity)
    centres_layer.set_weights([np.asarray(centres, dtype="float32")])
    d2 = ops.sum(ops.square(ops.expand_dims(z, 1) - ops.expand_dims(mu, 0)), axis=-1)
    q = ops.power(1.0 + d2 / alpha, -(alpha + 1.0) / 2.0)
    return q / ops.sum(q, axis=1, keepdims=True)


def centres_of(model: keras.Model) -> np.ndarray:
    """The centres mu_j (rows) of a model from :func:`build_clustering_model`."""
    return np.asarray(model.get_layer(CENTRES_LAYER).kernel)


def assign(model: keras.Model, x: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """Soft assignments q of the digits ``x`` (rows of q sum to 1)."""
    return encode(model, x, batch_size=batch_size)


def latents_and_assignments(
    probe: keras.Model, x: np.ndarray, *, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """The latents z and soft assignments q of the digits ``x``, in one pass of ``probe``
    (``image -> (z, q)``)."""
    if not len(x):
        return tuple(np.empty((0, *out.shape[1:]), dtype=np.float32) for out in probe.outputs)
    parts = [probe(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in (0, 1))


@dataclass
class Update:
    """What one target update records: the step, the fraction of labels that changed since
    the previous update, and the mean losses of the steps since then."""

    step: int
    changed: float
    kl: float | None = None
    recon: float | None = None
    cross_entropy: float | None = None  # finetune=selflabel's loss

    def metrics(self) -> dict[str, float]:
        """``finetune/changed``, and ``finetune/kl``, ``finetune/recon``,
        ``finetune/cross_entropy`` where measured."""
        values = {
            "finetune/changed": self.changed,
            "finetune/kl": self.kl,
            "finetune/recon": self.recon,
            "finetune/cross_entropy": self.cross_entropy,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass
class FineTuned:
    """The fine-tuned clustering model and what it took."""

    model: keras.Model  # image -> q
    probe: keras.Model  # image -> (z, q), the same weights
    train_latents: np.ndarray  # z and q of the training digits at the end
    train_q: np.ndarray
    steps: int
    converged: bool  # True: stopped by tol; False: reached max_steps
    updates: list[Update]
    seconds: float
    #: selflabel: the share of the training digits whose label is their clusterer's
    agreement: float | None = None

    def metrics(self) -> dict[str, float]:
        """``finetune/steps``, ``finetune/converged`` (1 or 0), ``time/finetune_s``, and
        ``finetune/agreement`` where measured."""
        values = {
            "finetune/steps": self.steps,
            "finetune/converged": float(self.converged),
            "time/finetune_s": self.seconds,
        }
        if self.agreement is not None:
            values["finetune/agreement"] = self.agreement
        return values

    def latents_and_assignments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z and q of the digits ``x`` under the fine-tuned model."""
        return latents_and_assignments(self.probe, x)


def fine_tune(
    autoencoder: keras.Model,
    centres: np.ndarray,
    x_train: np.ndarray,
    config: FinetuneConfig,
    *,
    random_state: int = 0,
    on_update: Callable[[Update], None] | None = None,
    augment: Augment | None = None,
) -> FineTuned:
    """Fine-tune ``autoencoder``'s encoder (and for IDEC its decoder) in place, from
    KMeans ``centres`` on its latents, as ``config`` (dec or idec) says.

    ``on_update(update)`` is called at each target update; tracking hooks in here. With
    ``augment``, each step's batch is augmented (DEC-DA), while the target P, the labels
    and the stopping rule are computed on the clean digits.

    Raises
    ------
    TrainingDiverged
        When a loss is no longer finite.
    """
    if config.name == FinetuneName.none:
        raise ValueError("finetune=none: nothing to fine-tune")
    start = time.perf_counter()
    if config.tol * len(x_train) < 1:
        log.info(
            "finetune.tol=%g of %d training digits is less than one label: the stopping rule "
            "means no label may change, so fine-tuning likely runs to max_steps=%d",
            config.tol,
            len(x_train),
            config.max_steps,
        )
    idec = config.name == FinetuneName.idec
    # DEC drops the decoder; IDEC keeps it in the loss.
    model, trained, probe = _build(
        autoencoder.get_layer("encoder"),
        centres,
        alpha=config.alpha,
        decoder=autoencoder.get_layer("decoder") if idec else None,
    )
    optimizer = make_optimizer(config)
    train_steps = make_train_steps(trained, x_train, optimizer, config, augment=augment)
    rng = np.random.default_rng(random_state)
    stream = BatchStream(len(x_train), config.batch_size, rng)

    updates: list[Update] = []
    labels = None
    last_losses: tuple[float, float | None] = (math.nan, None)
    step = 0
    converged = False
    while True:
        z, q = latents_and_assignments(probe, x_train)
        new_labels = q.argmax(axis=1)
        changed = 1.0 if labels is None else float(np.mean(new_labels != labels))
        labels = new_labels
        update = Update(step=step, changed=changed)
        if updates:
            update.kl, update.recon = last_losses
        updates.append(update)
        if on_update is not None:
            on_update(update)
        if step and changed < config.tol:
            converged = True
            break
        if step >= config.max_steps:
            break
        if len(updates) == 1 or len(updates) % PROGRESS_UPDATES == 0:
            _log_progress(update, config.max_steps)
        n_steps = min(config.update_interval, config.max_steps - step)
        p = target_distribution(q).astype("float32")
        batches = tf.constant(stream.take(n_steps))
        kl, recon = train_steps(tf.constant(p), batches, n_steps, (random_state, step))
        last_losses = (float(kl), float(recon) if idec else None)
        step += n_steps
        if not all(math.isfinite(v) for v in last_losses if v is not None):
            raise TrainingDiverged(step, last_losses[0], unit="fine-tuning step")
    seconds = time.perf_counter() - start
    why = f"fewer than {config.tol:g} of the labels changed" if converged else "max_steps"
    log.info("%s stopped after %d steps (%s), %.1f s", config.name, step, why, seconds)
    return FineTuned(
        model=model,
        probe=probe,
        train_latents=z,
        train_q=q,
        steps=step,
        converged=converged,
        updates=updates,
        seconds=seconds,
    )


def _log_progress(update: Update, max_steps: int) -> None:
    losses = "" if update.kl is None else f"  kl {update.kl:.4f}"
    if update.recon is not None:
        losses += f"  recon {update.recon:.4f}"
    log.info(
        "fine-tuning step %*d/%d  labels changed %.2f%%%s",
        len(str(max_steps)),
        update.step,
        max_steps,
        100 * update.changed,
        losses,
    )


def make_optimizer(config: FinetuneConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == Optimizer.sgd:
        return keras.optimizers.SGD(learning_rate=config.lr, momentum=config.momentum)
    return keras.optimizers.Adam(learning_rate=config.lr)


class BatchStream:
    """Batch indices drawn from consecutive shuffles of the training digits, as ``fit``
    would, except that a batch may run on into the next shuffle: every step has
    ``batch_size`` digits, so one compiled graph serves them all."""

    def __init__(self, n_samples: int, batch_size: int, rng: np.random.Generator) -> None:
        self.n_samples, self.batch_size, self.rng = n_samples, batch_size, rng
        self.buffer = np.empty(0, dtype=np.int32)

    def take(self, n_steps: int) -> np.ndarray:
        """Indices for ``n_steps`` batches, shape (n_steps, batch_size)."""
        needed = n_steps * self.batch_size
        while len(self.buffer) < needed:
            self.buffer = np.concatenate([self.buffer, self.rng.permutation(self.n_samples)])
        taken, self.buffer = self.buffer[:needed], self.buffer[needed:]
        return taken.astype(np.int32).reshape(n_steps, self.batch_size)


def step_batch(
    x: tf.Tensor, idx: tf.Tensor, augment: Augment | None, seed: tf.Tensor, step: tf.Tensor
) -> tf.Tensor:
    """The digits ``idx`` of ``x`` for one fine-tuning step, augmented (if ``augment``) with
    the seed of step ``step`` of a call seeded ``seed``."""
    batch = tf.gather(x, idx)
    return batch if augment is None else augment(batch, batch_seed(seed, step))


def make_train_steps(
    model: keras.Model,
    x_train: np.ndarray,
    optimizer: keras.optimizers.Optimizer,
    config: FinetuneConfig,
    *,
    augment: Augment | None = None,
) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """A compiled ``steps(p, batches, n, seed=(0, 0)) -> (mean kl, mean recon)`` that takes
    ``n`` steps towards the fixed target ``p``, one per row of ``batches`` (indices into
    ``x_train``); ``augment`` moves each batch's digits (drawn from ``seed`` and the step),
    not ``p``, which the caller computed on the clean digits.

    ``model``: ``image -> q`` (DEC: the loss is ``kl``) or ``image -> (q, reconstruction)``
    (IDEC: ``mse + gamma * kl``, the reconstruction of the augmented batch); all its
    trainable variables train.
    """
    x = tf.constant(x_train)
    kl_loss = keras.losses.KLDivergence()
    mse = keras.losses.MeanSquaredError()
    idec = len(model.outputs) == 2
    gamma = config.gamma if idec else 1.0
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([2], tf.int64),
        ]
    )
    def steps(
        p: tf.Tensor, batches: tf.Tensor, n: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        kl_total = tf.constant(0.0)
        recon_total = tf.constant(0.0)
        for i in tf.range(n):
            idx = batches[i]
            batch = step_batch(x, idx, augment, seed, i)
            with tf.GradientTape() as tape:
                outputs = model(batch, training=True)
                q = outputs[0] if idec else outputs
                kl = kl_loss(tf.gather(p, idx), q)
                loss = gamma * kl
                if idec:
                    recon = mse(batch, outputs[1])
                    loss += recon
                    recon_total += recon
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            kl_total += kl
        count = tf.cast(n, tf.float32)
        return kl_total / count, recon_total / count

    def run(p: tf.Tensor, batches: tf.Tensor, n: int, seed: tuple[int, int] = (0, 0)):
        return steps(p, batches, tf.constant(n, tf.int32), tf.constant(seed, tf.int64))

    return run
