"""Run one experiment from a composed config: the only module that reads the config.

load digits -> train (or compute a baseline's features) -> KMeans -> scores -> records.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA

from aesweep import clustering, data, embedding, figures, fingerprint
from aesweep.config import (
    UNTRAINED_ARCHS,
    ArchName,
    ExperimentConfig,
    FinetuneName,
    to_experiment_config,
)
from aesweep.errors import TrainingDiverged
from aesweep.names import (
    CLUSTERING_MODEL_URI_TAG,
    EPOCHS_REACHED_TAG,
    FINGERPRINT_TAG,
    FINGERPRINTS_ARTIFACT,
    JOB_DIR_TAG,
    MAP_ARTIFACT,
    MODEL_URI_TAG,
    OBJECTIVE_TAG,
    OVERRIDES_TAG,
    PANEL_ARTIFACT,
    SELECTION_TAG,
    TRAINING_TAG,
)
from aesweep.reference import data_selection
from aesweep.summary import OBJECTIVE, JobValue
from aesweep.tracking import NullTracker, Tracker, code_tags, flatten, ui_link

if TYPE_CHECKING:  # Keras loads in seconds: only runs that train import it
    import keras
    import mlflow

    from aesweep.finetune import FineTuned
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


def run_name(cfg: ExperimentConfig) -> str:
    """A readable run name such as ``cnn-relu-lr0.005-z196``."""
    arch = cfg.arch.name.value
    if arch == "pixels":
        return "pixels"
    if arch == "pca":
        return f"pca-z{cfg.latent_dim}"
    name = f"{arch}-{cfg.activation.hidden.value}-lr{cfg.lr:g}-z{cfg.latent_dim}"
    if cfg.activation.output.value != "linear":
        name += f"-out_{cfg.activation.output.value}"
    if cfg.finetune.enabled:
        name += f"-{cfg.finetune.name.value}"
    return name


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


def score_clusters(
    cfg: ExperimentConfig, features: Features, train: data.Digits, test: data.Digits
) -> tuple[dict[str, float], np.ndarray, BaseEstimator]:
    """The ``cluster`` clusterer fitted on the training features, scored there and on the
    held-out digits, which it assigns to the fitted clusters without refitting.

    Returns the scores, the training digits' labels and the fitted clusterer.
    """
    x_train = clustering.as_samples(features.train)
    cfg.cluster.check_n_samples(len(x_train))
    clusterer = clustering.make_clusterer(cfg.cluster, random_state=cfg.seed)
    # fit_predict, not predict: a UMAP's labels are those of its fitted embedding
    labels_pred = clusterer.fit_predict(x_train)
    test_pred = None
    if len(test.labels):
        test_pred = clusterer.predict(clustering.as_samples(features.test))
    return _scores(train, labels_pred, test, test_pred), labels_pred, clusterer


def _scores(
    train: data.Digits, labels_pred: np.ndarray, test: data.Digits, test_pred: np.ndarray | None
) -> dict[str, float]:
    """``cluster/...`` scores of the training digits' clusters, ``test/...`` of the held-out."""
    scores = clustering.split_scores(train.labels, labels_pred)
    if test_pred is not None:
        scores |= clustering.split_scores(test.labels, test_pred, split="test")
    return scores


def fine_tune_features(
    cfg: ExperimentConfig,
    features: Features,
    centres: np.ndarray,
    train: data.Digits,
    test: data.Digits,
    tracker: Tracker | NullTracker,
) -> tuple[Features, dict[str, float], np.ndarray, FineTuned]:
    """DEC or IDEC from the KMeans ``centres``: the fine-tuned latents, their scores (labels
    are argmax q, for the held-out digits too), the training labels, and the fine-tuning
    (its ``model`` maps an image to q).

    Each target update's ``finetune/...`` metrics are logged with its step.
    """
    from aesweep.finetune import fine_tune
    from aesweep.training import encode

    def log_update(update):
        tracker.log_metrics(update.metrics(), step=update.step)

    tuned = fine_tune(
        features.autoencoder,
        centres,
        train.x,
        cfg.finetune,
        random_state=cfg.seed,
        on_update=log_update,
    )
    # The training digits' z and q are those of the last check of the stopping rule.
    labels_pred = tuned.train_q.argmax(axis=1)
    test_z, test_q = tuned.latents_and_assignments(test.x)
    test_pred = test_q.argmax(axis=1) if len(test.labels) else None
    finetuned = dataclasses.replace(
        features,
        train=tuned.train_latents,
        test=test_z,
        # IDEC trained the decoder along: show its reconstructions now; DEC dropped it.
        decoded=encode(features.autoencoder, train.x[:10])
        if cfg.finetune.name == FinetuneName.idec
        else features.decoded,
    )
    return finetuned, _scores(train, labels_pred, test, test_pred), labels_pred, tuned


