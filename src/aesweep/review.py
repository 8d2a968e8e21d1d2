"""A sweep as MLflow holds it: its parent, its jobs, their pixel references and figures.

The read side of a sweep, shared by the end of a multirun (:mod:`aesweep.sweep`) and by
``src/report.py``, which rebuilds the same table from MLflow alone; nothing here needs
Hydra.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shlex
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import OmegaConf

from aesweep import figures
from aesweep.names import (
    EPOCHS_REACHED_TAG,
    FAILURE_FILE,
    FAILURE_TAG,
    JOB_DIR_TAG,
    MAP_ARTIFACT,
    OVERRIDES_TAG,
    PANEL_ARTIFACT,
    REFERENCES_ARTIFACT,
    RESUMED_FROM_TAG,
    ROLE_TAG,
    SELECTION_TAG,
    SWEEP_DIR_TAG,
    TRIAL_TAG,
)
from aesweep.summary import (
    REPLICATE_KEY,
    SCORE_KEYS,
    JobRecord,
    Spread,
    job_title,
    summary_rows,
    swept_keys,
)
from aesweep.tracking import flatten

if TYPE_CHECKING:
    from aesweep.search_record import SearchRecord


def _references(client: MlflowClient, parent: Run) -> dict[str, dict[str, float]]:
    """The parent's pixel references (its :data:`REFERENCES_ARTIFACT`): selection id ->
    scores; none before its review logged them."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(parent.info.run_id, REFERENCES_ARTIFACT, folder)
        except (mlflow.exceptions.MlflowException, OSError):
            return {}  # a sweep still running, or one whose review failed before them
        saved = json.loads(Path(path).read_text())
    return {selection: entry["scores"] for selection, entry in saved.items()}


@dataclass
class Sweep:
    """A sweep as MLflow holds it."""

    parent: Run
    children: list[Run]
    references: dict[str, dict[str, float]]  # data selection id -> pixel reference scores
    #: jobs of the sweep's folder that never reached MLflow (their run could not start)
    unrecorded: list[JobRecord] = field(default_factory=list)

    @cached_property
    def jobs(self) -> list[JobRecord]:
        """Every job: those with a run, then those known only from their folder."""
        return [job_record(run) for run in self.children] + self.unrecorded

    def table(self) -> tuple[list[str], list[dict[str, object]]]:
        return summary_rows(self.jobs, self.references)


def job_record(run: Run) -> JobRecord:
    """The summary's view of one child run."""
    tags = run.data.tags
    metrics = dict(run.data.metrics)
    if EPOCHS_REACHED_TAG in tags:
        metrics.setdefault("epochs_reached", float(tags[EPOCHS_REACHED_TAG]))
    overrides = tags.get(OVERRIDES_TAG, "")
    return JobRecord(
        run_name=run.info.run_name,
        status=run.info.status,
        params=run.data.params,
        metrics=metrics,
        overrides=[] if overrides == "(none)" else shlex.split(overrides),
        failure=tags.get(FAILURE_TAG, ""),
        run_id=run.info.run_id,
        selection=selection_id(tags.get(SELECTION_TAG, "")),
        trial=int(tags[TRIAL_TAG]) if TRIAL_TAG in tags else None,
    )


def selection_id(selection_json: str) -> str:
    """A short stable name for one data selection (its JSON, hashed)."""
    return hashlib.sha256(selection_json.encode()).hexdigest()[:8] if selection_json else ""


def load_sweep(client: MlflowClient, parent_run_id: str, *, references: bool = True) -> Sweep:
    """Read a sweep's parent, children and pixel references back from MLflow, and the jobs
    that never reached it from the sweep's folder (where that folder still exists).
    ``references=False``: not the references (the review computes them anew)."""
    parent = client.get_run(parent_run_id)
    children = child_runs(client, parent)
    sweep_dir = parent.data.tags.get(SWEEP_DIR_TAG)
    unrecorded = []
    if sweep_dir:
        recorded = {run.data.tags.get(JOB_DIR_TAG) for run in children}
        unrecorded = unrecorded_jobs(Path(sweep_dir), recorded, since=parent.info.start_time)
    found = _references(client, parent) if references else {}
    return Sweep(parent, children, found, unrecorded)


def child_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """The jobs' runs of the sweep whose parent run is ``parent``, in start order."""
    return list(
        client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            max_results=10_000,
            order_by=["attributes.start_time ASC"],
        )
    )


