"""A run's features: its digits, then the pixels, PCA's components or an autoencoder's
latents of them, and what made them (a trained or reused autoencoder, its loss curves).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.decomposition import PCA

from aesweep import data
from aesweep.config import ArchName, ExperimentConfig

if TYPE_CHECKING:  # Keras loads in seconds: only runs that train import it
    import keras
    import mlflow

    from aesweep.tracking import NullTracker, Tracker
    from aesweep.training import History

log = logging.getLogger(__name__)


@dataclass
class Features:
    """Latent features of the train and held-out digits, and what made them."""

    train: np.ndarray
    test: np.ndarray
    history: History | None = None
    autoencoder: keras.Model | None = None
    decoded: np.ndarray | None = None  # reconstructions of the first ten training digits
    trained_here: bool = False  # False for a reused autoencoder: nothing new to log


def load_digits(cfg: ExperimentConfig) -> tuple[data.Digits, data.Digits]:
    """The scaled train and held-out digits that ``cfg.data`` asks for."""
    d = cfg.data
    images, labels = data.load(d.source.value, d.path, allow_pickle=d.allow_pickle)
    train_idx, test_idx = data.split(
        labels, n_samples=cfg.data.n_samples, n_test=cfg.data.n_test, random_state=cfg.seed
    )
    flat = cfg.arch.name != ArchName.cnn
    scaling = cfg.data.scaling.value
    return (
        data.prepare(images, labels, train_idx, scaling=scaling, flat=flat),
        data.prepare(images, labels, test_idx, scaling=scaling, flat=flat),
    )


def compute_features(
    cfg: ExperimentConfig,
    train: data.Digits,
    test: data.Digits,
    tracker: Tracker | NullTracker,
    *,
    trained: mlflow.entities.Run | None = None,
) -> Features:
    """Train the arch's autoencoder and encode, or compute a baseline's features.

    ``trained``: a finished run whose autoencoder has the same training settings; it is
    loaded and its loss curves copied instead of training again.
    """
    arch = cfg.arch.name
    if arch == ArchName.pixels:
        return Features(train=_flat(train.x), test=_flat(test.x))
    if arch == ArchName.pca:
        pca = PCA(n_components=cfg.latent_dim, random_state=cfg.seed).fit(train.x)
        train_z = pca.transform(train.x)
        decoded = pca.inverse_transform(train_z[:10])
        test_z = pca.transform(test.x) if len(test.x) else np.empty((0, train_z.shape[1]))
        return Features(train=train_z, test=test_z, decoded=decoded)

    from aesweep.training import History, encode, set_threads

    set_threads(cfg.train.threads)
    if trained is not None:
        model = tracker.load_keras_model(trained)
        curves = tracker.copy_curves(trained)
        history = History(loss=curves["train/loss"], val_loss=curves["val/loss"])
        log.info("Reusing the autoencoder of run %s: no training", trained.info.run_id)
    else:
        model, history = _train(cfg, train, test, tracker)
    encoder = model.get_layer("encoder")
    return Features(
        train=encode(encoder, train.x),
        test=encode(encoder, test.x),
        history=history,
        autoencoder=model,
        decoded=encode(model, train.x[:10]),
        trained_here=trained is None,
    )


def _train(
    cfg: ExperimentConfig, train: data.Digits, test: data.Digits, tracker: Tracker | NullTracker
) -> tuple[keras.Model, History]:
    import keras

    from aesweep.models import build_autoencoder
    from aesweep.training import train_autoencoder

    keras.utils.set_random_seed(cfg.seed)
    ae = build_autoencoder(
        cfg.arch.name.value,
        latent_dim=cfg.latent_dim,
        hidden=cfg.activation.hidden.value,
        output=cfg.activation.output.value,
    )
    history = train_autoencoder(
        ae.model,
        train.x,
        test.x if cfg.train.validation else None,
        learning_rate=cfg.lr,
        epochs=cfg.train.epochs,
        batch_size=cfg.train.batch_size,
        random_state=cfg.seed,
        progress_every=cfg.train.progress_every,
        on_epoch_end=tracker.log_epoch,
    )
    return ae.model, history


def _flat(x: np.ndarray) -> np.ndarray:
    """``x`` as (n_samples, n_features), also when n_samples is 0."""
    return x.reshape(len(x), int(np.prod(x.shape[1:])))
