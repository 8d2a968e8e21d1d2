"""Run one experiment from a composed config: the only module that reads the config.

load digits -> train (or compute a baseline's features) -> KMeans -> scores -> records.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aesweep import clustering, data, fingerprint
from aesweep.config import ExperimentConfig, to_experiment_config
from aesweep.errors import TrainingDiverged
from aesweep.features import Features, compute_features, load_digits
from aesweep.names import (
    CLUSTERING_MODEL_URI_TAG,
    EPOCHS_REACHED_TAG,
    FINGERPRINT_TAG,
    FINGERPRINTS_ARTIFACT,
    JOB_DIR_TAG,
    MODEL_URI_TAG,
    OBJECTIVE_TAG,
    OVERRIDES_TAG,
    SELECTION_TAG,
    TRAINING_TAG,
)
from aesweep.pictures import RunPictures
from aesweep.reference import data_selection
from aesweep.summary import OBJECTIVE, JobValue
from aesweep.tracking import NullTracker, Tracker, code_tags, flatten, ui_link

log = logging.getLogger(__name__)


def run_name(cfg: ExperimentConfig) -> str:
    """A readable run name such as ``cnn-relu-lr0.005-z196``, ``pca-z100`` or ``pixels``."""
    name = cfg.arch.name
    if cfg.arch.trains:
        name += f"-{cfg.activation.hidden.value}-lr{cfg.lr:g}"
    if cfg.latent_dim is not None:
        name += f"-z{cfg.latent_dim}"
    if cfg.arch.trains and cfg.activation.output.value != "linear":
        name += f"-out_{cfg.activation.output.value}"
    if cfg.finetune.enabled:
        name += f"-{cfg.finetune.name.value}"
    return name


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
        "arch": exp.arch.name,
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
    arch_code = fingerprint.source_files(exp.arch.builder)
    config_print = fingerprint.config_fingerprint(params, data=digest, also=arch_code)
    training_print = fingerprint.training_fingerprint(params, data=digest, also=arch_code)
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
    if exp.reuse_model and exp.arch.trains:
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
        scores, labels_pred, clusterer = clustering.score_features(
            exp.cluster,
            random_state=exp.seed,
            train=features.train,
            test=features.test,
            labels=train.labels,
            test_labels=test.labels,
        )
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
            from aesweep.finetune import fine_tune_features  # Keras: only when fine-tuning

            features, scores, labels_pred, tuned = fine_tune_features(
                features,
                clusterer.cluster_centers_,
                train,
                test,
                exp.finetune,
                random_state=exp.seed,
                on_update=lambda u: tracker.log_metrics(u.metrics(), step=u.step),
            )
            clustering_model = tuned.model
            metrics |= {
                "finetune/steps": tuned.steps,
                "finetune/converged": float(tuned.converged),
                "time/finetune_s": tuned.seconds,
            }
        tracker.log_metrics(scores | metrics)
        RunPictures.choose(
            name,
            train,
            features,
            labels_pred,
            n_clusters=exp.cluster.n_clusters,
            # t-SNE takes seconds: not for a picture nobody would see, or nobody asked for
            latent_map=tracker.enabled and exp.tracking.latent_map,
            random_state=exp.seed,
            threads=exp.train.threads,
        ).log(tracker)
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
