"""A run's life in a tracking store: started, then ended FINISHED, FAILED or KILLED, with a
server's outage or refusal turned into one line and nothing lost."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking.context.registry import resolve_tags

from aesweep import server
from aesweep.errors import TrackingRefused, TrackingUnavailable
from aesweep.names import FAILURE_TAG
from aesweep.tracking import lookups
from aesweep.tracking.buffer import FLUSH_SECONDS
from aesweep.tracking.runlog import NullRunLog, RunLog
from aesweep.tracking.store import ensure_experiment, open_client, resolve_tracking_uri


class Tracker:
    """Runs in one experiment of one tracking store, through one ``MlflowClient``."""

    enabled = True

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment_id: str,
        experiment: str = "",
        output_dir: Path | None = None,
        client: MlflowClient | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = client or MlflowClient(tracking_uri)
        self.experiment_id = experiment_id
        self.experiment = experiment or experiment_id  # its name, for messages
        self.output_dir = output_dir  # where metrics the server never got are left
        self.run_id: str | None = None  # of the latest run started

    @classmethod
    def connect(
        cls,
        *,
        enabled: bool,
        uri: str | None,
        experiment: str,
        root: Path,
        output_dir: Path | None = None,
    ) -> Tracker | NullTracker:
        """The tracker of the store and experiment; a :class:`NullTracker` when disabled.

        A tracking server is asked first whether it answers, so that a job pointed at
        none fails in seconds (:class:`~aesweep.errors.TrackingUnavailable`); a refused
        login raises :class:`~aesweep.errors.TrackingRefused`. Both come before any work.
        ``output_dir`` (the job's folder, else ``root``) receives the metrics of a run whose
        server went away for good.
        """
        if not enabled:
            return NullTracker()
        tracking_uri = resolve_tracking_uri(uri, root)
        server.prepare(tracking_uri)
        # MLflow resolves a local store's ./mlruns, where a new experiment's artifacts go,
        # in the working directory of the client's making: that is root.
        with contextlib.chdir(root):
            client = open_client(tracking_uri)
            with server.translate_errors(tracking_uri, f"the lookup of experiment {experiment!r}"):
                experiment_id = ensure_experiment(client, experiment)
        return cls(
            tracking_uri=tracking_uri,
            experiment_id=experiment_id,
            experiment=experiment,
            output_dir=output_dir or root,
            client=client,
        )

    @contextlib.contextmanager
    def run(
        self,
        *,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None = None,
        system_metrics_every: float | None = None,
        metrics_every: float = FLUSH_SECONDS,
    ) -> Iterator[RunLog]:
        """Start a run and yield its :class:`RunLog`; the run ends FINISHED, FAILED on an
        error, KILLED on an interrupt.

        A server that stops answering mid-run (through MLflow's retries) ends the job with
        :class:`~aesweep.errors.TrackingUnavailable`, one that refuses its records (a
        permission taken away) with :class:`~aesweep.errors.TrackingRefused`; the metrics
        it did not take are left in ``output_dir``. ``system_metrics_every``: seconds
        between two samples of MLflow's system metrics while the run lasts (None: none);
        ``metrics_every``: seconds between two writes of the per-epoch metrics.
        """
        tags = {**tags, **lookups.process_tags()}
        if parent_run_id is not None:
            tags["mlflow.parentRunId"] = parent_run_id  # what a nested run's parent is
        with server.translate_errors(
            self.tracking_uri, f"a new run in experiment {self.experiment!r}"
        ):
            # resolve_tags: the user and source tags that mlflow.start_run would add
            run = self.client.create_run(
                self.experiment_id, run_name=run_name, tags=resolve_tags(tags)
            )
        self.run_id = run.info.run_id
        log = RunLog(
            self.client,
            self.run_id,
            self.tracking_uri,
            self.experiment_id,
            metrics_every=metrics_every,
        )
        log.sampler = _system_monitor(self.run_id, self.tracking_uri, system_metrics_every)
        try:
            yield log
        except (KeyboardInterrupt, SystemExit):
            self._end(log, RunStatus.KILLED)
            raise
        except BaseException as err:
            gone = isinstance(err, MlflowException) and server.unreachable(err)
            refused = server.refusal(err)  # mid-run: a permission taken away, say
            reason = f"{type(err).__name__}: {err}"[:5000]
            self._end(log, RunStatus.FAILED, reason, lost=gone or refused is not None)
            # The server took the run's end (it answered again in time, or let us end it):
            # the job still failed on the tracking server, in one line.
            if refused is not None:
                raise TrackingRefused(_refused(self, refused, err)) from err
            if gone:
                raise TrackingUnavailable(_stopped_answering(self.tracking_uri, err)) from err
            raise
        else:
            self._end(log, RunStatus.FINISHED)

    def _end(self, log: RunLog, status: int, why: str | None = None, *, lost: bool = False):
        """End the run with ``status``. If its server does not answer or refuses, leave what
        it did not get (metrics, status, reason) in ``output_dir`` and raise
        TrackingUnavailable or TrackingRefused. ``lost``: the server already failed us."""
        try:
            # A server that already failed us gets one more try each, not a minute.
            if log.sampler is not None:
                log.sampler.finish()  # its last samples, before the run ends
            with server.no_retries() if lost else contextlib.nullcontext():
                if why:
                    log.set_tags({FAILURE_TAG: why})
                log.metrics.flush()
                self.client.set_terminated(log.run_id, RunStatus.to_string(status))
        except (MlflowException, requests.HTTPError) as err:
            refused = server.refusal(err)
            if refused is None and not server.unreachable(err):
                raise
            raise _left_unsent(self, log, status, why, err, refused) from err

    def find_finished(self, tag: str, value: str) -> Run | None:
        """The latest FINISHED run of this experiment whose ``tag`` equals ``value``."""
        return lookups.find_finished(self.client, self.experiment_id, tag, value)

    def end_stale_runs(self, tag: str, value: str) -> list[str]:
        """End KILLED this experiment's RUNNING runs of ``tag`` = ``value`` whose process is
        gone (:func:`aesweep.tracking.lookups.end_stale_runs`); their run ids."""
        return lookups.end_stale_runs(self.client, self.experiment_id, tag, value)

    def record_failure(
        self,
        err: BaseException,
        *,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None,
        params: Mapping[str, Any],
    ) -> None:
        """A FAILED run for a job that failed before its run could start (bad data, say),
        so that its sweep's table has its row and reason. The error is not raised here."""
        with (
            contextlib.suppress(type(err)),
            self.run(run_name=run_name, tags=tags, parent_run_id=parent_run_id) as log,
        ):
            log.log_params(params)
            raise err


def _left_unsent(
    tracker: Tracker,
    log: RunLog,
    status: int,
    why: str | None,
    err: BaseException,
    refused: int | None,
) -> TrackingRefused | TrackingUnavailable:
    """Leave what the server did not take in the tracker's ``output_dir``
    (:func:`server.save_unsent`); the one-line error that says so, and how to send it."""
    pending = log.metrics.pending
    status_name = RunStatus.to_string(status)
    path = server.save_unsent(
        tracker.output_dir or Path.cwd(),
        tracking_uri=tracker.tracking_uri,
        run_id=log.run_id,
        metrics=pending,
        status=status_name,
        failure_reason=why,
    )
    left = (
        f"run {log.run_id} is left RUNNING there and {len(pending)} metric values unsent "
        f"in {path}: send them once it {'lets you' if refused else 'is back'} with "
        f"`{server.SEND_COMMAND} {path}`"
    )
    if refused is not None:
        return TrackingRefused(f"{_refused(tracker, refused, err)}; {left}")
    return TrackingUnavailable(f"{_stopped_answering(tracker.tracking_uri, err)}; {left}")


def _stopped_answering(tracking_uri: str, err: BaseException) -> str:
    return (
        f"tracking server {tracking_uri} stopped answering ({server.reason(err)}) "
        f"through {server.retry_budget()}"
    )


def _refused(tracker: Tracker, status: int, err: BaseException) -> str:
    """One line: the server refused the run's records (``status`` 401 or 403)."""
    return server.refusal_message(
        tracker.tracking_uri, f"writes to run {tracker.run_id}", status, str(err)
    )


def _system_monitor(run_id: str, tracking_uri: str, every: float | None):
    """MLflow's system-metrics sampler for ``run_id`` (``system/cpu_utilization_percentage``,
    memory, disk, network, GPU where one is), started; None when ``every`` is None."""
    if every is None:
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=every, tracking_uri=tracking_uri)
    monitor.start()
    return monitor


class NullTracker:
    """What a job gets when tracking is off: runs that record nothing."""

    enabled = False
    tracking_uri: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None

    @contextlib.contextmanager
    def run(self, **kwargs) -> Iterator[NullRunLog]:
        yield NullRunLog()

    def find_finished(self, tag: str, value: str) -> None:
        return None

    def end_stale_runs(self, tag: str, value: str) -> list[str]:
        return []

    def record_failure(self, err: BaseException, **kwargs) -> None:
        return None  # no store, no row: the job's own error says it
