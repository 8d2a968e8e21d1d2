"""The parent MLflow run of one sweep: opened before its jobs, reviewed after them.

At the end it computes the pixel reference of each distinct set of digits the jobs saw,
and writes the summary table and the comparison figures from what the children recorded
in MLflow (:mod:`aesweep.review`, which serves ``src/report.py`` just as well).
"""

from __future__ import annotations

import atexit
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Run, RunStatus

from aesweep import figures
from aesweep.config import ExperimentConfig
from aesweep.experiment import pixel_reference
from aesweep.review import (
    ROLE_TAG,
    SELECTION_TAG,
    load_sweep,
    reference_metrics,
    selection_id,
    sweep_figures,
)
from aesweep.summary import to_csv, to_markdown
from aesweep.sweep import PARENT_FILE
from aesweep.tracking import Tracker, code_tags, ui_link

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
        self.client = MlflowClient(tracker.tracking_uri)
        sweep_dir = sweep_dir.resolve()
        run = self.client.create_run(
            tracker.experiment_id,
            run_name=f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}",
            tags={
                ROLE_TAG: "sweep",
                "aesweep.command": shlex.join(["python", *sys.argv]),
                "aesweep.sweep_dir": str(sweep_dir),
                **code_tags(),
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
        if self.client.get_run(self.run_id).info.status == "RUNNING":
            self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.KILLED))

    def log_references(self, children: list[Run]) -> dict[str, dict[str, float]]:
        """KMeans on the pixels of each distinct set of digits the jobs saw, on the parent.

        Jobs over several seeds or data sizes saw different digits, so each such set gets
        its own reference (selection id -> scores).
        """
        selections = {run.data.tags.get(SELECTION_TAG, "") for run in children} - {""}
        references = {
            selection_id(selection): pixel_reference(self.base, json.loads(selection))
            for selection in sorted(selections)
        }
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, value, now, 0)
            for selection, scores in references.items()
            for key, value in reference_metrics(selection, scores).items()
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)
        return references

    def review(self, sweep_dir: Path) -> int:
        """Table, files, figures and final status of the sweep; returns its failed jobs."""
        sweep = load_sweep(self.client, self.run_id)
        sweep.references = self.log_references(sweep.children)
        columns, rows = sweep.table()
        markdown, csv_text = to_markdown(columns, rows), to_csv(columns, rows)
        for name, text in [("summary.md", markdown), ("summary.csv", csv_text)]:
            (sweep_dir / name).write_text(text)
            self.client.log_artifact(self.run_id, str(sweep_dir / name))
        for name, figure in sweep_figures(self.client, sweep).items():
            self.client.log_figure(self.run_id, figure, f"figures/{name}.png")
            figures.plt.close(figure)
        failed = sum(job.status != "FINISHED" for job in sweep.jobs)
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))
        experiment_id = sweep.parent.info.experiment_id
        uri = self.client.tracking_uri
        print(f"\nSweep summary ({sweep_dir}/summary.md):\n\n{markdown}")
        print(f"Sweep parent run: {ui_link(uri, experiment_id, self.run_id)}")
        print(f"All runs:         {ui_link(uri, experiment_id)}")
        if failed:
            log.error("%d of %d jobs failed; see the status column above", failed, len(sweep.jobs))
        return failed
