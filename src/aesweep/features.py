"""A run's features: its digits, then what the arch's ``model`` makes of them (an
autoencoder's latents, or a transformer's output: PCA's components, the pixels), and what
made them (a trained or reused autoencoder, its loss curves).

Every arch is built the one way Hydra builds a config's object, ``hydra.utils.instantiate``
of ``arch.model``, so a user's network is a YAML file naming a function (``_target_``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from hydra.utils import instantiate

from aesweep import data
from aesweep.config import ArchConfig, ExperimentConfig
from aesweep.errors import InputError

if TYPE_CHECKING:  # Keras loads in seconds: only runs that train import it
    import keras
    import mlflow

    from aesweep.tracking import NullRunLog, RunLog
    from aesweep.training import History

log = logging.getLogger(__name__)

RECONSTRUCTED = 10  # the training digits every reconstruction shows, the same at every epoch
#: ``watch(model) -> at_epoch_end(epoch)``: what a run does while its network trains
Watch = Callable[["keras.Model"], Callable[[int], None]]


@dataclass
class Features:
    """Latent features of the train and held-out digits, and what made them."""

    train: np.ndarray
    test: np.ndarray
    history: History | None = None
    autoencoder: keras.Model | None = None
    decoded: np.ndarray | None = None  # reconstructions of the first RECONSTRUCTED digits
    trained_here: bool = False  # False for a reused autoencoder: nothing new to log

    def metrics(self) -> dict[str, float]:
        """``train/epochs``, and ``time/s_per_epoch`` of an autoencoder trained here."""
        if self.history is None:
            return {}
        metrics = {"train/epochs": self.history.epochs}
        if self.trained_here:
            metrics["time/s_per_epoch"] = self.history.seconds_per_epoch
        return metrics


def load_digits(cfg: ExperimentConfig) -> tuple[data.Digits, data.Digits]:
    """The scaled train and held-out digits that ``cfg.data`` asks for."""
    d = cfg.data
    images, labels = data.load(d.source.value, d.path, allow_pickle=d.allow_pickle)
    train_idx, test_idx = data.split(
        labels, n_samples=cfg.data.n_samples, n_test=cfg.data.n_test, random_state=cfg.seed
    )
    shape = tuple(cfg.arch.input_shape)
    scaling = cfg.data.scaling.value
    return (
        data.prepare(images, labels, train_idx, scaling=scaling, shape=shape),
        data.prepare(images, labels, test_idx, scaling=scaling, shape=shape),
    )


def compute_features(
    cfg: ExperimentConfig,
    train: data.Digits,
    test: data.Digits,
    run: RunLog | NullRunLog,
    *,
    trained: mlflow.entities.Run | None = None,
    watch: Watch | None = None,
) -> Features:
    """Train the arch's autoencoder and encode, or fit its transformer and transform.

    ``trained``: a finished run whose autoencoder has the same training settings; it is
    loaded and its loss curves copied instead of training again. ``watch(model)``, called
    once the network to train is built, returns what to do after each epoch (the run's
    pictures of its training: :mod:`aesweep.pictures`).
    """
    if not cfg.arch.trains:
        return _transform(instantiate(cfg.arch.model), train, test)

    from aesweep.training import History, encode, set_threads

    set_threads(cfg.train.threads)
    model = None if trained is None else _load_reused(run, trained)
    reused = model is not None
    if reused:
        curves = run.copy_curves(trained)
        history = History(loss=curves["train/loss"], val_loss=curves["val/loss"])
        log.info("Reusing the autoencoder of run %s: no training", trained.info.run_id)
    else:
        model, history = _train(cfg, train, test, run, watch)
    encoder = model.get_layer("encoder")
    return Features(
        train=encode(encoder, train.x),
        test=encode(encoder, test.x),
        history=history,
        autoencoder=model,
        decoded=encode(model, train.x[:RECONSTRUCTED]),
        trained_here=not reused,
    )


def _load_reused(run: RunLog | NullRunLog, trained: mlflow.entities.Run) -> keras.Model | None:
    """The autoencoder ``trained`` logged, or None (and a warning) if it cannot be loaded:
    its files were deleted or damaged, so this run trains its own."""
    import zipfile

    from mlflow.exceptions import MlflowException

    try:
        return run.load_keras_model(trained)
    except (MlflowException, OSError, ValueError, zipfile.BadZipFile) as err:
        log.warning(
            "the autoencoder of run %s cannot be loaded (%s: %s): training again",
            trained.info.run_id,
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
        )
        return None


def _train(
    cfg: ExperimentConfig,
    train: data.Digits,
    test: data.Digits,
    run: RunLog | NullRunLog,
    watch: Watch | None,
) -> tuple[keras.Model, History]:
    import keras

    from aesweep.augment import make_augment
    from aesweep.training import train_autoencoder

    keras.utils.set_random_seed(cfg.seed)
    model = build_autoencoder(cfg.arch, needs_decoder=cfg.finetune.name == "idec")
    at_epoch_end = watch(model) if watch is not None else None

    def on_epoch_end(epoch: int, losses: dict[str, float]) -> None:
        run.log_epoch(epoch, losses)
        if at_epoch_end is not None:
            at_epoch_end(epoch)

    history = train_autoencoder(
        model,
        train.x,
        test.x if cfg.train.validation else None,
        learning_rate=cfg.lr,
        epochs=cfg.train.epochs,
        batch_size=cfg.train.batch_size,
        random_state=cfg.seed,
        progress_every=cfg.train.progress_every,
        on_epoch_end=on_epoch_end,
        augment=make_augment(cfg.augment),
    )
    return model, history


def build_autoencoder(arch: ArchConfig, *, needs_decoder: bool = False) -> keras.Model:
    """``instantiate(arch.model)``, checked to be an autoencoder of ``arch.input_shape``
    digits with an ``encoder`` layer (and a ``decoder`` one, for IDEC).

    Raises
    ------
    InputError
        One line naming ``arch.model._target_``: what it built breaks the contract.
    """
    import keras

    model = instantiate(arch.model)
    target = f"arch.model._target_={arch.model['_target_']!r}"
    if not isinstance(model, keras.Model):
        raise InputError(f"{target} built a {type(model).__name__}, not a keras.Model")
    shape = tuple(arch.input_shape)
    try:  # two blank digits: also builds a subclassed model's weights
        output_shape = tuple(model(np.zeros((2, *shape), np.float32), training=False).shape[1:])
    except Exception as err:  # noqa: BLE001 - whatever the user's network raises
        raise InputError(
            f"{target} cannot take digits of arch.input_shape={list(shape)}: "
            f"{str(err).strip().splitlines()[0]}"
        ) from err
    if output_shape != shape:
        raise InputError(
            f"{target} maps a digit of arch.input_shape={list(shape)} to {list(output_shape)}: "
            "an autoencoder gives back the digit's shape"
        )
    names = [layer.name for layer in model.layers]
    for layer in ("encoder", *(["decoder"] if needs_decoder else [])):
        if layer not in names:
            raise InputError(
                f"{target} has no layer named {layer!r} (its layers: {', '.join(names)}); "
                "the latent features are what the encoder makes of a digit"
            )
    return model


def _transform(transformer, train: data.Digits, test: data.Digits) -> Features:
    """Fit a scikit-learn transformer on the training digits and transform both splits;
    ``decoded`` by its ``inverse_transform`` where it reduces the digits (PCA)."""
    train_z = np.asarray(transformer.fit_transform(train.x))
    test_z = (
        np.asarray(transformer.transform(test.x))
        if len(test.x)
        else np.empty((0, train_z.shape[1]), dtype=train_z.dtype)
    )
    decoded = None
    if train_z.shape[1] < train.x.shape[1] and hasattr(transformer, "inverse_transform"):
        decoded = transformer.inverse_transform(train_z[:RECONSTRUCTED])
    return Features(train=train_z, test=test_z, decoded=decoded)
