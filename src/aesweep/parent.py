"""The parent MLflow run of one sweep: opened before its jobs, reviewed after them.

At the end it computes the pixel reference of each distinct set of digits the jobs saw,
and writes the summary table and the comparison figures from what the children recorded
in MLflow (:mod:`aesweep.review`, which serves ``src/report.py`` just as well).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from aesweep import figures, server
from aesweep.config import ExperimentConfig
from aesweep.names import (
    OVERRIDES_TAG,
    PARENT_FILE,
    REFERENCES_ARTIFACT,
    ROLE_TAG,
    SEARCH_TAG,
    SELECTION_TAG,
    SUMMARY_TABLE,
    SWEEP_DIR_TAG,
    TRIAL_TAG,
)
from aesweep.reference import pixel_reference
from aesweep.review import (
    child_runs,
    load_sweep,
    search_figures,
    searched_name,
    selection_id,
    sweep_figures,
)
from aesweep.search_record import SearchRecord
from aesweep.summary import RUN_ID, to_csv, to_markdown, to_table
from aesweep.tracking import Tracker, chart_link, code_tags, end_run, process_tags, ui_link

log = logging.getLogger(__name__)


class SweepParent:
    """One sweep's parent run; ``run_id`` is what its jobs nest under."""

    def __init__(self, base: ExperimentConfig, *, sweep_dir: Path, root: Path) -> None:
        """Open the parent run and leave its id in ``sweep_dir`` for the jobs to find.

        ``base`` is the sweep's config before its overrides (where to record, how to
        cluster the references); ``root`` is where the default store lives.
        """
        self.base = base
        tracker = Tracker.connect(
            enabled=True,
            uri=base.tracking.uri,
            experiment=base.tracking.experiment,
            root=root,
        )
        self.client = tracker.client
        sweep_dir = sweep_dir.resolve()
        doing = f"the sweep's parent run in experiment {base.tracking.experiment!r}"
        with server.translate_errors(tracker.tracking_uri, doing):
            run = self.client.create_run(
                tracker.experiment_id,
                run_name=f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}",
                tags={
                    ROLE_TAG: "sweep",
                    "aesweep.command": shlex.join(["python", *sys.argv]),
                    SWEEP_DIR_TAG: str(sweep_dir),
                    **code_tags(),
                    **process_tags(),
                },
            )
        self.run_id = run.info.run_id
        # Ctrl-C, SIGTERM or a crash skip the review: the parent must not stay RUNNING.
        atexit.register(self._end_if_running)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(
            json.dumps({"run_id": self.run_id, "tracking_uri": tracker.tracking_uri})
        )
        link = ui_link(tracker.tracking_uri, tracker.experiment_id, self.run_id)
        log.info("Sweep parent run: %s", link)

    def _end_if_running(self) -> None:
        # At exit, a server that is gone gets one try, not a minute of retries.
        with server.no_retries(), contextlib.suppress(MlflowException):
            parent = self.client.get_run(self.run_id)
            if parent.info.status == "RUNNING":
                why = "the sweep ended (interrupted or killed) while this job ran"
                self.end_orphans(child_runs(self.client, parent), why)
                self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.KILLED))

    def end_orphans(self, children: list[Run], why: str) -> int:
        """End KILLED, with ``why``, the ``children`` still RUNNING once the sweep has ended:
        their process was killed (SIGKILL, a lost worker) before it could end them."""
        orphans = [run for run in children if run.info.status == "RUNNING"]
        for run in orphans:
            end_run(self.client, run.info.run_id, RunStatus.KILLED, why)
        return len(orphans)

    def fail(self, reason: str) -> None:
        """End the parent FAILED with ``reason`` (its review could not be made)."""
        with server.no_retries(), contextlib.suppress(MlflowException):
            end_run(self.client, self.run_id, RunStatus.FAILED, reason)

    def log_references(self, children: list[Run]) -> dict[str, dict[str, float]]:
        """KMeans on the pixels of each distinct set of digits the jobs saw, on the parent.

        Jobs over several seeds or data sizes saw different digits, so each such set gets
        its own reference (selection id -> scores).
        """
        # Only the digits of jobs that finished: a failed job's may be unreadable (a bad file).
        finished = [run for run in children if run.info.status == "FINISHED"]
        selections = {run.data.tags.get(SELECTION_TAG, "") for run in finished} - {""}
        n_clusters = self.base.cluster.n_clusters
        readable = {}
        for selection in sorted(selections):
            chosen = json.loads(selection)
            scores = pixel_reference(chosen, n_clusters=n_clusters)
            readable[selection_id(selection)] = {"selection": chosen, "scores": scores}
        # An artifact, not metrics: metrics named by a selection's hash filled the parent's
        # charts with sections no one could read; the table's reference rows show them.
        if readable:
            self.client.log_dict(self.run_id, readable, REFERENCES_ARTIFACT)
        return {selection: entry["scores"] for selection, entry in readable.items()}

    def _log_table(self, columns: list[str], rows: list[dict], experiment_id: str) -> None:
        """The summary as an MLflow table (the run's Artifacts tab shows it, and
        ``mlflow.load_table(SUMMARY_TABLE, run_ids=[parent])`` reads it back), each job's row
        with the link to its run."""
        table = to_table(columns, rows)
        uri = self.client.tracking_uri
        table["run"] = [ui_link(uri, experiment_id, r) if r else None for r in table[RUN_ID]]
        self.client.log_table(self.run_id, data=table, artifact_file=SUMMARY_TABLE)

    def review(self, sweep_dir: Path) -> int:
        """Table, files, figures and final status of the sweep; returns its failed jobs.

        Raises :class:`~aesweep.errors.TrackingError` if the server does not answer.
        """
        with server.translate_errors(self.client.tracking_uri, "the sweep's review"):
            return self._review(sweep_dir)

    def _review(self, sweep_dir: Path) -> int:
        sweep = load_sweep(self.client, self.run_id, references=False)  # made below
        # Every job has returned: a run still RUNNING lost its process.
        why = "its job ended without ending its run (the process was killed?)"
        changed = self.end_orphans(sweep.children, why)
        search = SearchRecord.read(sweep_dir)  # None for a grid
        if search is not None:
            changed += tag_trials(self.client, search, sweep.children)
        if changed:  # read the runs again, with their new status and tags
            sweep = dataclasses.replace(sweep, children=child_runs(self.client, sweep.parent))
        sweep.references = self.log_references(sweep.children)
        columns, rows = sweep.table()
        markdown, csv_text = to_markdown(columns, rows), to_csv(columns, rows)
        for name, text in [("summary.md", markdown), ("summary.csv", csv_text)]:
            (sweep_dir / name).write_text(text)
            self.client.log_artifact(self.run_id, str(sweep_dir / name))
        self._log_table(columns, rows, sweep.parent.info.experiment_id)
        for name, figure in sweep_figures(self.client, sweep).items():
            self.client.log_figure(self.run_id, figure, f"figures/{name}.png")
            figures.plt.close(figure)
        failed = sum(job.status != "FINISHED" for job in sweep.jobs)
        if search is not None:
            log_search(self.client, self.run_id, search)
            if failed and search.best() is not None:
                # A search explores: a diverging draw is a result, not a broken sweep.
                log.warning(
                    "%d of %d trials failed; see the status column", failed, len(sweep.jobs)
                )
                failed = 0
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))
        experiment_id = sweep.parent.info.experiment_id
        uri = self.client.tracking_uri
        print(f"\nSweep summary ({sweep_dir}/summary.md):\n\n{markdown}")
        print(f"Sweep parent run: {ui_link(uri, experiment_id, self.run_id)}")
        print(f"All runs:         {ui_link(uri, experiment_id)}")
        print(f"Its jobs' charts: {chart_link(uri, experiment_id, self.run_id)}")
        if failed:
            log.error("%d of %d jobs failed; see the status column above", failed, len(sweep.jobs))
        return failed


