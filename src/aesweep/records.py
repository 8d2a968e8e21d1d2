"""What a run records of its experiment besides its results: its name, params and tags,
what went in (digits, fingerprints, Hydra's files), its trained model, and its last lines.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from aesweep import clustering, data, fingerprint
from aesweep.config import ExperimentConfig
from aesweep.features import Features
from aesweep.names import (
    EPOCHS_REACHED_TAG,
    FINGERPRINTS_ARTIFACT,
    JOB_DIR_TAG,
    MODEL_URI_TAG,
    OVERRIDES_TAG,
    RESUMED_FROM_TAG,
    SELECTION_TAG,
    TRAINING_TAG,
    TRIAL_ENV,
    TRIAL_TAG,
)
from aesweep.reference import data_selection
from aesweep.tracking import NullRunLog, RunLog, Tracker, code_tags, flatten, ui_link

log = logging.getLogger("aesweep.experiment")  # the run's own lines, as before the split


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


def params_but_the_seed(cfg: DictConfig) -> dict[str, object]:
    """The params of ``cfg`` with its seed at 0, and so every value taken from the seed
    (``arch.model.random_state: ${seed}``): what seed replicates share."""
    unseeded = copy.deepcopy(cfg)
    unseeded.seed = 0
    return run_params(unseeded)


def run_tags(
    exp: ExperimentConfig,
    overrides: Sequence[str],
    *,
    parent_run_id: str | None,
    output_dir: Path | None,
) -> dict[str, str]:
    """The arch, the job's overrides, its data selection and code, and in a sweep its folder."""
    tags = {
        "arch": exp.arch.name,
        OVERRIDES_TAG: shlex.join(overrides) if overrides else "(none)",
        SELECTION_TAG: json.dumps(data_selection(exp), sort_keys=True),
        **code_tags(),
    }
    if parent_run_id is not None and output_dir is not None:
        tags[JOB_DIR_TAG] = str(Path(output_dir).resolve())
    if os.environ.get(TRIAL_ENV):  # a search's job: set by its sweeper (hydra.job.env_set)
        tags[TRIAL_TAG] = os.environ[TRIAL_ENV]
    return tags


def log_inputs(
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


def log_autoencoder(
    run: RunLog | NullRunLog, features: Features, train: data.Digits, training_hash: str, *, name
) -> None:
    """Log the trained autoencoder, tagged so that runs with the same training reuse it."""
    uri = run.log_keras_model(features.autoencoder, example=train.x[:5], name=name)
    run.set_tags({MODEL_URI_TAG: uri, TRAINING_TAG: training_hash})


def report(name: str, scores: dict[str, float], seconds: float, tracker) -> None:
    log.info("%s  %s  (%.1f s)", name, clustering.scores_line(scores), seconds)
    if tracker.enabled:
        link = ui_link(tracker.tracking_uri, tracker.experiment_id, tracker.run_id)
        log.info("MLflow run: %s", link)
        log.info("All runs:   %s", ui_link(tracker.tracking_uri, tracker.experiment_id))


def log_resumed(
    tracker: Tracker,
    source: Run,
    *,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None,
) -> None:
    """Record a run that reuses ``source``'s results (resume), so a sweep lists every job.

    The copy names the run that did the work, also when ``source`` is itself a copy:
    its curves, latents and maps are there.
    """
    original = source.data.tags.get(RESUMED_FROM_TAG, source.info.run_id)
    tags = {**tags, RESUMED_FROM_TAG: original}
    if EPOCHS_REACHED_TAG in source.data.tags:
        tags[EPOCHS_REACHED_TAG] = source.data.tags[EPOCHS_REACHED_TAG]
    with tracker.run(run_name=run_name, tags=tags, parent_run_id=parent_run_id) as log:
        log.log_params(source.data.params)
        log.log_metrics(source.data.metrics)
