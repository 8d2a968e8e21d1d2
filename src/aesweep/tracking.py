"""MLflow at the edge: where runs go, and logging params, metrics, figures and models.

The science modules never import mlflow; :mod:`aesweep.experiment` hands them a
:class:`Tracker`, or a :class:`NullTracker` that records nothing when tracking is off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import requests
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException

from aesweep import server
from aesweep.errors import TrackingRefused, TrackingUnavailable
from aesweep.names import (
    EPOCHS_REACHED_TAG,
    FAILURE_TAG,
    HOST_TAG,
    MODEL_FROM_TAG,
    MODEL_URI_TAG,
    PID_TAG,
    RESUMED_FROM_TAG,
)

log = logging.getLogger(__name__)

CURVES = ("train/loss", "val/loss")  # the per-epoch metrics
FLUSH_SECONDS = 5.0  # how long per-epoch metrics may wait before they are written
# Marks the experiment as model training, so MLflow 3's UI shows its runs, not GenAI traces.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
UI_RUNS_VIEW = "workflowType=machine_learning"  # MLflow 3 otherwise opens its GenAI view


def resolve_tracking_uri(uri: str | None, root: Path) -> str:
    """The tracking URI in force: ``uri``, ``$MLFLOW_TRACKING_URI``, or MLflow's default store.

    MLflow's default (``sqlite:///mlflow.db``, artifacts in ``./mlruns``) is relative to the
    working directory; making it absolute keeps every Hydra job in the one store that
    ``mlflow ui`` finds when started in ``root``.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        if "://" not in uri and not uri.startswith("sqlite:"):
            return Path(uri).expanduser().resolve().as_uri()  # a plain folder: a file store
        return uri
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def ensure_experiment(name: str, *, root: Path) -> str:
    """Return the id of experiment ``name``, creating it if needed (safe for racing jobs)."""
    # MLflow places a new experiment's artifacts under ./mlruns of the working directory
    # in which its store was first used: use it here, in root, for the lookup too.
    with contextlib.chdir(root):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
    try:
        with contextlib.chdir(root):
            return mlflow.create_experiment(
                name, tags={EXPERIMENT_KIND_TAG: "custom_model_development"}
            )
    except MlflowException:
        # Another job created it between our lookup and our create.
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def process_tags() -> dict[str, str]:
    """The host and process that run a run: how a resume tells a killed job's RUNNING run
    from one that still runs (:func:`process_gone`)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_gone(tags: Mapping[str, str]) -> bool:
    """True if the run's process (its :func:`process_tags`) ran on this host and is gone."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False  # another machine's, or a run from before these tags: cannot tell
    pid = int(tags[PID_TAG])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user's
    return False


def end_run(client: MlflowClient, run_id: str, status: int, why: str) -> None:
    """End run ``run_id`` with ``status`` (``RunStatus.KILLED``, ...), saying ``why``."""
    client.set_tag(run_id, FAILURE_TAG, why[:5000])
    client.set_terminated(run_id, RunStatus.to_string(status))


def _end_killed(client: MlflowClient, run: mlflow.entities.Run, how: str) -> None:
    """End ``run`` KILLED, saying that its process is gone and ``how`` it was ended."""
    tags = run.data.tags
    why = f"its process ({tags.get(HOST_TAG, '?')} pid {tags.get(PID_TAG, '?')}) is gone; {how}"
    end_run(client, run.info.run_id, RunStatus.KILLED, why)
    log.warning("run %s was left RUNNING: %s", run.info.run_id, why)


def _ended(client: MlflowClient, run_id: str) -> bool:
    """True if run ``run_id`` is no longer RUNNING (or was deleted)."""
    try:
        return client.get_run(run_id).info.status != "RUNNING"
    except MlflowException:
        return True


