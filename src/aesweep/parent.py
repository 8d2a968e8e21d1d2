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
from collections.abc import Callable
from pathlib import Path

import pandas
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from aesweep import figures, server
from aesweep.config import ExperimentConfig
from aesweep.names import (
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
    Sweep,
    child_runs,
    load_sweep,
    search_figures,
    searched_name,
    selection_id,
    sweep_figures,
)
from aesweep.search_record import SearchRecord, describe_storage
from aesweep.summary import RUN_ID, to_csv, to_markdown, to_table
from aesweep.tracking import Tracker, chart_link, code_tags, end_run, process_tags, ui_link

log = logging.getLogger(__name__)


class SweepParent:
    """One sweep's parent run; ``run_id`` is what its jobs nest under."""

    _opened: dict[Path, SweepParent] = {}  # noqa: RUF012 - this process's, by sweep folder

    @classmethod
    def opened(cls, sweep_dir: Path) -> SweepParent | None:
        """The parent this process opened for ``sweep_dir`` (a search's sweeper opens it;
        the sweep's callback reviews it), or None."""
        return cls._opened.get(Path(sweep_dir).resolve())

    def __init__(
        self,
        base: ExperimentConfig,
        *,
        sweep_dir: Path,
        root: Path,
        study: str | None = None,
        join: bool = False,
        wait_for_study_parent: float = 0.0,
    ) -> None:
        """Open the parent run and leave its id in ``sweep_dir`` for the jobs to find.

        ``base`` is the sweep's config before its overrides (where to record, how to
        cluster the references); ``root`` is where the default store lives. A search's
        ``study`` has one parent run whichever worker and command run its trials: the
        worker that created the study creates it, the others (``join``, and later
        commands) find it by its :data:`SEARCH_TAG` and reopen it, waiting up to
        ``wait_for_study_parent`` seconds for the worker that is creating it.
        """
        self.base = base
        tracker = Tracker.connect(
            enabled=True,
            uri=base.tracking.uri,
            experiment=base.tracking.experiment,
            root=root,
        )
        self.client = tracker.client
        self.experiment_id = tracker.experiment_id
        #: whether other workers still need the parent when this process exits
        self.needed_elsewhere: Callable[[], bool] = lambda: False
        sweep_dir = sweep_dir.resolve()
        doing = f"the sweep's parent run in experiment {base.tracking.experiment!r}"
        with server.translate_errors(tracker.tracking_uri, doing):
            found = None
            if study is not None and join:
                found = study_parent(
                    self.client, tracker.experiment_id, study, wait=wait_for_study_parent
                )
            if found is not None:
                self.run_id = found.info.run_id
                if found.info.status != "RUNNING":  # a later command: the study goes on
                    self.client.update_run(self.run_id, status="RUNNING")
            else:
                self.run_id = self._create(tracker.experiment_id, sweep_dir, study)
        # Ctrl-C, SIGTERM or a crash skip the review: the parent must not stay RUNNING.
        atexit.register(self._end_if_running)
        self._opened[sweep_dir] = self
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_FILE).write_text(
            json.dumps({"run_id": self.run_id, "tracking_uri": tracker.tracking_uri})
        )
        link = ui_link(tracker.tracking_uri, tracker.experiment_id, self.run_id)
        log.info("Sweep parent run: %s", link)

    def _create(self, experiment_id: str, sweep_dir: Path, study: str | None) -> str:
        run = self.client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}",
            tags={
                ROLE_TAG: "sweep",
                "aesweep.command": shlex.join(["python", *sys.argv]),
                SWEEP_DIR_TAG: str(sweep_dir),
                **({SEARCH_TAG: study} if study else {}),
                **code_tags(),
                **process_tags(),
            },
        )
        return run.info.run_id

    def _end_if_running(self) -> None:
        # At exit, a server that is gone gets one try, not a minute of retries.
        with server.no_retries(), contextlib.suppress(MlflowException):
            parent = self.client.get_run(self.run_id)
            if parent.info.status == "RUNNING" and not self.needed_elsewhere():
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

    def end_trial_runs(self, trial: int, why: str) -> None:
        """End KILLED, with ``why``, the RUNNING runs of search trial ``trial`` (its worker
        stopped: the study runs the trial again)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.mlflow.parentRunId = '{self.run_id}' and "
                f"tags.`{TRIAL_TAG}` = '{trial}' and attributes.status = 'RUNNING'"
            ),
        )
        self.end_orphans(runs, f"trial {trial}: {why}")

    def fail(self, reason: str) -> None:
        """End the parent FAILED with ``reason`` (its review could not be made)."""
        with server.no_retries(), contextlib.suppress(MlflowException):
            end_run(self.client, self.run_id, RunStatus.FAILED, reason)

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
        if changed:  # read the runs again, with their new status and tags
            sweep = dataclasses.replace(sweep, children=child_runs(self.client, sweep.parent))
        sweep.references = log_references(
            self.client, self.run_id, sweep.children, n_clusters=self.base.cluster.n_clusters
        )
        markdown = log_summary(self.client, self.run_id, sweep_dir, sweep)
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


def log_references(
    client: MlflowClient, run_id: str, children: list[Run], *, n_clusters: int
) -> dict[str, dict[str, float]]:
    """KMeans on the pixels of each distinct set of digits the jobs saw, on the parent run
    ``run_id``.

    Jobs over several seeds or data sizes saw different digits, so each such set gets
    its own reference (selection id -> scores).
    """
    # Only the digits of jobs that finished: a failed job's may be unreadable (a bad file).
    finished = [run for run in children if run.info.status == "FINISHED"]
    selections = {run.data.tags.get(SELECTION_TAG, "") for run in finished} - {""}
    readable = {}
    for selection in sorted(selections):
        chosen = json.loads(selection)
        scores = pixel_reference(chosen, n_clusters=n_clusters)
        readable[selection_id(selection)] = {"selection": chosen, "scores": scores}
    # An artifact, not metrics: metrics named by a selection's hash filled the parent's
    # charts with sections no one could read; the table's reference rows show them.
    if readable:
        client.log_dict(run_id, readable, REFERENCES_ARTIFACT)
    return {selection: entry["scores"] for selection, entry in readable.items()}


def log_summary(client: MlflowClient, run_id: str, sweep_dir: Path, sweep: Sweep) -> str:
    """The sweep's table (``summary.md``, ``summary.csv`` in ``sweep_dir`` and on the parent
    run ``run_id``, and as an MLflow table) and its comparison figures; the table's Markdown."""
    columns, rows = sweep.table()
    markdown, csv_text = to_markdown(columns, rows), to_csv(columns, rows)
    for name, text in [("summary.md", markdown), ("summary.csv", csv_text)]:
        (sweep_dir / name).write_text(text)
        client.log_artifact(run_id, str(sweep_dir / name))
    log_summary_table(client, run_id, columns, rows, sweep.parent.info.experiment_id)
    for name, figure in sweep_figures(client, sweep).items():
        client.log_figure(run_id, figure, f"figures/{name}.png")
        figures.plt.close(figure)
    return markdown