def log_figures(
    cfg: ExperimentConfig,
    tracker: Tracker | NullTracker,
    features: Features,
    train: data.Digits,
    labels_pred: np.ndarray,
    name: str,
) -> None:
    """The seed's pictures, reconstructions, the loss curve, the clusters against the digits
    and a t-SNE map of the training latents."""
    members = figures.pick_cluster_members(labels_pred, n_clusters=cfg.cluster.n_clusters)
    tracker.log_figure(
        figures.latent_grid(train.pixels, features.train, members, title=name), "latent_grid"
    )
    tracker.log_figure(
        figures.sample_and_latent(train.pixels[0], features.train[0], label=int(train.labels[0])),
        "sample_latent",
    )
    if features.decoded is not None:
        tracker.log_figure(
            figures.reconstructions(train.x[:10], features.decoded, title=name), "reconstructions"
        )
    if features.history is not None:
        h = features.history
        tracker.log_figure(figures.loss_curve(h.loss, h.val_loss, title=name), "loss_curve")
    # The same digits in every job of a sweep, so that the sweep's panel compares like with like.
    panel = figures.first_of_each_label(train.labels)
    tracker.log_arrays(
        PANEL_ARTIFACT,
        pixels=train.pixels[panel],
        latents=features.train[panel],
        labels=train.labels[panel],
    )
    table, digits, clusters = clustering.matched_contingency(train.labels, labels_pred)
    tracker.log_figure(figures.confusion(table, digits, clusters, title=name), "confusion")
    if not (tracker.enabled and cfg.tracking.latent_map):
        return  # t-SNE takes seconds, for a picture nobody would see, or that was not asked for
    latent_map = embedding.tsne_map(
        features.train, random_state=cfg.seed, n_threads=cfg.train.threads
    )
    shown = latent_map.index
    matched = min(table.shape)  # the first columns hold the clusters matched to a digit
    matching = dict(zip(clusters[:matched].tolist(), digits[:matched].tolist(), strict=True))
    tracker.log_figure(
        figures.latent_map(
            latent_map.coords,
            train.labels[shown],
            labels_pred[shown],
            matching=matching,
            n_samples=latent_map.n_samples,
            method=latent_map.method,
            title=f"{name}, training digits",
        ),
        "latent_map",
    )
    # The coordinates, so that the sweep's parent draws its jobs' maps without t-SNE.
    tracker.log_arrays(
        MAP_ARTIFACT,
        coords=latent_map.coords,
        labels_true=train.labels[shown],
        labels_pred=labels_pred[shown],
        index=shown,
    )


def _log_digits(
    cfg: ExperimentConfig, tracker: Tracker | NullTracker, train: data.Digits, test: data.Digits
) -> None:
    """The run's training and held-out digits as MLflow datasets (the UI's Dataset column)."""
    source = data.source_uri(cfg.data.source.value, cfg.data.path)
    for split, context, digits in [("train", "training", train), ("test", "held-out", test)]:
        if len(digits.labels):
            name = f"{cfg.data.source.value}-{split}-{len(digits.labels)}"
            tracker.log_digits(digits.x, digits.labels, name=name, source=source, context=context)


