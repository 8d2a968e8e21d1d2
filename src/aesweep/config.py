"""Structured config schema: what each config group may hold, checked before any work.

The dataclasses are registered in Hydra's ConfigStore as the schema of ``conf/``, so an
unknown key or a wrong type fails when Hydra composes the config. Range checks live in
``__post_init__`` and run in :func:`to_experiment_config`, which turns the composed
``DictConfig`` into these typed objects once, at the start of a job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aesweep import data, targets
from aesweep.errors import InputError


class Hidden(StrEnum):
    relu = "relu"
    sigmoid = "sigmoid"


class Output(StrEnum):
    linear = "linear"
    relu = "relu"
    sigmoid = "sigmoid"


class Source(StrEnum):
    mnist_sample = "mnist_sample"
    mnist = "mnist"
    file = "file"


class Scaling(StrEnum):
    zscore = "zscore"
    unit = "unit"
    none = "none"


def _check_positive(key: str, value: float | int) -> None:
    if value <= 0:
        raise InputError(f"{key}={value!r} must be > 0")


@dataclass
class ArchConfig:
    """What extracts a run's features: ``model`` is what ``hydra.utils.instantiate`` builds.

    Its ``_target_`` is either a function or ``keras.Model`` class that returns an
    autoencoder (trained on the digits: see :mod:`aesweep.models` for the contract), or a
    scikit-learn transformer class (``fit``/``transform``: fitted, not trained, such as
    PCA). The other keys of ``model`` are its arguments, checked against its signature
    here, before any work.
    """

    name: str = MISSING
    model: dict[str, Any] = field(default_factory=dict)  # _target_ and its arguments
    input_shape: list[int] = field(default_factory=lambda: [data.N_PIXELS])  # of one digit
    default_lr: float | None = None  # what the top-level ``lr`` takes unless set
    default_latent_dim: int | None = None  # what the top-level ``latent_dim`` takes unless set
    default_epochs: int = 500  # what ``train.epochs`` takes unless set (the seed's)
    default_batch_size: int = 300  # what ``train.batch_size`` takes unless set (the seed's)
    scaling: Scaling = Scaling.zscore  # what ``data.scaling`` takes unless set

    def __post_init__(self) -> None:
        for key in ("default_lr", "default_latent_dim", "default_epochs", "default_batch_size"):
            if getattr(self, key) is not None:
                _check_positive(f"arch.{key}", getattr(self, key))
        if self.name == MISSING:
            return  # the schema's own default, before an option of conf/arch fills it in
        if math.prod(self.input_shape) != data.N_PIXELS:
            raise InputError(
                f"arch.input_shape={list(self.input_shape)} must hold the {data.N_PIXELS} "
                "pixels of a digit"
            )
        self.model = {k: _plain(v) for k, v in self.model.items()}
        self.builder = targets.check_call("arch.model", self.model)
        if not self.trains and list(self.input_shape) != [data.N_PIXELS]:
            raise InputError(
                f"arch.input_shape={list(self.input_shape)}: a transformer "
                f"({self.model['_target_']}) takes flat digits, [{data.N_PIXELS}]"
            )

    @property
    def trains(self) -> bool:
        """False for a transformer (``fit`` and ``transform``): it learns no weights."""
        return not (hasattr(self.builder, "fit") and hasattr(self.builder, "transform"))


@dataclass
class ActivationConfig:
    hidden: Hidden = Hidden.relu
    output: Output = Output.linear


@dataclass
class DataConfig:
    source: Source = Source.mnist_sample
    n_samples: int = 3000
    n_test: int = 1000
    path: str | None = None  # data=file only
    allow_pickle: bool = False  # data=file only
    scaling: Scaling = Scaling.zscore

    def __post_init__(self) -> None:
        _check_positive("data.n_samples", self.n_samples)
        if self.n_test < 0:
            raise InputError(f"data.n_test={self.n_test!r} must be >= 0")
        if self.source == Source.file and not self.path:
            raise InputError("data.path=None: data=file needs data.path=/path/to/digits.npz")
        if self.source != Source.file:
            # Only a file is read from a path; accepting these here would ignore them.
            if self.path is not None:
                raise InputError(
                    f"data.path={self.path!r} is read only by data=file, not data={self.source}"
                )
            if self.allow_pickle:
                raise InputError(
                    f"data.allow_pickle=True is read only by data=file, not data={self.source}"
                )


@dataclass
class TrainConfig:
    epochs: int = 500
    batch_size: int = 300
    validation: bool = True
    progress_every: int = 25
    threads: int | None = None
    finetune_max_steps: int = 20000  # what finetune=dec|idec's max_steps defaults to

    def __post_init__(self) -> None:
        _check_positive("train.epochs", self.epochs)
        _check_positive("train.finetune_max_steps", self.finetune_max_steps)
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.progress_every", self.progress_every)
        if self.threads is not None:
            _check_positive("train.threads", self.threads)


class ClusterName(StrEnum):
    kmeans = "kmeans"
    gmm = "gmm"
    umap_kmeans = "umap_kmeans"
    umap_gmm = "umap_gmm"


class CovarianceType(StrEnum):
    full = "full"
    tied = "tied"
    diag = "diag"
    spherical = "spherical"


class UmapMetric(StrEnum):
    euclidean = "euclidean"
    manhattan = "manhattan"
    chebyshev = "chebyshev"
    cosine = "cosine"
    correlation = "correlation"


#: the clusterers that embed the features with UMAP first (N2D), and what each one ends in
UMAP_CLUSTERERS = (ClusterName.umap_kmeans, ClusterName.umap_gmm)
KMEANS_CLUSTERERS = (ClusterName.kmeans, ClusterName.umap_kmeans)
GMM_CLUSTERERS = (ClusterName.gmm, ClusterName.umap_gmm)

#: each optional key of ``cluster`` and the clusterers that read it
_CLUSTER_KEYS = {
    "n_init": tuple(ClusterName),
    "max_iter": tuple(ClusterName),
    "tol": tuple(ClusterName),
    "init": KMEANS_CLUSTERERS,
    "covariance_type": GMM_CLUSTERERS,
    "reg_covar": GMM_CLUSTERERS,
    "umap.n_components": UMAP_CLUSTERERS,
    "umap.n_neighbors": UMAP_CLUSTERERS,
    "umap.min_dist": UMAP_CLUSTERERS,
    "umap.metric": UMAP_CLUSTERERS,
}


@dataclass
class UmapConfig:
    n_components: int | None = None  # null: n_clusters (N2D's choice)
    n_neighbors: int | None = None
    min_dist: float | None = None
    metric: UmapMetric | None = None


@dataclass
class ClusterConfig:
    """A clusterer (``name``) and the keys it reads; the keys it does not read stay null.

    The schema holds every clusterer's keys, unset; each option of ``conf/cluster`` sets
    ``name`` and its clusterer's keys. A value in a key that the clusterer does not read
    would be ignored, so it is refused, as is a key it needs left null.
    """

    name: ClusterName = MISSING
    n_clusters: int = 10
    n_init: int | None = None  # KMeans and GMM: initialisations, the best one kept
    max_iter: int | None = None  # KMeans and GMM
    tol: float | None = None  # KMeans and GMM, each its own convergence criterion
    init: str | None = None  # KMeans only
    covariance_type: CovarianceType | None = None  # GMM only
    reg_covar: float | None = None  # GMM only
    umap: UmapConfig = field(default_factory=UmapConfig)  # umap_kmeans and umap_gmm only

    def __post_init__(self) -> None:
        if self.name == MISSING:
            return  # the schema's own default, before an option of conf/cluster fills it in
        _check_positive("cluster.n_clusters", self.n_clusters)
        for key, readers in _CLUSTER_KEYS.items():
            value = self._get(key)
            if self.name not in readers and value is not None:
                raise InputError(
                    f"cluster.{key}={_shown(value)} is read only by "
                    f"cluster={'|'.join(readers)}, not cluster={self.name}"
                )
            # umap.n_components may stay null: it then takes n_clusters.
            if self.name in readers and value is None and key != "umap.n_components":
                raise InputError(f"cluster.{key}=None: cluster={self.name} needs a value")
        for key in ("n_init", "max_iter", "umap.n_components"):
            if self._get(key) is not None:
                _check_positive(f"cluster.{key}", self._get(key))
        for key in ("tol", "reg_covar"):
            if self._get(key) is not None and self._get(key) < 0:
                raise InputError(f"cluster.{key}={self._get(key)!r} must be >= 0")
        if self.init is not None and self.init not in ("k-means++", "random"):
            raise InputError(f"cluster.init={self.init!r} must be 'k-means++' or 'random'")
        u = self.umap
        if u.n_neighbors is not None and u.n_neighbors < 2:
            raise InputError(f"cluster.umap.n_neighbors={u.n_neighbors!r} must be >= 2")
        # UMAP's curve is fitted with spread 1: it refuses a min_dist beyond it.
        if u.min_dist is not None and not 0 <= u.min_dist <= 1:
            raise InputError(f"cluster.umap.min_dist={u.min_dist!r} must be in [0, 1]")

    @classmethod
    def seed_kmeans(cls) -> ClusterConfig:
        """The seed's KMeans, as ``conf/cluster/kmeans.yaml`` sets it."""
        return cls(
            name=ClusterName.kmeans,
            n_clusters=10,
            init="k-means++",
            n_init=3,
            max_iter=300,
            tol=1e-4,
        )

    @property
    def umap_n_components(self) -> int:
        """The UMAP embedding's dimension: ``umap.n_components``, or ``n_clusters`` if null."""
        n_components = self.umap.n_components
        return self.n_clusters if n_components is None else n_components

    def check_n_samples(self, n_samples: int) -> None:
        """Refuse, naming the key, a clusterer that cannot fit ``n_samples`` points.

        Raises
        ------
        InputError
            Fewer points than clusters; for UMAP, no more points than embedding dimensions
            (its spectral initialisation fails) or than neighbours (it would cut
            ``n_neighbors`` down with a mere warning).
        """
        if n_samples < self.n_clusters:
            raise InputError(
                f"cluster.n_clusters={self.n_clusters} exceeds the {n_samples} samples to cluster"
            )
        if self.name not in UMAP_CLUSTERERS:
            return
        if self.umap_n_components >= n_samples:
            raise InputError(
                f"cluster.umap.n_components={self.umap.n_components!r} "
                f"({self.umap_n_components} dimensions) must be below the {n_samples} samples "
                "to embed"
            )
        if self.umap.n_neighbors >= n_samples:
            raise InputError(
                f"cluster.umap.n_neighbors={self.umap.n_neighbors} must be below the "
                f"{n_samples} samples to embed"
            )

    def _get(self, key: str) -> Any:
        node = self
        for part in key.split("."):
            node = getattr(node, part)
        return node