def tag_trials(client: MlflowClient, search: SearchRecord, children: list[Run]) -> int:
    """Tag each job of a search with its trial number, matched by its overrides;
    returns how many were tagged."""
    unclaimed: dict[str, list[int]] = {}
    for trial in search.trials:
        if trial.overrides is not None:
            unclaimed.setdefault(shlex.join(trial.overrides), []).append(trial.number)
    tagged = 0
    for run in children:  # in start order: duplicate draws take their numbers in turn
        numbers = unclaimed.get(run.data.tags.get(OVERRIDES_TAG, ""))
        if numbers:
            client.set_tag(run.info.run_id, TRIAL_TAG, str(numbers.pop(0)))
            tagged += 1
    return tagged


def log_search(client: MlflowClient, run_id: str, search: SearchRecord) -> None:
    """The study, its space and best trial on the parent run ``run_id``, as params and
    metrics, and two figures."""
    sampler = search.sampler
    params = {
        "search.study": search.study_name,
        "search.storage": search.storage or "memory",
        "search.direction": search.direction,
        "search.n_trials": search.n_trials,
        "search.sampler": str(sampler.get("_target_", "")).rsplit(".", 1)[-1],
        "search.seed": sampler.get("seed"),
        **{f"search.space.{searched_name(key)}": d["spec"] for key, d in search.space.items()},
    }
    now = int(time.time() * 1000)
    metrics = {"search/trials": len(search.trials)}
    best = search.best()
    if best is not None:
        params |= {f"best.{searched_name(key)}": value for key, value in best.params.items()}
        metrics |= {f"best/{search.objective.replace('/', '_')}": best.value}
        metrics |= {"best/trial": best.number}
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)) for key, value in params.items()],
        tags=[RunTag(SEARCH_TAG, search.study_name)],
    )
    for name, figure in search_figures(search).items():
        client.log_figure(run_id, figure, f"figures/{name}.png")
        figures.plt.close(figure)
