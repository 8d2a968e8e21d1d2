"""Run one experiment from a composed config: the only module that reads the config.

load digits -> train (or compute a baseline's features) -> KMeans -> scores -> records.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from sklearn.decomposition import PCA

from aesweep import clustering, data, figures
from aesweep.config import (
    ArchConfig,
    ArchName,
    ExperimentConfig,
    Scaling,
    Source,
    to_experiment_config,
)
from aesweep.errors import TrainingDiverged
from aesweep.review import SELECTION_TAG
from aesweep.summary import OBJECTIVE
from aesweep.tracking import PANEL_ARTIFACT, NullTracker, Tracker, flatten, ui_link

if TYPE_CHECKING:  # Keras loads in seconds: only runs that train import it
    import keras

    from aesweep.training import History

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "aesweep.config_hash"  # what resume=true matches finished runs by
OBJECTIVE_TAG = "aesweep.objective"  # the metric a run returned to the sweeper


@dataclass
class Features:
    """Latent features of the train and held-out digits, and what made them."""

    train: np.ndarray
    test: np.ndarray
    history: History | None = None
    autoencoder: keras.Model | None = None
    decoded: np.ndarray | None = None  # reconstructions of the first ten training digits


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
    return name


def load_digits(cfg: ExperimentConfig) -> tuple[data.Digits, data.Digits]:
    """The scaled train and held-out digits that ``cfg.data`` asks for."""
    source = cfg.data.source
    if source == Source.mnist_sample:
        images, labels = data.load_mnist_sample()
    elif source == Source.mnist:
        images, labels = data.load_keras_mnist()
    else:
        images, labels = data.load_file(cfg.data.path, allow_pickle=cfg.data.allow_pickle)
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
    cfg: ExperimentConfig, train: data.Digits, test: data.Digits, tracker: Tracker | NullTracker
) -> Features:
    """Train the arch's autoencoder and encode, or compute a baseline's features."""
    arch = cfg.arch.name
    if arch == ArchName.pixels:
        return Features(train=_flat(train.x), test=_flat(test.x))
    if arch == ArchName.pca:
        pca = PCA(n_components=cfg.latent_dim, random_state=cfg.seed).fit(train.x)
        train_z = pca.transform(train.x)
        decoded = pca.inverse_transform(train_z[:10])
        test_z = pca.transform(test.x) if len(test.x) else np.empty((0, train_z.shape[1]))
        return Features(train=train_z, test=test_z, decoded=decoded)

    import keras

    from aesweep.models import build_autoencoder
    from aesweep.training import encode, set_threads, train_autoencoder

    set_threads(cfg.train.threads)
    keras.utils.set_random_seed(cfg.seed)
    ae = build_autoencoder(
        arch.value,
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
    return Features(
        train=encode(ae.encoder, train.x),
        test=encode(ae.encoder, test.x),
        history=history,
        autoencoder=ae.model,
        decoded=encode(ae.model, train.x[:10]),
    )


def _flat(x: np.ndarray) -> np.ndarray:
    """``x`` as (n_samples, n_features), also when n_samples is 0."""
    return x.reshape(len(x), int(np.prod(x.shape[1:])))


def score_clusters(
    cfg: ExperimentConfig, features: Features, train: data.Digits, test: data.Digits
) -> tuple[dict[str, float], np.ndarray]:
    """KMeans fitted on the training features, scored there and on the held-out digits."""
    c = cfg.cluster
    kmeans = clustering.fit_kmeans(
        features.train,
        n_clusters=c.n_clusters,
        init=c.init,
        n_init=c.n_init,
        max_iter=c.max_iter,
        tol=c.tol,
        random_state=cfg.seed,
    )
    scores = {
        f"cluster/{k}": v
        for k, v in clustering.cluster_scores(train.labels, kmeans.labels_).items()
    }
    if len(test.labels):
        test_pred = kmeans.predict(features.test.astype(kmeans.cluster_centers_.dtype))
        scores |= {
            f"test/{k}": v for k, v in clustering.cluster_scores(test.labels, test_pred).items()
        }
    return scores, kmeans.labels_


def log_figures(
    cfg: ExperimentConfig,
    tracker: Tracker | NullTracker,
    features: Features,
    train: data.Digits,
    labels_pred: np.ndarray,
    name: str,
) -> None:
    """The seed's pictures, plus reconstructions and the loss curve."""
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


def data_selection(cfg: ExperimentConfig) -> dict[str, object]:
    """What picks a run's digits: the data settings (not their scaling) and the seed."""
    path = cfg.data.path and str(Path(cfg.data.path).expanduser().resolve())
    return {
        "data.source": cfg.data.source.value,
        "data.path": path,
        "data.allow_pickle": cfg.data.allow_pickle,
        "data.n_samples": cfg.data.n_samples,
        "data.n_test": cfg.data.n_test,
        "seed": cfg.seed,
    }