def _shown(value: Any) -> str:
    """``value`` as a message shows it: an enum by its value, ``'full'``."""
    return repr(str(value)) if isinstance(value, StrEnum) else repr(value)


class FinetuneName(StrEnum):
    none = "none"
    dec = "dec"
    idec = "idec"
    selflabel = "selflabel"


class Optimizer(StrEnum):
    sgd = "sgd"
    adam = "adam"


#: each key of ``finetune`` that only some settings read, and a test of whether they do
_FINETUNE_ONLY = {
    **{
        key: ("finetune=dec|idec", lambda f: f.name in (FinetuneName.dec, FinetuneName.idec))
        for key in ("alpha", "update_interval", "tol")
    },
    "gamma": ("finetune=idec", lambda f: f.name == FinetuneName.idec),
    "momentum": ("finetune.optimizer=sgd", lambda f: f.optimizer == Optimizer.sgd),
}


@dataclass
class FinetuneConfig:
    """Clustering-oriented fine-tuning of the trained encoder (DEC, IDEC, self-labelling),
    or none.

    ``none`` leaves every other key null; ``dec`` and ``idec`` set them all (``gamma``
    only for idec, ``momentum`` only with SGD), ``selflabel`` all but DEC's ``alpha``,
    ``update_interval`` and ``tol``; a key that would be ignored is refused.
    """

    name: FinetuneName = FinetuneName.none
    alpha: float | None = None  # Student's t degrees of freedom of the soft assignment
    update_interval: int | None = None  # steps between two target distributions
    tol: float | None = None  # stop when fewer than this fraction of labels change
    max_steps: int | None = None  # stop here at the latest
    batch_size: int | None = None
    optimizer: Optimizer | None = None
    lr: float | None = None
    momentum: float | None = None  # SGD only
    gamma: float | None = None  # idec only: the weight of the clustering loss

    def __post_init__(self) -> None:
        keys = ("max_steps", "batch_size", "optimizer", "lr")
        if self.name == FinetuneName.none:
            for key in (*keys, *_FINETUNE_ONLY):
                if getattr(self, key) is not None:
                    raise InputError(
                        f"finetune.{key}={_shown(getattr(self, key))} is read only by "
                        "finetune=dec|idec|selflabel, not finetune=none"
                    )
            return
        for key in keys:
            if getattr(self, key) is None:
                raise InputError(f"finetune.{key}=None: finetune={self.name} needs a value")
        for key, (reader, reads) in _FINETUNE_ONLY.items():
            value = getattr(self, key)
            if reads(self) and value is None:
                raise InputError(f"finetune.{key}=None: {reader} needs a value")
            if not reads(self) and value is not None:
                raise InputError(f"finetune.{key}={value!r} is read only by {reader}")
        for key in ("alpha", "update_interval", "max_steps", "batch_size", "lr"):
            if getattr(self, key) is not None:
                _check_positive(f"finetune.{key}", getattr(self, key))
        if self.tol is not None and not 0 <= self.tol < 1:
            raise InputError(f"finetune.tol={self.tol!r} must be in [0, 1)")
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise InputError(f"finetune.momentum={self.momentum!r} must be in [0, 1)")
        if self.gamma is not None:
            _check_positive("finetune.gamma", self.gamma)

    @property
    def enabled(self) -> bool:
        return self.name != FinetuneName.none


