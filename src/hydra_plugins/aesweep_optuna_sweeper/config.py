"""The sweeper's config, registered as ``hydra/sweeper=aesweep_optuna``.

Its keys follow hydra-optuna-sweeper's (``n_trials``, ``n_jobs``, ``direction``,
``sampler``, ``storage``, ``study_name``, ``params``), so that a Hydra user's overrides and
presets carry over. Only Hydra and OmegaConf are imported here: Hydra imports every
plugin module on every command.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class Direction(Enum):
    minimize = "minimize"
    maximize = "maximize"


@dataclass
class TPESamplerConfig:
    """Optuna's TPE sampler (``hydra/sweeper/sampler=tpe``)."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None  # a resumed study continues from seed + the trials it holds
    n_startup_trials: int = 10  # random draws before TPE models the results
    multivariate: bool = False  # model the keys jointly instead of one by one


@dataclass
class RandomSamplerConfig:
    """Uniform random draws (``hydra/sweeper/sampler=random``): the baseline for TPE."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class AesweepOptunaSweeperConfig:
    _target_: str = "hydra_plugins.aesweep_optuna_sweeper.optuna_sweeper.AesweepOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    _recursive_: bool = False  # the sweeper builds the sampler itself (its seed on resume)
    sampler: Any = MISSING  # hydra/sweeper/sampler: tpe | random, or any optuna sampler's _target_
    direction: Direction = Direction.maximize  # the jobs return held-out accuracy
    # sqlite:///optuna.db: one worker at a time; a file path (optuna.log): Optuna's journal,
    # workers on one machine; postgresql+psycopg2://user@host/db: workers anywhere; null: memory
    storage: str | None = "sqlite:///optuna.db"  # relative paths: from where the command runs
    study_name: str | None = None  # null: search-<hash of the space and the fixed overrides>
    n_trials: int = 20  # trials the study holds at the end, those of earlier runs included
    n_jobs: int = 1  # trials per batch, launched together (parallel with hydra/launcher=joblib)
    params: dict[str, Any] | None = None  # key: choice(...) | range(...) | interval(...) | value
    # Several workers on one study: each running trial beats every heartbeat_interval
    # seconds; one silent for grace_period (null: twice the interval) is run again elsewhere.
    heartbeat_interval: int = 10
    grace_period: int | None = None


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="aesweep_optuna",
    node=AesweepOptunaSweeperConfig,
    provider="aesweep",
)
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConfig, provider="aesweep"
)
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="random", node=RandomSamplerConfig, provider="aesweep"
)
