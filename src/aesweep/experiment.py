"""Run one experiment from a composed config: the only module that reads the config.

digits -> fingerprints (resume?) -> features (train, reuse or fit) -> clusters and scores
-> fine-tuning (DEC/IDEC, if asked) -> records: one step per module, wired here.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from omegaconf import DictConfig

from aesweep import clustering, fingerprint, pictures, records
from aesweep.config import to_experiment_config
from aesweep.errors import TrainingDiverged
from aesweep.features import compute_features, load_digits
from aesweep.names import (
    CLUSTERING_MODEL_URI_TAG,
    EPOCHS_REACHED_TAG,
    FINGERPRINT_TAG,
    OBJECTIVE_TAG,
    REPLICATES_TAG,
    TRAINING_TAG,
)
from aesweep.summary import OBJECTIVE, JobValue, objective_for
from aesweep.tracking import Tracker

log = logging.getLogger(__name__)


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
    t = exp.tracking
    tracker = Tracker.connect(
        enabled=t.enabled, uri=t.uri, experiment=t.experiment, root=root, output_dir=output_dir
    )
    name, params = records.run_name(exp), records.run_params(cfg)
    tags = records.run_tags(exp, overrides, parent_run_id=parent_run_id, output_dir=output_dir)
    try:
        train, test = load_digits(exp)  # bad data fails here: a single run leaves no run
    except Exception as err:
        if parent_run_id is not None:  # a sweep's job: a row of its table
            tracker.record_failure(
                err, run_name=name, tags=tags, parent_run_id=parent_run_id, params=params
            )
        raise
    objective = objective_for(len(test.labels))
    if objective != OBJECTIVE:
        log.warning("data.n_test=0: no held-out digits; the objective is %s", objective)
    digits = (train.x, train.labels, test.x, test.labels)
    prints = fingerprint.of_run(params, *digits, code=[exp.arch.builder])  # yours is code too
    tags |= {
        FINGERPRINT_TAG: prints["config"].hash,
        OBJECTIVE_TAG: objective,
        REPLICATES_TAG: fingerprint.replicates(records.params_but_the_seed(cfg), overrides),
    }
    if exp.resume:
        tracker.end_stale_runs(FINGERPRINT_TAG, prints["config"].hash)
        done = tracker.find_finished(FINGERPRINT_TAG, prints["config"].hash)
        if done is not None:
            log.info("%s: identical config FINISHED in run %s; reusing it", name, done.info.run_id)
            records.log_resumed(
                tracker, done, run_name=name, tags=tags, parent_run_id=parent_run_id
            )
            return JobValue(done.data.metrics.get(objective, math.nan), metric=objective)
    training_hash = prints["training"].hash
    trained = None
    if exp.reuse_model and exp.arch.trains:
        trained = tracker.find_finished(TRAINING_TAG, training_hash)

    sample_every = t.system_metrics_every if t.system_metrics and exp.arch.trains else None
    with tracker.run(
        run_name=name,
        tags=tags,
        parent_run_id=parent_run_id,
        system_metrics_every=sample_every,
        metrics_every=t.metrics_every,
    ) as run:
        records.log_inputs(exp, run, params, (train, test), prints, output_dir)
        start = time.perf_counter()
        try:
            watch = (
                pictures.training_pictures(run, exp, train, name=exp.arch.name)
                if t.images
                else None
            )
            features = compute_features(exp, train, test, run, trained=trained, watch=watch)
        except TrainingDiverged as err:
            run.set_tags({EPOCHS_REACHED_TAG: err.epoch})
            raise
        train_seconds = time.perf_counter() - start
        metrics = {"time/train_s": train_seconds, **features.metrics()}

        start = time.perf_counter()
        scores, labels_pred, clusterer = clustering.score_features(
            exp.cluster,
            random_state=exp.seed,
            train=features.train,
            test=features.test,
            labels=train.labels,
            test_labels=test.labels,
        )
        metrics["time/cluster_s"] = time.perf_counter() - start  # UMAP's share is most of it

        save_autoencoder = features.trained_here and t.log_model
        tuned = None
        if exp.finetune.enabled:
            if save_autoencoder:  # before fine-tuning changes its weights, for runs that reuse it
                records.log_autoencoder(run, features, train, training_hash, name="autoencoder")
                save_autoencoder = False
            log.info("before fine-tuning: %s", clustering.scores_line(scores))
            metrics |= {f"pretrain/{k}": v for k, v in scores.items()}
            from aesweep.augment import make_augment
            from aesweep.fine_tuning import fine_tune_features  # Keras: only when fine-tuning

            features, scores, labels_pred, tuned = fine_tune_features(
                features,
                clusterer,
                labels_pred,
                train,
                test,
                exp.finetune,
                n_clusters=exp.cluster.n_clusters,
                random_state=exp.seed,
                on_update=lambda u: run.log_metrics(u.metrics(), step=u.step),
                augment=make_augment(exp.augment),
            )
            metrics |= tuned.metrics()
        run.log_metrics(scores | metrics)
        pictures.RunPictures.choose(
            name,
            train,
            features,
            labels_pred,
            n_clusters=exp.cluster.n_clusters,
            # t-SNE takes seconds: not for a picture nobody would see, or nobody asked for
            latent_map=run.enabled and t.latent_map,
            random_state=exp.seed,
            threads=exp.train.threads,
        ).log(run, images=t.images)
        if save_autoencoder:
            records.log_autoencoder(run, features, train, training_hash, name="model")
        if tuned is not None and t.log_model:
            uri = run.log_keras_model(tuned.model, example=train.x[:5])
            run.set_tags({CLUSTERING_MODEL_URI_TAG: uri})

    records.report(name, scores, train_seconds, tracker)
    return JobValue(scores[objective], metric=objective)