def pixel_reference(base: ExperimentConfig, selection: dict[str, object]) -> dict[str, float]:
    """KMeans on the raw pixels (/255) of the digits ``selection`` picks, with its seed.

    The reference rows of a sweep table: does a latent cluster better than the pixels of
    the same digits? ``base`` gives the clustering settings; ``selection`` comes from
    :func:`data_selection`.
    """
    exp = dataclasses.replace(
        base,
        arch=ArchConfig(name=ArchName.pixels, scaling=Scaling.unit),
        lr=None,
        latent_dim=None,
        seed=selection["seed"],
        data=dataclasses.replace(
            base.data,
            source=Source(selection["data.source"]),
            path=selection["data.path"],
            allow_pickle=selection["data.allow_pickle"],
            n_samples=selection["data.n_samples"],
            n_test=selection["data.n_test"],
            scaling=Scaling.unit,
        ),
    )
    train, test = load_digits(exp)
    features = compute_features(exp, train, test, NullTracker())
    scores, _ = score_clusters(exp, features, train, test)
    return scores


def run_params(cfg: DictConfig) -> dict[str, object]:
    """The resolved config, flattened: the values in force, as ``--cfg job --resolve`` shows."""
    return flatten(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


def config_fingerprint(params: dict[str, object]) -> str:
    """A hash of everything that shapes a run's results (not where or how it is recorded)."""
    ignored = ("tracking.", "resume", "train.progress_every")
    relevant = {k: str(v) for k, v in params.items() if not k.startswith(ignored)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


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
    whose ``.hydra/`` files are logged with the run.
    """
    exp = to_experiment_config(cfg)
    train, test = load_digits(exp)  # bad data fails here, before any run exists
    tracker = Tracker.connect(
        enabled=exp.tracking.enabled,
        uri=exp.tracking.uri,
        experiment=exp.tracking.experiment,
        root=root,
    )
    name = run_name(exp)
    params = run_params(cfg)
    fingerprint = config_fingerprint(params)
    objective = OBJECTIVE if len(test.labels) else "cluster/acc"
    if objective != OBJECTIVE:
        log.warning(
            "data.n_test=0: no held-out digits, so the sweep objective is %s on the training "
            "digits, not %s",
            objective,
            OBJECTIVE,
        )
    tags = {
        "arch": exp.arch.name.value,
        "overrides": shlex.join(overrides) if overrides else "(none)",
        FINGERPRINT_TAG: fingerprint,
        SELECTION_TAG: json.dumps(data_selection(exp), sort_keys=True),
        OBJECTIVE_TAG: objective,
    }
    if exp.resume:
        done = tracker.find_finished(FINGERPRINT_TAG, fingerprint)
        if done is not None:
            log.info(
                "%s: identical config already FINISHED in run %s; reusing it",
                name,
                done.info.run_id,
            )
            tracker.copy_finished(done, run_name=name, tags=tags, parent_run_id=parent_run_id)
            return done.data.metrics.get(objective, math.nan)
    with tracker.run(run_name=name, tags=tags, parent_run_id=parent_run_id):
        tracker.log_params(params)
        if output_dir is not None:
            tracker.log_dir(output_dir / ".hydra", ".hydra")

        start = time.perf_counter()
        try:
            features = compute_features(exp, train, test, tracker)
        except TrainingDiverged as err:
            tracker.set_tags({"epochs_reached": err.epoch})
            raise
        train_seconds = time.perf_counter() - start

        scores, labels_pred = score_clusters(exp, features, train, test)
        metrics = dict(scores, **{"time/train_s": train_seconds})
        if features.history is not None:
            metrics |= {
                "time/s_per_epoch": features.history.seconds_per_epoch,
                "train/epochs": features.history.epochs,
            }
        tracker.log_metrics(metrics)
        log_figures(exp, tracker, features, train, labels_pred, name)
        if features.autoencoder is not None and exp.tracking.log_model:
            tracker.log_keras_model(features.autoencoder, example=train.x[:5])

    _report(name, scores, train_seconds, tracker)
    return scores[objective]


def _report(
    name: str, scores: dict[str, float], seconds: float, tracker: Tracker | NullTracker
) -> None:
    summary = "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
    log.info("%s  %s  (%.1f s)", name, summary, seconds)
    if tracker.enabled:
        log.info(
            "MLflow run: %s", ui_link(tracker.tracking_uri, tracker.experiment_id, tracker.run_id)
        )
        log.info("All runs:   %s", ui_link(tracker.tracking_uri, tracker.experiment_id))
