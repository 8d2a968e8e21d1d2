"""Run one experiment from a composed config: the only module that reads the config.

digits -> fingerprints (resume?) -> features (train, reuse or fit) -> clusters and scores
-> fine-tuning (DEC/IDEC, if asked) -> records: one step per module, wired here.
"""

from __future__ import annotations

import copy
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
    REPLICATES_TAG,
    SELECTION_TAG,
    TRAINING_TAG,
)
from aesweep.pictures import RunPictures
from aesweep.reference import data_selection
from aesweep.summary import OBJECTIVE, JobValue, objective_for
from aesweep.tracking import NullRunLog, RunLog, Tracker, code_tags, flatten, ui_link

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


#: the arch's defaults for top-level keys: the values in force are logged under those keys
ARCH_DEFAULTS = ("arch.default_", "arch.scaling")


def run_params(cfg: DictConfig) -> dict[str, object]:
    """The resolved config, flattened: the values in force, as ``--cfg job --resolve`` shows,
    and ``log10_lr`` (MLflow's parallel-coordinates chart has no log axis).

    The arch's defaults (``arch.default_lr``, ...) are left out: beside ``lr`` they only
    mislead the runs table and that chart, and ``lr`` says what the run used.
    """
    flat = flatten(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    params = {k: v for k, v in flat.items() if not k.startswith(ARCH_DEFAULTS)}
    if isinstance(params.get("lr"), int | float):
        params["log10_lr"] = round(math.log10(params["lr"]), 4)
    return params


def _params_but_the_seed(cfg: DictConfig) -> dict[str, object]:
    """The params of ``cfg`` with its seed at 0, and so every value taken from the seed
    (``arch.model.random_state: ${seed}``): what seed replicates share."""
    unseeded = copy.deepcopy(cfg)
    unseeded.seed = 0
    return run_params(unseeded)


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
    name, params = run_name(exp), run_params(cfg)
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
        REPLICATES_TAG: fingerprint.replicates(_params_but_the_seed(cfg), overrides),
    }
    if exp.resume:
        tracker.end_stale_runs(FINGERPRINT_TAG, prints["config"].hash)
        done = tracker.find_finished(FINGERPRINT_TAG, prints["config"].hash)
        if done is not None:
            log.info("%s: identical config FINISHED in run %s; reusing it", name, done.info.run_id)
            tracker.copy_finished(done, run_name=name, tags=tags, parent_run_id=parent_run_id)
            return JobValue(done.data.metrics.get(objective, math.nan), metric=objective)
    training_hash = prints["training"].hash
    trained = None
    if exp.reuse_model and exp.arch.trains:
        trained = tracker.find_finished(TRAINING_TAG, training_hash)

    sample_every = t.system_metrics_every if t.system_metrics and exp.arch.trains else None
    with tracker.run(
        run_name=name, tags=tags, parent_run_id=parent_run_id, system_metrics_every=sample_every
    ) as run:
        _log_inputs(exp, run, params, (train, test), prints, output_dir)
        start = time.perf_counter()
        try:
            features = compute_features(exp, train, test, run, trained=trained)
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
                _log_autoencoder(run, features, train, training_hash, name="autoencoder")
                save_autoencoder = False
            log.info("before fine-tuning: %s", clustering.scores_line(scores))
            metrics |= {f"pretrain/{k}": v for k, v in scores.items()}
            from aesweep.finetune import fine_tune_features  # Keras: only when fine-tuning

            features, scores, labels_pred, tuned = fine_tune_features(
                features,
                clusterer.cluster_centers_,
                train,
                test,
                exp.finetune,
                random_state=exp.seed,
                on_update=lambda u: run.log_metrics(u.metrics(), step=u.step),
            )
            metrics |= tuned.metrics()
        run.log_metrics(scores | metrics)
        RunPictures.choose(
            name,
            train,
            features,
            labels_pred,
            n_clusters=exp.cluster.n_clusters,
            # t-SNE takes seconds: not for a picture nobody would see, or nobody asked for
            latent_map=run.enabled and t.latent_map,
            random_state=exp.seed,
            threads=exp.train.threads,
        ).log(run)
        if save_autoencoder:
            _log_autoencoder(run, features, train, training_hash, name="model")
        if tuned is not None and t.log_model:
            uri = run.log_keras_model(tuned.model, example=train.x[:5])
            run.set_tags({CLUSTERING_MODEL_URI_TAG: uri})

    _report(name, scores, train_seconds, tracker)
    return JobValue(scores[objective], metric=objective)


def _log_inputs(
    exp: ExperimentConfig,
    run: RunLog | NullRunLog,
    params: dict,
    splits: tuple[data.Digits, data.Digits],
    prints: dict[str, fingerprint.Fingerprint],
    output_dir: Path | None,
) -> None:
    """What went in: the params, the digits as MLflow datasets (the UI's Dataset column),
    what each fingerprint was made of, and Hydra's ``.hydra/`` files."""
    run.log_params(params)
    source = data.source_uri(exp.data.source.value, exp.data.path)
    for split, context, digits in zip(
        ("train", "test"), ("training", "held-out"), splits, strict=True
    ):
        if len(digits.labels):
            name = f"{exp.data.source.value}-{split}-{len(digits.labels)}"
            run.log_digits(digits.x, digits.labels, name=name, source=source, context=context)
    inputs = {kind: {"hash": f.hash, **f.inputs} for kind, f in prints.items()}
    run.log_dict(inputs, FINGERPRINTS_ARTIFACT)
    if output_dir is not None:
        run.log_dir(output_dir / ".hydra", ".hydra")


def _log_autoencoder(
    run: RunLog | NullRunLog, features: Features, train: data.Digits, training_hash: str, *, name
) -> None:
    """Log the trained autoencoder, tagged so that runs with the same training reuse it."""
    uri = run.log_keras_model(features.autoencoder, example=train.x[:5], name=name)
    run.set_tags({MODEL_URI_TAG: uri, TRAINING_TAG: training_hash})


def _report(name: str, scores: dict[str, float], seconds: float, tracker) -> None:
    log.info("%s  %s  (%.1f s)", name, clustering.scores_line(scores), seconds)
    if tracker.enabled:
        link = ui_link(tracker.tracking_uri, tracker.experiment_id, tracker.run_id)
        log.info("MLflow run: %s", link)
        log.info("All runs:   %s", ui_link(tracker.tracking_uri, tracker.experiment_id))