def unrecorded_jobs(sweep_dir: Path, recorded: set[str], *, since: int) -> list[JobRecord]:
    """The jobs of ``sweep_dir`` started at or after ``since`` (ms) whose folder no run of
    ``recorded`` (their :data:`JOB_DIR_TAG`) names: FAILED rows, with the line their job
    left in :data:`FAILURE_FILE`, or a note that it left none (killed before its run)."""
    jobs = []
    # Any depth: hydra.sweep.subdir may nest the job folders (override_dirname, say).
    found = sweep_dir.glob("**/.hydra/overrides.yaml")
    for overrides_file in sorted(found, key=_job_number):
        job_dir = overrides_file.parent.parent
        if overrides_file.stat().st_mtime < since / 1000 - 1 or str(job_dir.resolve()) in recorded:
            continue  # a job of an earlier sweep in the same folder, or one with its run
        failure_file = job_dir / FAILURE_FILE
        failure = (
            failure_file.read_text().strip()
            if failure_file.is_file()
            else f"no MLflow run, no error recorded (killed before its run?): see {job_dir}"
        )
        overrides = OmegaConf.load(overrides_file)
        params: dict[str, object] = {}
        with contextlib.suppress(Exception):  # a config that cannot resolve: its overrides say it
            config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
            params = flatten(OmegaConf.to_container(config, resolve=True))
        jobs.append(
            JobRecord(
                run_name=f"job {job_dir.name}",
                status="FAILED",
                params={k: str(v) for k, v in params.items()},
                overrides=[str(o) for o in overrides],
                failure=failure,
            )
        )
    return jobs


def _job_number(overrides_file: Path) -> tuple[int, str]:
    name = overrides_file.parent.parent.name
    return (int(name), name) if name.isdigit() else (1 << 30, name)


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
    """The comparison figures of a sweep, by artifact name."""
    keys = swept_keys(sweep.jobs)
    histories, latents, maps = {}, {}, {}
    originals = labels = None
    for job, run in zip(sweep.jobs, sweep.children, strict=True):
        title = job_title(job, keys)
        # A resumed job reused an earlier run's results: its curves and panel live there.
        source = run.data.tags.get(RESUMED_FROM_TAG, job.run_id)
        loss = [m.value for m in client.get_metric_history(source, "train/loss")]
        if loss:
            val = [m.value for m in client.get_metric_history(source, "val/loss")]
            histories[title] = (loss, val)
        panel = _download_arrays(client, source, PANEL_ARTIFACT)
        if panel is not None:
            originals, labels = panel["pixels"], panel["labels"]
            latents[title] = panel["latents"]
        latent_map = _download_arrays(client, source, MAP_ARTIFACT)
        if latent_map is not None:
            maps[title] = (latent_map["coords"], latent_map["labels_true"])
    scores, references = _scores_by_config(sweep, keys)
    out = {
        "sweep_loss_curves": figures.sweep_loss_curves(histories),
        "sweep_cluster_scores": figures.sweep_metric_bars(scores, references),
    }
    if originals is not None:
        out["sweep_latent_panel"] = figures.sweep_latent_panel(originals, latents, labels=labels)
    if maps:
        out["sweep_latent_maps"] = figures.sweep_latent_maps(maps)
    return out


def searched_name(key: str) -> str:
    """A searched key as an MLflow name: ``+a.b`` -> ``a.b``."""
    return key.lstrip("+~")


def search_figures(search: SearchRecord) -> dict[str, object]:
    """A search's two figures, by artifact name: the best so far, and each key's effect."""
    trials = search.trials
    numbers = np.array([t.number for t in trials])
    values = np.array([np.nan if t.value is None else t.value for t in trials])
    maximize = search.direction == "maximize"
    keys = {searched_name(key): key for key in search.space}
    space = {name: search.space[key] for name, key in keys.items()}
    return {
        "search_history": figures.search_history(
            numbers, values, objective=search.objective, maximize=maximize
        ),
        "search_params": figures.search_params(
            {name: [t.params.get(key) for t in trials] for name, key in keys.items()},
            values,
            numbers,
            objective=search.objective,
            log_scale={name: d["log"] for name, d in space.items()},
            categorical={name: d["kind"] == "categorical" for name, d in space.items()},
            maximize=maximize,
        ),
    }


def _scores_by_config(sweep: Sweep, keys: list[str]) -> tuple[dict, dict]:
    """Each job's scores and pixel reference by title; over seeds, their means and spread."""
    config_keys = [key for key in keys if key != REPLICATE_KEY]
    jobs: dict[str, list[JobRecord]] = {}
    for job in sweep.jobs:
        jobs.setdefault(job_title(job, config_keys), []).append(job)
    scores, references = {}, {}
    for title, alike in jobs.items():
        refs = [sweep.references.get(job.selection, {}) for job in alike]
        scores[title] = _mean(
            {key: [job.metrics.get(key, math.nan) for job in alike] for key in SCORE_KEYS}
        )
        references[title] = _mean(
            {key: [ref.get(key, math.nan) for ref in refs] for key in SCORE_KEYS}
        )
    return scores, references


def _mean(values: dict[str, list[float]]) -> dict[str, float]:
    """Each key's value, or the :class:`Spread` of its values over seed replicates."""
    return {k: v[0] if len(v) == 1 else Spread(v) for k, v in values.items()}


def _download_arrays(
    client: MlflowClient, run_id: str, artifact: str
) -> dict[str, np.ndarray] | None:
    """The arrays of an ``.npz`` artifact, or None where the run logged none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, artifact, tmp)
        except (mlflow.exceptions.MlflowException, OSError):
            return None  # a job from before that artifact existed, or a baseline without it
        with np.load(path) as npz:
            return {key: npz[key] for key in npz.files}