@dataclass
class AugmentConfig:
    """Random shifts and rotations of the training digits, per batch (:mod:`aesweep.augment`)."""

    name: str = "none"  # none | shift (conf/augment/)
    width_shift: float = 0.0  # up to this fraction of the width, left or right (DEC-DA: 0.1)
    height_shift: float = 0.0  # up to this fraction of the height, up or down (DEC-DA: 0.1)
    rotation: float = 0.0  # up to this many degrees, either way (DEC-DA: 10)

    def __post_init__(self) -> None:
        for key in ("width_shift", "height_shift", "rotation"):
            if getattr(self, key) < 0:
                raise InputError(f"augment.{key}={getattr(self, key)!r} must be >= 0")
        for key in ("width_shift", "height_shift"):
            if getattr(self, key) >= 0.5:
                raise InputError(
                    f"augment.{key}={getattr(self, key)!r} must be below 0.5: a shift of half "
                    "an image or more moves a digit out of it"
                )
        if self.rotation >= 180:
            raise InputError(
                f"augment.rotation={self.rotation!r} must be below 180 degrees: "
                "beyond, a 6 and a 9 are the same digit"
            )

    @property
    def enabled(self) -> bool:
        return any((self.width_shift, self.height_shift, self.rotation))


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None
    experiment: str = "aesweep"
    log_model: bool = True
    latent_map: bool = True
    images: bool = True  # the run's MLflow images; the sweep's figures need only its arrays
    system_metrics: bool = True  # CPU, memory (GPU where one is) of a run that trains
    system_metrics_every: float = 10.0  # seconds between two samples
    metrics_every: float = 5.0  # seconds between two writes of the per-epoch metrics

    def __post_init__(self) -> None:
        _check_positive("tracking.system_metrics_every", self.system_metrics_every)
        _check_positive("tracking.metrics_every", self.metrics_every)


