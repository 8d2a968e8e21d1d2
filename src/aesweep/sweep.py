"""A sweep in MLflow: a parent run per multirun, its jobs as children, and its review.

:class:`MlflowSweepCallback` is a Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``):
at the start of a multirun it opens the parent run and records the pixel reference; at the
end it builds the summary table and the comparison figures from what the children recorded
in MLflow, so :func:`load_sweep` serves ``src/report.py`` just as well.
"""

from __future__ import annotations

import atexit
import json
import logging
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import mlflow
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow import MlflowClient
from mlflow.entities import Metric, Run, RunStatus
from omegaconf import DictConfig

from aesweep import figures
from aesweep.config import to_experiment_config
from aesweep.errors import InputError
from aesweep.summary import JobRecord, job_title, summary_rows, swept_keys, to_csv, to_markdown
from aesweep.tracking import PANEL_ARTIFACT, RESUMED_FROM_TAG, Tracker, ui_link

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.json"  # in the sweep folder: how jobs find their parent
ROLE_TAG = "aesweep.role"  # "sweep" on parent runs, so the latest sweep can be found
REFERENCE_PREFIX = "reference/"  # the parent's metrics of KMeans on raw pixels


def parent_run_id() -> str | None:
    """The sweep's parent run id for the current Hydra job, or None outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return json.loads(path.read_text())["run_id"] if path.is_file() else None


@dataclass
class Sweep:
    """A finished sweep as MLflow holds it."""

    parent: Run
    children: list[Run]
    reference: dict[str, float]

    @cached_property
    def jobs(self) -> list[JobRecord]:
        return [job_record(run) for run in self.children]

    def table(self) -> tuple[list[str], list[dict[str, object]]]:
        return summary_rows(self.jobs, self.reference)


def job_record(run: Run) -> JobRecord:
    """The summary's view of one child run."""
    tags = run.data.tags
    metrics = dict(run.data.metrics)
    if "epochs_reached" in tags:
        metrics.setdefault("epochs_reached", float(tags["epochs_reached"]))
    overrides = tags.get("overrides", "")
    return JobRecord(
        run_name=run.info.run_name,
        status=run.info.status,
        params=run.data.params,
        metrics=metrics,
        overrides=[] if overrides == "(none)" else shlex.split(overrides),
        failure=tags.get("failure_reason", ""),
        run_id=run.info.run_id,
    )


def load_sweep(client: MlflowClient, parent_run_id: str) -> Sweep:
    """Read a sweep's parent, children and reference scores back from MLflow."""
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=10_000,
        order_by=["attributes.start_time ASC"],
    )
    reference = {
        key.removeprefix(REFERENCE_PREFIX): value
        for key, value in parent.data.metrics.items()
        if key.startswith(REFERENCE_PREFIX)
    }
    return Sweep(parent, list(children), reference)


def find_parent(client: MlflowClient, experiment_id: str, sweep: str | None = None) -> Run | None:
    """A sweep's parent run by id or name, or the latest sweep of the experiment."""
    if sweep:
        try:
            return client.get_run(sweep)
        except mlflow.exceptions.MlflowException:
            pass
        escaped = sweep.replace("'", "\\'")
        filter_string = f"tags.{ROLE_TAG} = 'sweep' and attributes.run_name = '{escaped}'"
    else:
        filter_string = f"tags.{ROLE_TAG} = 'sweep'"
    runs = client.search_runs(
        [experiment_id], filter_string, max_results=1, order_by=["attributes.start_time DESC"]
    )
    return runs[0] if runs else None


def sweep_figures(client: MlflowClient, sweep: Sweep) -> dict[str, object]:
    """The three comparison figures of a sweep, by artifact name."""
    keys = swept_keys(sweep.jobs)
    titles = {job.run_id: job_title(job, keys) for job in sweep.jobs}
    histories, scores, latents = {}, {}, {}
    originals = labels = None
    for job, run in zip(sweep.jobs, sweep.children, strict=True):
        title = titles[job.run_id]
        # A resumed job reused an earlier run's results: its curves and panel live there.
        source = run.data.tags.get(RESUMED_FROM_TAG, job.run_id)
        loss = [m.value for m in client.get_metric_history(source, "train/loss")]
        if loss:
            val = [m.value for m in client.get_metric_history(source, "val/loss")]
            histories[title] = (loss, val)
        scores[title] = dict(job.metrics)
        panel = _download_panel(client, source)
        if panel is not None:
            originals, labels = panel["pixels"], panel["labels"]
            latents[title] = panel["latents"]
    out = {
        "sweep_loss_curves": figures.sweep_loss_curves(histories),
        "sweep_cluster_scores": figures.sweep_metric_bars(scores, sweep.reference),
    }
    if originals is not None:
        out["sweep_latent_panel"] = figures.sweep_latent_panel(originals, latents, labels=labels)
    return out


