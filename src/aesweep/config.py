"""Structured config schema: what each config group may hold, checked before any work.

The dataclasses are registered in Hydra's ConfigStore as the schema of ``conf/``, so an
unknown key or a wrong type fails when Hydra composes the config. Range checks live in
``__post_init__`` and run in :func:`to_experiment_config`, which turns the composed
``DictConfig`` into these typed objects once, at the start of a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aesweep.errors import InputError


class ArchName(StrEnum):
    ffn = "ffn"
    ffn_linear = "ffn_linear"
    cnn = "cnn"
    pixels = "pixels"
    pca = "pca"


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


#: archs that train nothing: no learning rate, and pixels' features are the 784 pixels
UNTRAINED_ARCHS = (ArchName.pixels, ArchName.pca)


@dataclass
class ArchConfig:
    name: ArchName = MISSING
    default_lr: float | None = None  # what the top-level ``lr`` takes unless set
    default_latent_dim: int | None = None  # what the top-level ``latent_dim`` takes unless set
    scaling: Scaling = Scaling.zscore  # what ``data.scaling`` takes unless set

    def __post_init__(self) -> None:
        if self.default_lr is not None:
            _check_positive("arch.default_lr", self.default_lr)
        if self.default_latent_dim is not None:
            _check_positive("arch.default_latent_dim", self.default_latent_dim)


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

    def __post_init__(self) -> None:
        _check_positive("train.epochs", self.epochs)
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.progress_every", self.progress_every)
        if self.threads is not None:
            _check_positive("train.threads", self.threads)


@dataclass
class ClusterConfig:
    n_clusters: int = 10
    init: str = "k-means++"
    n_init: int = 3
    max_iter: int = 300
    tol: float = 1e-4

    def __post_init__(self) -> None:
        _check_positive("cluster.n_clusters", self.n_clusters)
        _check_positive("cluster.n_init", self.n_init)
        _check_positive("cluster.max_iter", self.max_iter)
        if self.init not in ("k-means++", "random"):
            raise InputError(f"cluster.init={self.init!r} must be 'k-means++' or 'random'")


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None
    experiment: str = "aesweep"
    log_model: bool = True


@dataclass
class ExperimentConfig:
    arch: ArchConfig = MISSING
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    lr: float | None = None  # conf/config.yaml: the arch's default_lr unless set
    latent_dim: int | None = None  # conf/config.yaml: the arch's default_latent_dim unless set
    seed: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        arch = self.arch.name
        if self.lr is not None:
            _check_positive("lr", self.lr)
            if arch in UNTRAINED_ARCHS:
                raise InputError(f"lr={self.lr!r} does nothing for arch={arch}: it trains nothing")
        elif arch not in UNTRAINED_ARCHS:
            raise InputError(f"lr=None: arch={arch} needs a learning rate")
        if self.latent_dim is not None:
            _check_positive("latent_dim", self.latent_dim)
            if arch == ArchName.pixels:
                raise InputError(
                    f"latent_dim={self.latent_dim!r} does nothing for arch=pixels: "
                    "its features are the 784 pixels"
                )
        elif arch != ArchName.pixels:
            raise InputError(f"latent_dim=None: arch={arch} needs a latent size")


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
        return OmegaConf.to_object(OmegaConf.merge(schema, user_cfg))
    except OmegaConfBaseException as err:
        # OmegaConf's message spans lines; its first line and the key are what a user needs.
        key = getattr(err, "full_key", "") or "config"
        raise InputError(f"{key}: {str(err).splitlines()[0]}") from err