@dataclass
class ExperimentConfig:
    arch: ArchConfig = MISSING
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr: float | None = None  # conf/config.yaml: the arch's default_lr unless set
    latent_dim: int | None = None  # conf/config.yaml: the arch's default_latent_dim unless set
    seed: int = 0
    resume: bool = False
    reuse_model: bool = True

    def __post_init__(self) -> None:
        arch = self.arch.name
        if self.lr is not None:
            _check_positive("lr", self.lr)
            if not self.arch.trains:
                raise InputError(f"lr={self.lr!r} does nothing for arch={arch}: it trains nothing")
        elif self.arch.trains:
            raise InputError(f"lr=None: arch={arch} needs a learning rate")
        if self.latent_dim is not None:
            _check_positive("latent_dim", self.latent_dim)
        if self.augment.enabled and not self.arch.trains:
            raise InputError(
                f"augment={self.augment.name} augments training digits: arch={arch} trains nothing"
            )
        self.cluster.check_n_samples(self.data.n_samples)  # before any run, not after training
        if self.finetune.enabled:
            if not self.arch.trains:
                raise InputError(
                    f"finetune={self.finetune.name} fine-tunes an encoder: arch={arch} has none"
                )
            # DEC's centres are KMeans centres in the latent space itself; self-labelling
            # follows any clusterer's labels.
            if (
                self.finetune.name != FinetuneName.selflabel
                and self.cluster.name != ClusterName.kmeans
            ):
                raise InputError(
                    f"finetune={self.finetune.name} starts its centres from KMeans on the "
                    f"latents: cluster={self.cluster.name} is not cluster=kmeans"
                )


