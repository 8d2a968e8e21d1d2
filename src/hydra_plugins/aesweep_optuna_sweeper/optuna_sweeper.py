"""Hydra's side of a search: the sweeper that :mod:`aesweep.search` runs through.

It turns Hydra's config into the search's arguments, composes and checks a trial's config
with Hydra's own loader, and launches each batch of trials with the configured launcher.
Optuna and aesweep load only when a search starts: Hydra imports this module on every
command.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class AesweepOptunaSweeper(Sweeper):
    """An Optuna study whose trials are Hydra jobs (settings: ``config.py``)."""

    def __init__(
        self,
        sampler: DictConfig,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        params: DictConfig | None,
        heartbeat_interval: int = 10,
        grace_period: int | None = None,
    ) -> None:
        self.sampler = OmegaConf.to_container(sampler, resolve=True)
        self.direction = getattr(direction, "value", str(direction))
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.params = OmegaConf.to_container(params, resolve=True) if params else {}
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from aesweep.errors import InputError

        try:
            return self._search(arguments)
        except InputError as err:
            log.error("%s", err)
            sys.exit(1)

    def _search(self, arguments: list[str]) -> Any:
        from hydra.utils import instantiate

        from aesweep import search
        from aesweep.config import to_experiment_config
        from aesweep.errors import InputError
        from aesweep.search_record import describe_storage
        from aesweep.studies import join_study

        for key in ("n_trials", "n_jobs", "heartbeat_interval"):
            if getattr(self, key) < 1:
                raise InputError(f"hydra.sweeper.{key}={getattr(self, key)} must be >= 1")
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise InputError(
                f"hydra.sweeper.grace_period={self.grace_period} must exceed "
                f"hydra.sweeper.heartbeat_interval={self.heartbeat_interval}"
            )
        space, fixed = search.parse_space(self.params, arguments)
        search.validate_space(space, fixed, self.check)
        name = self.study_name or search.study_name(
            space, fixed, direction=self.direction, sampler=self.sampler
        )
        storage = self._storage()
        worker = join_study(
            storage,
            study_name=name,
            direction=self.direction,
            sampler=instantiate(self.sampler),
            heartbeat_interval=self.heartbeat_interval,
            grace_period=self.grace_period,
        )
        try:
            log.info("Optuna study %r in %s", name, describe_storage(storage))
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            base = to_experiment_config(self.config)
            parent = (
                self._open_parent(base, name, worker, sweep_dir) if base.tracking.enabled else None
            )
            record = search.SearchRecord(
                study_name=name,
                storage=describe_storage(storage) if storage else None,
                direction=self.direction,
                sampler=self.sampler,
                n_trials=self.n_trials,
                space=search.describe_space(space),
            )
            if parent is not None:
                # At exit the parent stays RUNNING while another worker runs trials, or will
                # review the study (it told the last trial): it ends the parent.
                parent.needed_elsewhere = lambda: (
                    worker.others_running() or not record.closes_parent
                )
            return search.run_search(
                worker,
                space,
                self._share_cores(fixed),
                n_trials=self.n_trials,
                n_jobs=self.n_jobs,
                launch=self.launch,
                check=self.check,
                record=record,
                sweep_dir=sweep_dir,
                reseed=self._reseed if self.sampler.get("seed") is not None else None,
            )
        finally:
            worker.leave()

    def _open_parent(self, base, name: str, worker, sweep_dir: Path):
        """The study's one parent run: this worker's if it created the study, else found."""
        from aesweep.errors import TrackingError
        from aesweep.parent import SweepParent

        # A study with no trial yet was created a moment ago: wait for its creator's parent.
        just_created = not worker.created and not worker.study.get_trials(deepcopy=False)
        try:
            parent = SweepParent(
                base,
                sweep_dir=sweep_dir,
                root=Path(self.config.hydra.runtime.cwd),
                study=name,
                join=not worker.created,
                wait_for_study_parent=60.0 if just_created else 0.0,
            )
        except TrackingError as err:
            log.error("%s: %s", type(err).__name__, err)
            sys.exit(1)  # no server, or a refused login: no job could record anything
        worker.on_stopped = lambda trial, why: parent.end_trial_runs(trial.number, why)
        return parent

    def _reseed(self, n_trials: int):
        """The sampler for the next draw of a seeded search: its seed + the trials so far,
        so a command draws the same trials again, and workers that join draw others."""
        from hydra.utils import instantiate

        return instantiate(self.sampler, seed=self.sampler["seed"] + n_trials)

    def check(self, overrides: list[str]) -> None:
        """Compose one trial's config as its job will, and validate it (aesweep's schema)."""
        from aesweep.config import check_job

        loader = self.hydra_context.config_loader
        check_job(loader.load_sweep_config(self.config, list(overrides)))

    def launch(self, batch: list[list[str]], initial_job_idx: int) -> list:
        """Run a batch of jobs through Hydra's launcher; each one's value or failure."""
        from aesweep.search import JobOutcome

        outcomes = []
        for job in self.launcher.launch(batch, initial_job_idx=initial_job_idx):
            value, failure = _value(job)
            # aesweep's jobs say which metric they returned (training acc without held-out)
            metric = getattr(job.return_value, "metric", "") if value is not None else ""
            outcomes.append(JobOutcome(value, failure, metric))
        return outcomes

    def _storage(self) -> str | None:
        """The storage URL, a relative SQLite or journal path made absolute from where
        Hydra started."""
        cwd = Path(self.config.hydra.runtime.cwd)
        prefix = "sqlite:///"
        if self.storage and self.storage.startswith(prefix):
            path = Path(self.storage.removeprefix(prefix))
            if not path.is_absolute():
                return prefix + str(cwd / path)
        if self.storage and "://" not in self.storage:  # a journal file
            return str(cwd / self.storage)
        return self.storage

    def _share_cores(self, fixed: Sequence[str]) -> list[str]:
        """Under the joblib launcher, ``train.threads`` = cores / n_jobs unless it is set."""
        launcher = str(self.config.hydra.launcher.get("_target_", ""))
        if self.n_jobs < 2 or "joblib" not in launcher.lower():
            return list(fixed)
        if any(o.lstrip("+").startswith("train.threads=") for o in fixed):
            return list(fixed)
        threads = max(1, (os.cpu_count() or 1) // self.n_jobs)
        log.info("%d trials at a time: train.threads=%d each", self.n_jobs, threads)
        return [*fixed, f"train.threads={threads}"]


def _value(job: JobReturn) -> tuple[float | None, str]:
    """A job's objective, or None and why (an error in the job, or no number)."""
    if job.status != JobStatus.COMPLETED:
        try:
            job.return_value  # noqa: B018 - raises the job's error
        except Exception as err:  # the job's own error, whatever it is
            return None, f"{type(err).__name__}: {err}"
    value = job.return_value
    failure = getattr(value, "failure", "")  # aesweep's jobs say why they returned NaN
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"the job returned {value!r}, not a number"
    return (None, failure) if failure else (number, "")
