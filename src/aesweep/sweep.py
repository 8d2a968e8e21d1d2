"""Hydra's side of a sweep: every job checked before the first, and a parent MLflow run.

:class:`MlflowSweepCallback` is a Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``).
Hydra loads it for every command, so this module imports neither MLflow nor TensorFlow:
a typo fails in a second, not after the seconds those take to load. The parent run's
work is :class:`aesweep.parent.SweepParent`'s.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from aesweep.config import check_job, to_experiment_config
from aesweep.errors import InputError, TrackingError, one_line
from aesweep.names import PARENT_FILE, SEARCH_SWEEPER

if TYPE_CHECKING:
    from aesweep.parent import SweepParent

log = logging.getLogger(__name__)


def parent_run_id() -> str | None:
    """The sweep's parent run id for the current Hydra job, or None outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return json.loads(path.read_text())["run_id"] if path.is_file() else None


class MlflowSweepCallback(Callback):
    """Checks a multirun's jobs, opens its parent run, and reviews the sweep when it ends."""

    def __init__(self) -> None:
        self.parent: SweepParent | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            validate_jobs(config)
            base = to_experiment_config(config)
        except (InputError, FileNotFoundError, ConfigCompositionException) as err:
            log.error("%s", str(err).splitlines()[0])
            sys.exit(1)  # before any job: a bad value in a sweep list stops the whole sweep
        if base.tracking.enabled and not is_search(config):  # a search's sweeper opens it
            from aesweep.parent import SweepParent  # MLflow, and TensorFlow for the references

            sweep_dir = Path(config.hydra.sweep.dir)
            root = Path(hydra_original_cwd())
            try:
                self.parent = SweepParent(base, sweep_dir=sweep_dir, root=root)
            except (InputError, TrackingError) as err:
                log.error("%s: %s", type(err).__name__, err)
                sys.exit(1)  # no server, or a refused login: no job could record anything

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if self.parent is None and is_search(config):
            from aesweep.parent import SweepParent
            from aesweep.search_record import SearchRecord

            search = SearchRecord.read(sweep_dir)
            if search is not None and not search.closes_parent:
                log.info("The study's last trial ran on another worker: that one reviews it")
                return
            self.parent = SweepParent.opened(sweep_dir)  # None without tracking
        if self.parent is None:
            return
        try:
            failed = self.parent.review(sweep_dir)
        except Exception as err:
            # Hydra turns a callback's exception into a warning that scrolls by, and the
            # command exits 0: a review that could not be made fails the command instead.
            log.debug("the sweep's review failed", exc_info=err)  # the traceback, if asked
            line = f"the sweep's review failed: {one_line(err)}"
            self.parent.fail(line)
            log.error("%s", line)
            sys.exit(1)
        if failed:
            sys.exit(1)  # a job failed: the table says which and why


def validate_jobs(config: DictConfig) -> None:
    """Compose and check every job of a multirun before the first one starts.

    A grid's jobs are all known; a search's are drawn as it goes, so its sweeper checks
    each value of its space instead (:func:`aesweep.search.validate_space`), once.

    Raises
    ------
    InputError or ConfigCompositionException
        For the first job whose config is invalid.
    """
    import hydra
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:  # Hydra's own job expansion; private, so a future Hydra may move it
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    except ImportError as err:
        raise RuntimeError(
            f"hydra-core {hydra.__version__} has no hydra._internal.core_plugins.basic_sweeper."
            "BasicSweeper, which aesweep uses to check a sweep's jobs before they start: "
            "install the hydra-core version in uv.lock"
        ) from err

    # Where the jobs' config groups are found (a user's conf/arch/my_net.yaml elsewhere, say)
    searchpath = [o for o in config.hydra.overrides.hydra if o.startswith("hydra.searchpath")]

    def check(overrides: list[str]) -> None:
        check_job(compose(config.hydra.job.config_name, overrides=[*overrides, *searchpath]))

    sweeper = str(config.hydra.sweeper.get("_target_", ""))
    if not sweeper.endswith("BasicSweeper"):
        # A search draws its jobs as it goes: its sweeper checks each value of its space
        # before the first trial (search.validate_space), and other sweepers (Nevergrad,
        # ...) are theirs to check.
        return
    # As BasicSweeper expands them: hydra.sweeper.params (an experiment preset's), then the
    # command line's overrides, a later one replacing an earlier one of the same key.
    params = config.hydra.sweeper.get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()]
    overrides = OverridesParser.create().parse_overrides([*lines, *config.hydra.overrides.task])
    for batch in BasicSweeper.split_arguments(overrides, None):
        for job_overrides in batch:
            check(job_overrides)


def is_search(config: DictConfig) -> bool:
    """Whether the multirun is a search (``hparams_search=optuna``), not a grid."""
    return str(config.hydra.sweeper.get("_target_", "")).endswith(SEARCH_SWEEPER)


def hydra_original_cwd() -> str:
    """Where the user started the sweep (Hydra does not change it, but a user may ask it to)."""
    from hydra.utils import get_original_cwd

    try:
        return get_original_cwd()
    except ValueError:
        return str(Path.cwd())