def log_summary_table(
    client: MlflowClient, run_id: str, columns: list[str], rows: list[dict], experiment_id: str
) -> None:
    """The summary as an MLflow table (the run's Artifacts tab shows it, and
    ``mlflow.load_table(SUMMARY_TABLE, run_ids=[parent])`` reads it back), each job's row
    with the link to its run."""
    table = to_table(columns, rows)
    uri = client.tracking_uri
    table["run"] = [ui_link(uri, experiment_id, r) if r else None for r in table[RUN_ID]]
    if any(a.path == SUMMARY_TABLE for a in client.list_artifacts(run_id)):
        # A study's parent reviewed again: log_table would append the rows to the old
        # table, so the file is replaced, in log_table's own format.
        frame = pandas.DataFrame(table)
        text = frame.to_json(orient="split", index=False, date_format="iso")
        client.log_text(run_id, text, SUMMARY_TABLE)
    else:
        client.log_table(run_id, data=table, artifact_file=SUMMARY_TABLE)


def study_parent(
    client: MlflowClient, experiment_id: str, study: str, *, wait: float
) -> Run | None:
    """The parent run of search ``study`` (the oldest, should two workers have raced to
    create it), waiting up to ``wait`` seconds for one to appear."""
    deadline = time.monotonic() + wait
    while True:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{SEARCH_TAG}` = '{study}' and tags.`{ROLE_TAG}` = 'sweep'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        if found or time.monotonic() >= deadline:
            return found[0] if found else None
        time.sleep(0.5)


def log_search(client: MlflowClient, run_id: str, search: SearchRecord) -> None:
    """The study, its space and best trial on the parent run ``run_id``, as params and
    metrics, and two figures."""
    sampler = search.sampler
    # Params are what the study is (fixed: its name hashes them). What a later command or
    # worker changes is a metric (the budget, the best's value) or a tag (the best's values).
    params = {
        "search.study": search.study_name,
        "search.storage": describe_storage(search.storage),
        "search.direction": search.direction,
        "search.sampler": str(sampler.get("_target_", "")).rsplit(".", 1)[-1],
        "search.seed": sampler.get("seed"),
        **{f"search.space.{searched_name(key)}": d["spec"] for key, d in search.space.items()},
    }
    now = int(time.time() * 1000)
    metrics = {"search/trials": len(search.trials), "search/n_trials": search.n_trials}
    tags = {SEARCH_TAG: search.study_name}
    best = search.best()
    if best is not None:
        tags |= {f"best.{searched_name(key)}": value for key, value in best.params.items()}
        metrics |= {f"best/{search.objective.replace('/', '_')}": best.value}
        metrics |= {"best/trial": best.number}
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)) for key, value in params.items()],
        tags=[RunTag(key, str(value)) for key, value in tags.items()],
    )
    for name, figure in search_figures(search).items():
        client.log_figure(run_id, figure, f"figures/{name}.png")
        figures.plt.close(figure)