def run_params(cfg: DictConfig) -> dict[str, object]:
    """The resolved config, flattened: the values in force, as ``--cfg job --resolve`` shows."""
    return flatten(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


def run_experiment(
    cfg: DictConfig,
    *,
    root: Path,
    output_dir: Path | None = None,
    overrides: list[str] = (),
    parent_run_id: str | None = None,
) -> float:
    """Run the experiment ``cfg`` describes and return the sweep objective (held-out acc).

    ``root`` is where the default MLflow store lives; ``output_dir`` is Hydra's job folder,
    whose ``.hydra/`` files are logged with the run. A sweep's job (``parent_run_id``) that
    fails before its run could start (bad data) still leaves a FAILED run with the reason.
    """
    exp = to_experiment_config(cfg)
    tracker = Tracker.connect(
        enabled=exp.tracking.enabled,
        uri=exp.tracking.uri,
        experiment=exp.tracking.experiment,
        root=root,
        output_dir=output_dir,
    )
    name = run_name(exp)
    params = run_params(cfg)
    tags = {
        "arch": exp.arch.name.value,
        OVERRIDES_TAG: shlex.join(overrides) if overrides else "(none)",
        SELECTION_TAG: json.dumps(data_selection(exp), sort_keys=True),
        **code_tags(),
    }
    if parent_run_id is not None and output_dir is not None:
        tags[JOB_DIR_TAG] = str(Path(output_dir).resolve())
    try:
        train, test = load_digits(exp)  # bad data fails here: a single run leaves no run
    except Exception as err:
        if parent_run_id is not None and tracker.enabled:  # a sweep's job: a row of its table
            tracker.record_failure(
                err, run_name=name, tags=tags, parent_run_id=parent_run_id, params=params
            )
        raise
    objective = OBJECTIVE if len(test.labels) else "cluster/acc"
    if objective != OBJECTIVE:
        log.warning(
            "data.n_test=0: no held-out digits, so the sweep objective is %s on the training "
            "digits, not %s",
            objective,
            OBJECTIVE,
        )
    digest = fingerprint.data_digest(train.x, train.labels, test.x, test.labels)
    config_print = fingerprint.config_fingerprint(params, data=digest)
    training_print = fingerprint.training_fingerprint(params, data=digest)
    tags |= {FINGERPRINT_TAG: config_print.hash, OBJECTIVE_TAG: objective}
    if exp.resume:
        tracker.end_stale_runs(FINGERPRINT_TAG, config_print.hash)
        done = tracker.find_finished(FINGERPRINT_TAG, config_print.hash)
        if done is not None:
            log.info(
                "%s: identical config already FINISHED in run %s; reusing it",
                name,
                done.info.run_id,
            )
            tracker.copy_finished(done, run_name=name, tags=tags, parent_run_id=parent_run_id)
            return JobValue(done.data.metrics.get(objective, math.nan), metric=objective)
    training_hash = training_print.hash
    trained = None
    if exp.reuse_model and exp.arch.name not in UNTRAINED_ARCHS:
        trained = tracker.find_finished(TRAINING_TAG, training_hash)
    with tracker.run(run_name=name, tags=tags, parent_run_id=parent_run_id):
        tracker.log_params(params)
        _log_digits(exp, tracker, train, test)
        fingerprints = {"config": config_print, "training": training_print}
        tracker.log_dict(
            {kind: {"hash": f.hash, **f.inputs} for kind, f in fingerprints.items()},
            FINGERPRINTS_ARTIFACT,
        )
        if output_dir is not None:
            tracker.log_dir(output_dir / ".hydra", ".hydra")

        start = time.perf_counter()
        try:
            features = compute_features(exp, train, test, tracker, trained=trained)
        except TrainingDiverged as err:
            tracker.set_tags({EPOCHS_REACHED_TAG: err.epoch})
            raise
        train_seconds = time.perf_counter() - start

        start = time.perf_counter()
        scores, labels_pred, clusterer = score_clusters(exp, features, train, test)
        cluster_seconds = time.perf_counter() - start  # UMAP's share is most of it
        metrics = {"time/train_s": train_seconds, "time/cluster_s": cluster_seconds}
        if features.history is not None:
            metrics["train/epochs"] = features.history.epochs
            if features.trained_here:
                metrics["time/s_per_epoch"] = features.history.seconds_per_epoch
        save_autoencoder = features.trained_here and exp.tracking.log_model
        clustering_model = None
        if exp.finetune.enabled:
            # Logged before fine-tuning changes its weights, for runs that reuse it.
            if save_autoencoder:
                _log_autoencoder(tracker, features, train, training_hash, name="autoencoder")
                save_autoencoder = False
            log.info("before fine-tuning: %s", _scores_line(scores))
            metrics |= {f"pretrain/{k}": v for k, v in scores.items()}
            features, scores, labels_pred, tuned = fine_tune_features(
                exp, features, clusterer.cluster_centers_, train, test, tracker
            )
            clustering_model = tuned.model
            metrics |= {
                "finetune/steps": tuned.steps,
                "finetune/converged": float(tuned.converged),
                "time/finetune_s": tuned.seconds,
            }
        tracker.log_metrics(scores | metrics)
        log_figures(exp, tracker, features, train, labels_pred, name)
        if save_autoencoder:
            _log_autoencoder(tracker, features, train, training_hash, name="model")
        if clustering_model is not None and exp.tracking.log_model:
            uri = tracker.log_keras_model(clustering_model, example=train.x[:5])
            tracker.set_tags({CLUSTERING_MODEL_URI_TAG: uri})

    _report(name, scores, train_seconds, tracker)
    return JobValue(scores[objective], metric=objective)


def _log_autoencoder(
    tracker: Tracker | NullTracker,
    features: Features,
    train: data.Digits,
    training_hash: str,
    *,
    name: str,
) -> None:
    """Log the trained autoencoder, tagged so that runs with the same training reuse it."""
    uri = tracker.log_keras_model(features.autoencoder, example=train.x[:5], name=name)
    tracker.set_tags({MODEL_URI_TAG: uri, TRAINING_TAG: training_hash})


def _scores_line(scores: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in scores.items())


def _report(
    name: str, scores: dict[str, float], seconds: float, tracker: Tracker | NullTracker
) -> None:
    log.info("%s  %s  (%.1f s)", name, _scores_line(scores), seconds)
    if tracker.enabled:
        log.info(
            "MLflow run: %s", ui_link(tracker.tracking_uri, tracker.experiment_id, tracker.run_id)
        )
        log.info("All runs:   %s", ui_link(tracker.tracking_uri, tracker.experiment_id))