def code_tags() -> dict[str, str]:
    """MLflow's source tags: the entry script, and the git commit of aesweep's checkout.

    MLflow finds the commit only with GitPython installed; the ``git`` command, where there
    is one, does the same without a dependency.
    """
    script = Path(sys.argv[0])
    tags = {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": str(script.resolve()) if script.is_file() else "aesweep",
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return tags  # no git here
    if commit.returncode == 0:
        tags["mlflow.source.git.commit"] = commit.stdout.strip()
    return tags


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping to ``{"a.b.c": value}``, the form MLflow params take."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def ui_link(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """The page of ``mlflow ui`` (or of a tracking server) that shows the runs table or a run."""
    base = tracking_uri if tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    base = base.rstrip("/")
    if run_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}/#/experiments/{experiment_id}/runs?{UI_RUNS_VIEW}"


class NullTracker:
    """What runs get when tracking is off: every record is dropped."""

    enabled = False
    tracking_uri: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None

    @contextlib.contextmanager
    def run(self, **kwargs) -> Iterator[NullTracker]:
        yield self

    def __getattr__(self, name: str):
        # Tracker's log_params, log_metrics, log_figure, ...: accepted, nothing recorded.
        # Any other name (a typo) still fails, as it would with tracking on.
        if name.startswith("_") or not callable(getattr(Tracker, name, None)):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return _ignore


def _ignore(*args, **kwargs) -> None:
    for value in args:
        if isinstance(value, Figure):
            plt.close(value)  # a figure drawn for nobody still holds memory


def _lost_insert_race(err: MlflowException) -> bool:
    """True for a unique-key violation: SQLite's wording, then PostgreSQL's and MySQL's."""
    message = str(err)
    return any(
        words in message
        for words in ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")
    )


class Tracker:
    """One MLflow run in an experiment of a tracking store."""

    enabled = True

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment_id: str,
        experiment: str = "",
        output_dir: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.experiment = experiment or experiment_id  # its name, for messages
        self.output_dir = output_dir  # where metrics the server never got are left
        self.run_id: str | None = None
        self._pending: list[Metric] = []  # metrics not yet written (kept on an error)
        self._last_flush = time.monotonic()
        self._flush_failing = False

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
        """Point MLflow at the store and experiment; a :class:`NullTracker` when disabled.

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
        mlflow.set_tracking_uri(tracking_uri)
        with server.translate_errors(tracking_uri, f"the lookup of experiment {experiment!r}"):
            experiment_id = ensure_experiment(experiment, root=root)
        return cls(
            tracking_uri=tracking_uri,
            experiment_id=experiment_id,
            experiment=experiment,
            output_dir=output_dir or root,
        )

    @contextlib.contextmanager
    def run(
        self, *, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
    ) -> Iterator[Tracker]:
        """Start a run; it ends FINISHED, FAILED on an error, KILLED on an interrupt.

        A server that stops answering mid-run (through MLflow's retries) ends the job with
        :class:`~aesweep.errors.TrackingUnavailable`, one that refuses its records (a
        permission taken away) with :class:`~aesweep.errors.TrackingRefused`; the metrics
        it did not take are left in ``output_dir``.
        """
        doing = f"a new run in experiment {self.experiment!r}"
        with server.translate_errors(self.tracking_uri, doing):
            active = mlflow.start_run(
                experiment_id=self.experiment_id,
                run_name=run_name,
                tags={**tags, **process_tags()},
                parent_run_id=parent_run_id,
                nested=parent_run_id is not None,
            )
        self.run_id = active.info.run_id
        try:
            yield self
        except (KeyboardInterrupt, SystemExit):
            self._end(RunStatus.KILLED)
            raise
        except BaseException as err:
            gone = isinstance(err, MlflowException) and server.unreachable(err)
            refused = server.refusal(err)  # mid-run: a permission taken away, say
            reason = f"{type(err).__name__}: {err}"[:5000]
            self._end(RunStatus.FAILED, reason, lost=gone or refused is not None)
            # The server took the run's end (it answered again in time, or let us end it):
            # the job still failed on the tracking server, in one line.
            if refused is not None:
                raise TrackingRefused(self._refused(refused, err)) from err
            if gone:
                raise TrackingUnavailable(
                    f"tracking server {self.tracking_uri} stopped answering "
                    f"({server.reason(err)}) through {server.retry_budget()}"
                ) from err
            raise
        else:
            self._end(RunStatus.FINISHED)

    def _end(self, status: int, failure_reason: str | None = None, *, lost: bool = False) -> None:
        """End the run with ``status``. If its server does not answer or refuses, leave what
        it did not get (metrics, status, reason) in ``output_dir`` and raise
        TrackingUnavailable or TrackingRefused. ``lost``: the server already failed us."""
        try:
            # A server that already failed us gets one more try each, not a minute.
            with server.no_retries() if lost else contextlib.nullcontext():
                if failure_reason:
                    self.set_tags({FAILURE_TAG: failure_reason})
                self.flush()
                mlflow.flush_async_logging()
                mlflow.end_run(status=RunStatus.to_string(status))
        except (MlflowException, requests.HTTPError) as err:
            refused = server.refusal(err)
            if refused is None and not server.unreachable(err):
                raise
            with server.no_retries(), contextlib.suppress(MlflowException):
                # forget the run here, or MLflow's exit handler waits on the server again
                mlflow.end_run(status=RunStatus.to_string(status))
            path = server.save_unsent(
                self.output_dir or Path.cwd(),
                tracking_uri=self.tracking_uri,
                run_id=self.run_id,
                metrics=self._pending,
                status=RunStatus.to_string(status),
                failure_reason=failure_reason,
            )
            left = (
                f"run {self.run_id} is left RUNNING there and {len(self._pending)} metric "
                f"values unsent in {path}: send them once it "
                + ("lets you" if refused else "is back")
                + f" with `{server.SEND_COMMAND} {path}`"
            )
            if refused is not None:
                raise TrackingRefused(f"{self._refused(refused, err)}; {left}") from err
            raise TrackingUnavailable(
                f"tracking server {self.tracking_uri} stopped answering ({server.reason(err)}) "
                f"through {server.retry_budget()}; {left}"
            ) from err

    def _refused(self, status: int, err: BaseException) -> str:
        """One line: the server refused this run's records (``status`` 401 or 403)."""
        return server.refusal_message(
            self.tracking_uri, f"writes to run {self.run_id}", status, str(err)
        )

    def find_finished(self, tag: str, value: str) -> mlflow.entities.Run | None:
        """The latest FINISHED run of this experiment whose ``tag`` equals ``value``."""
        runs = self._search(f"tags.`{tag}` = '{value}' and attributes.status = 'FINISHED'", 1)
        return runs[0] if runs else None

    def _search(self, filter_string: str, max_results: int) -> list[mlflow.entities.Run]:
        return mlflow.search_runs(
            [self.experiment_id],
            filter_string=filter_string,
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
            output_format="list",
        )

    def end_stale_runs(self, tag: str, value: str) -> list[str]:
        """End KILLED the RUNNING runs whose ``tag`` equals ``value`` and whose process is
        gone: it ran on this host and no longer exists (:func:`process_gone`), or it was a
        sweep's job and that sweep has ended. Returns their run ids.

        A job killed with SIGKILL (the OOM killer, ``kill -9``) cannot end its run; the
        next ``resume=true`` of its sweep does, and runs the job again.
        """
        client = MlflowClient(self.tracking_uri)
        ended = []
        for run in self._search(f"tags.`{tag}` = '{value}' and attributes.status = 'RUNNING'", 100):
            tags = run.data.tags
            parent_id = tags.get("mlflow.parentRunId")
            parent_ended = parent_id is not None and _ended(client, parent_id)
            if not (parent_ended or process_gone(tags)):
                continue  # it may still be running, on another machine say
            _end_killed(client, run, "ended KILLED by a resume")
            ended.append(run.info.run_id)
            if parent_id is not None and not parent_ended:
                # The whole sweep was killed (kill -9 of its command): its parent too.
                parent = client.get_run(parent_id)
                if process_gone(parent.data.tags):
                    _end_killed(client, parent, "ended KILLED by a resume of one of its jobs")
                    ended.append(parent_id)
        return ended

    def copy_finished(
        self,
        source: mlflow.entities.Run,
        *,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None,
    ) -> None:
        """Record a run that reuses ``source``'s results (resume), so a sweep lists every job.

        The copy names the run that did the work, also when ``source`` is itself a copy:
        its curves, latents and maps are there.
        """
        original = source.data.tags.get(RESUMED_FROM_TAG, source.info.run_id)
        tags = {**tags, RESUMED_FROM_TAG: original}
        if EPOCHS_REACHED_TAG in source.data.tags:
            tags[EPOCHS_REACHED_TAG] = source.data.tags[EPOCHS_REACHED_TAG]
        with self.run(run_name=run_name, tags=tags, parent_run_id=parent_run_id):
            self.log_params(source.data.params)
            self.log_metrics(source.data.metrics)

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
            self.run(run_name=run_name, tags=tags, parent_run_id=parent_run_id),
        ):
            self.log_params(params)
            raise err

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Log ``dictionary`` as a JSON artifact."""
        mlflow.log_text(json.dumps(dictionary, indent=1, sort_keys=True), artifact_file)

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params({k: "None" if v is None else v for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Write ``metrics`` now, with the pending per-epoch ones (kept if the write fails)."""
        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.flush()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_figure(self, figure: Figure, name: str) -> None:
        """Log ``figure`` as ``figures/<name>.png`` and close it."""
        try:
            mlflow.log_figure(figure, f"figures/{name}.png")
        finally:
            plt.close(figure)

    def log_dir(self, path: Path, artifact_path: str) -> None:
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path)

    def log_arrays(self, artifact_file: str, **arrays: np.ndarray) -> None:
        """Log ``arrays`` as one ``.npz`` artifact at ``artifact_file``."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            np.savez_compressed(path, **arrays)
            mlflow.log_artifact(str(path), str(Path(artifact_file).parent))

    def log_epoch(self, epoch: int, losses: Mapping[str, float]) -> None:
        """Log one epoch's ``{"loss": ..., "val_loss": ...}`` as ``train/loss``, ``val/loss``.

        Epochs are written in batches (every :data:`FLUSH_SECONDS`, and when the run ends,
        also on Ctrl-C): one database write per epoch cost several percent of a short epoch.
        A batch the server does not take stays pending and goes with the next one, so a
        server that is away for a while stalls no training and loses no epoch.
        """
        names = {"loss": "train/loss", "val_loss": "val/loss"}
        now = int(time.time() * 1000)
        self._pending += [
            Metric(names[k], float(v), now, epoch) for k, v in losses.items() if k in names
        ]
        if time.monotonic() - self._last_flush <= FLUSH_SECONDS:
            return
        self._last_flush = time.monotonic()
        try:
            with server.no_retries():  # the next batch is the retry
                self.flush()
        except MlflowException as err:
            if not self._flush_failing:
                log.warning(
                    "tracking server %s: %s; keeping the epochs' metrics to send later",
                    self.tracking_uri,
                    server.reason(err) if server.unreachable(err) else str(err).splitlines()[0],
                )
            self._flush_failing = True
        else:
            if self._flush_failing:
                log.info("tracking server %s answers again: metrics sent", self.tracking_uri)
            self._flush_failing = False

    def flush(self) -> None:
        """Write the pending metrics; on an error they stay pending, nothing is dropped."""
        if self._pending and self.run_id is not None:
            MlflowClient(self.tracking_uri).log_batch(self.run_id, metrics=self._pending)
        self._pending = []
        self._last_flush = time.monotonic()

    def log_digits(
        self, x: np.ndarray, labels: np.ndarray, *, name: str, source: str, context: str
    ) -> None:
        """Record one split's digits as an MLflow dataset input (with a digest of its data)."""
        with warnings.catch_warnings():
            # MLflow registers its local-file source twice (for "" and "file:"), so any local
            # path "can be interpreted in multiple ways" - as the same class, either way.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(x, targets=labels, name=name, source=source)
        try:
            mlflow.log_input(dataset, context=context)
        except MlflowException as err:
            # The jobs of a parallel sweep log the same digits at the same moment. MLflow's
            # database store looks the dataset up, then inserts it, so of two jobs that
            # both found none, one breaks the unique (experiment, name, digest) key. Once
            # the other's row is in, logging again only links it to this run.
            if not _lost_insert_race(err):
                raise
            mlflow.log_input(dataset, context=context)

    def load_keras_model(self, source: mlflow.entities.Run):
        """The autoencoder ``source`` logged (its :data:`MODEL_URI_TAG`), and a tag here
        naming the run it came from."""
        model = mlflow.keras.load_model(source.data.tags[MODEL_URI_TAG])
        self.set_tags({MODEL_FROM_TAG: source.info.run_id})
        return model

    def copy_curves(self, source: mlflow.entities.Run) -> dict[str, list[float]]:
        """Copy ``source``'s per-epoch losses into this run; return them by name."""
        client = MlflowClient(self.tracking_uri)
        history = {key: client.get_metric_history(source.info.run_id, key) for key in CURVES}
        client.log_batch(self.run_id, metrics=[m for ms in history.values() for m in ms])
        by_step = {key: sorted(ms, key=lambda m: m.step) for key, ms in history.items()}
        return {key: [m.value for m in ms] for key, ms in by_step.items()}

    def log_keras_model(self, model, example: np.ndarray, *, name: str = "model") -> str:
        """Log ``model`` as an MLflow Keras model named ``name`` that ``mlflow.keras.load_model``
        reads back; return its URI."""
        import keras
        import tensorflow as tf
        from mlflow.models import infer_signature

        # Naming the requirements skips MLflow's inference, which reloads the model in a
        # subprocess and costs more than a short training run.
        requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"]
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        signature = infer_signature(example, np.asarray(model(example, training=False)))
        info = mlflow.keras.log_model(
            model, name=name, pip_requirements=requirements, signature=signature
        )
        return info.model_uri