def _download_panel(client: MlflowClient, run_id: str) -> dict[str, np.ndarray] | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, PANEL_ARTIFACT, tmp)
        except (mlflow.exceptions.MlflowException, OSError):
            return None
        with np.load(path) as npz:
            return {key: npz[key] for key in npz.files}


class MlflowSweepCallback(Callback):
    """Opens a parent run for each multirun and reviews the sweep when it ends."""

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from aesweep.experiment import pixel_reference  # heavy imports only when sweeping

        try:
            validate_jobs(config)
        except (InputError, ConfigCompositionException) as err:
            log.error("%s", str(err).splitlines()[0])
            sys.exit(1)  # before any job: a bad value in a sweep list stops the whole sweep
        if not config.tracking.enabled:
            return
        tracker = Tracker.connect(
            enabled=True,
            uri=config.tracking.uri,
            experiment=config.tracking.experiment,
            root=Path(hydra_original_cwd()),
        )
        uri, experiment_id = tracker.tracking_uri, tracker.experiment_id
        self.client = MlflowClient(uri)
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        command = shlex.join(["python", *sys.argv])
        run = self.client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}",
            tags={
                ROLE_TAG: "sweep",
                "aesweep.command": command,
                "aesweep.sweep_dir": str(sweep_dir),
            },
        )
        self.parent_run_id = run.info.run_id
        # Ctrl-C, SIGTERM or a crash skip on_multirun_end: the parent must not stay RUNNING.
        atexit.register(self._end_parent_if_running)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(
            json.dumps({"run_id": self.parent_run_id, "tracking_uri": uri})
        )
        now = int(time.time() * 1000)
        reference = [
            Metric(f"{REFERENCE_PREFIX}{key}", value, now, 0)
            for key, value in pixel_reference(config).items()
        ]
        self.client.log_batch(self.parent_run_id, metrics=reference)
        log.info("Sweep parent run: %s", ui_link(uri, experiment_id, self.parent_run_id))

    def _end_parent_if_running(self) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        if self.client.get_run(self.parent_run_id).info.status == "RUNNING":
            self.client.set_terminated(self.parent_run_id, RunStatus.to_string(RunStatus.KILLED))

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        sweep = load_sweep(self.client, self.parent_run_id)
        columns, rows = sweep.table()
        sweep_dir = Path(config.hydra.sweep.dir)
        markdown, csv_text = to_markdown(columns, rows), to_csv(columns, rows)
        for name, text in [("summary.md", markdown), ("summary.csv", csv_text)]:
            (sweep_dir / name).write_text(text)
            self.client.log_artifact(self.parent_run_id, str(sweep_dir / name))
        for name, figure in sweep_figures(self.client, sweep).items():
            self.client.log_figure(self.parent_run_id, figure, f"figures/{name}.png")
            figures.plt.close(figure)
        failed = [job for job in sweep.jobs if job.status != "FINISHED"]
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(self.parent_run_id, RunStatus.to_string(status))
        experiment_id = sweep.parent.info.experiment_id
        uri = self.client.tracking_uri
        print(f"\nSweep summary ({sweep_dir}/summary.md):\n\n{markdown}")
        print(f"Sweep parent run: {ui_link(uri, experiment_id, self.parent_run_id)}")
        print(f"All runs:         {ui_link(uri, experiment_id)}")
        if failed:
            log.error(
                "%d of %d jobs failed; see the status column above", len(failed), len(sweep.jobs)
            )
            sys.exit(1)


def validate_jobs(config: DictConfig) -> None:
    """Compose and check every job of a basic-sweeper multirun before the first one starts.

    Raises
    ------
    InputError or ConfigCompositionException
        For the first job whose config is invalid.
    """
    from hydra import compose
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return  # other sweepers (Optuna, ...) draw their jobs as they go
    overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    for batch in BasicSweeper.split_arguments(overrides, None):
        for job_overrides in batch:
            to_experiment_config(compose(config.hydra.job.config_name, overrides=job_overrides))


def hydra_original_cwd() -> str:
    """Where the user started the sweep (Hydra does not change it, but a user may ask it to)."""
    from hydra.utils import get_original_cwd

    try:
        return get_original_cwd()
    except ValueError:
        return str(Path.cwd())