def _plain(value: Any) -> Any:
    """An enum (``activation.hidden``, interpolated into an arch's arguments) as its value."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_latent_dim(cfg: DictConfig, exp: ExperimentConfig) -> None:
    """``latent_dim`` is set exactly when the arch's model reads it (``${latent_dim}``)."""
    arguments = OmegaConf.to_container(cfg.arch.model, resolve=False)
    reads = "${latent_dim}" in json.dumps(arguments)
    if exp.latent_dim is not None and not reads:
        raise InputError(
            f"latent_dim={exp.latent_dim!r} does nothing for arch={exp.arch.name}: "
            "its model does not read it"
        )
    if exp.latent_dim is None and reads:
        raise InputError(f"latent_dim=None: arch={exp.arch.name} needs a latent size")


def register_configs() -> None:
    """Register the schema so that Hydra checks ``conf/`` against it while composing."""
    cs = ConfigStore.instance()
    cs.store(name="experiment_schema", node=ExperimentConfig)
    for group, node in [
        ("arch", ArchConfig),
        ("activation", ActivationConfig),
        ("data", DataConfig),
        ("train", TrainConfig),
        ("cluster", ClusterConfig),
        ("tracking", TrackingConfig),
        ("finetune", FinetuneConfig),
        ("augment", AugmentConfig),
    ]:
        cs.store(group=group, name=f"{group}_schema", node=node)


def to_experiment_config(cfg: DictConfig | dict[str, Any]) -> ExperimentConfig:
    """Validate a composed config and return it as typed objects.

    Raises
    ------
    InputError
        With the offending key and value, for any type or range error.
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    schema = OmegaConf.structured(ExperimentConfig)
    # Hydra's own keys are not part of the experiment.
    user_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        merged = OmegaConf.merge(schema, user_cfg)
        exp = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        # OmegaConf's message spans lines; its first line and the key are what a user needs.
        key = getattr(err, "full_key", "") or "config"
        raise InputError(f"{key}: {str(err).splitlines()[0]}") from err
    _check_latent_dim(merged, exp)
    return exp


def check_job(cfg: DictConfig | dict[str, Any]) -> ExperimentConfig:
    """Everything that can be checked of one job before it starts: the config
    (:func:`to_experiment_config`), the data file, and whether the data holds the digits
    asked for. A sweep runs it on every job before the first one trains.

    Raises
    ------
    InputError or FileNotFoundError
        With the offending key and value.
    """
    exp = to_experiment_config(cfg)
    d = exp.data
    available = data.count(d.source.value, d.path, allow_pickle=d.allow_pickle)
    data.check_split(available, n_samples=d.n_samples, n_test=d.n_test)
    return exp
