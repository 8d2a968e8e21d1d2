"""What one run records, every call naming the run: params, tags, metrics, figures,
arrays, digits, and the Keras models that later runs reuse."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
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
from mlflow.entities import DatasetInput, InputTag, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from aesweep import server
from aesweep.names import MODEL_FROM_TAG, MODEL_URI_TAG
from aesweep.tracking.buffer import EPOCH_METRICS, FLUSH_SECONDS, MetricBuffer

log = logging.getLogger(__name__)

CURVES = tuple(EPOCH_METRICS.values())  # the per-epoch metrics: train/loss, val/loss
FIGURE_DPI = 100  # matplotlib's default: a latent grid is about 1,000 x 1,400 pixels


class RunLog:
    """The records of run ``run_id``, written through ``client``."""

    enabled = True

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        tracking_uri: str,
        experiment_id: str,
        *,
        metrics_every: float = FLUSH_SECONDS,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.tracking_uri = tracking_uri
        self.metrics = MetricBuffer(client, run_id, tracking_uri, flush_seconds=metrics_every)
        self.sampler = None  # MLflow's system-metrics monitor, while the run lasts

    def log_params(self, params: Mapping[str, Any]) -> None:
        values = [Param(k, "None" if v is None else str(v)) for k, v in params.items()]
        self.client.log_batch(self.run_id, params=values)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Write ``metrics`` now, with the pending per-epoch ones (:class:`MetricBuffer`)."""
        self.metrics.log(metrics, step=step)

    def log_epoch(self, epoch: int, losses: Mapping[str, float]) -> None:
        """One epoch's losses, written in batches (:meth:`MetricBuffer.log_epoch`)."""
        self.metrics.log_epoch(epoch, losses)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Log ``dictionary`` as a JSON artifact."""
        text = json.dumps(dictionary, indent=1, sort_keys=True)
        self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Figure, name: str, *, step: int = 0) -> None:
        """Log ``figure`` as MLflow image ``name`` at ``step``, and close it.

        An image logged with a key (``mlflow.log_image(key=...)``) is what MLflow's Chart
        view compares: its image grid shows one key of every selected run side by side,
        with a slider over the steps. The runs' Artifacts tab lists it under ``images/``.
        """
        try:
            # The canvas's pixels are those of savefig's PNG, without encoding a PNG only to
            # decode it for log_image, which encodes its own: half the time of a picture.
            figure.set_dpi(FIGURE_DPI)
            figure.canvas.draw()
            image = np.asarray(figure.canvas.buffer_rgba())[..., :3]
            self.client.log_image(self.run_id, image, key=name, step=step)
        finally:
            plt.close(figure)

    def log_figure_meanwhile(self, figure: Figure, name: str, *, step: int) -> bool:
        """:meth:`log_figure` while training runs: one try, no retries, so that a server
        that is away stalls no training (as :meth:`MetricBuffer.log_epoch`). A picture the
        server does not take is dropped with a warning: it shows a moment of training, and
        the run's records do not depend on it. Returns whether it was logged."""
        try:
            with server.no_retries():
                self.log_figure(figure, name, step=step)
        except (MlflowException, requests.RequestException) as err:
            log.warning("image %s at step %d not recorded: %s", name, step, server.reason(err))
            return False
        return True

    def log_dir(self, path: Path, artifact_path: str) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def log_arrays(self, artifact_file: str, **arrays: np.ndarray) -> None:
        """Log ``arrays`` as one ``.npz`` artifact at ``artifact_file``."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            np.savez_compressed(path, **arrays)
            self.client.log_artifact(self.run_id, str(path), str(Path(artifact_file).parent))

    def log_digits(
        self, x: np.ndarray, labels: np.ndarray, *, name: str, source: str, context: str
    ) -> None:
        """Record one split's digits as an MLflow dataset input (with a digest of its data)."""
        with warnings.catch_warnings():
            # MLflow registers its local-file source twice (for "" and "file:"), so any local
            # path "can be interpreted in multiple ways" - as the same class, either way.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(x, targets=labels, name=name, source=source)
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        inputs = [DatasetInput(dataset._to_mlflow_entity(), tags=tags)]  # as mlflow.log_input
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException as err:
            # The jobs of a parallel sweep log the same digits at the same moment. MLflow's
            # database store looks the dataset up, then inserts it, so of two jobs that
            # both found none, one breaks the unique (experiment, name, digest) key. Once
            # the other's row is in, logging again only links it to this run.
            if not _lost_insert_race(err):
                raise
            self.client.log_inputs(self.run_id, inputs)

    def log_keras_model(self, model, example: np.ndarray, *, name: str = "model") -> str:
        """Log ``model`` as an MLflow Keras model named ``name``, linked to this run, that
        ``mlflow.keras.load_model`` reads back; return its URI."""
        import keras
        import tensorflow as tf
        from mlflow.models import Model, infer_signature

        # Naming the requirements skips MLflow's inference, which reloads the model in a
        # subprocess and costs more than a short training run.
        requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"]
        signature = infer_signature(example, np.asarray(model(example, training=False)))
        # Model.log (what mlflow.keras.log_model calls) makes a logged model in the active
        # run's experiment: made here, in this run's, for this run.
        logged = self.client.create_logged_model(
            self.experiment_id, name=name, source_run_id=self.run_id
        )
        with process_tracking_uri(self.tracking_uri):
            info = Model.log(
                artifact_path=None,
                name=name,
                model_id=logged.model_id,
                flavor=mlflow.keras,
                model=model,
                run_id=self.run_id,
                pip_requirements=requirements,
                signature=signature,
            )
        return info.model_uri

    def load_keras_model(self, source: Run):
        """The autoencoder ``source`` logged (its :data:`MODEL_URI_TAG`), and a tag here
        naming the run it came from."""
        with process_tracking_uri(self.tracking_uri):
            model = mlflow.keras.load_model(source.data.tags[MODEL_URI_TAG])
        self.set_tags({MODEL_FROM_TAG: source.info.run_id})
        return model

    def copy_curves(self, source: Run) -> dict[str, list[float]]:
        """Copy ``source``'s per-epoch losses into this run; return them by name."""
        history = {key: self.client.get_metric_history(source.info.run_id, key) for key in CURVES}
        self.client.log_batch(self.run_id, metrics=[m for ms in history.values() for m in ms])
        by_step = {key: sorted(ms, key=lambda m: m.step) for key, ms in history.items()}
        return {key: [m.value for m in ms] for key, ms in by_step.items()}


class NullRunLog:
    """What a run records when tracking is off: nothing."""

    enabled = False

    def __getattr__(self, name: str):
        # RunLog's log_params, log_metrics, log_figure, ...: accepted, nothing recorded.
        # Any other name (a typo) still fails, as it would with tracking on.
        if name.startswith("_") or not callable(getattr(RunLog, name, None)):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return _ignore


def _ignore(*args, **kwargs) -> None:
    for value in args:
        if isinstance(value, Figure):
            plt.close(value)  # a figure drawn for nobody still holds memory


@contextlib.contextmanager
def process_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's model logging and loading take no client: they read the process's tracking
    URI. Set it for the call only, then put it back as it was, with the
    ``MLFLOW_TRACKING_URI`` variable that ``mlflow.set_tracking_uri`` also writes (the next
    job of a sweep reads that variable as the user's choice)."""
    from mlflow.tracking._tracking_service import utils  # the process's URI: read, not set

    before, variable = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable


def _lost_insert_race(err: MlflowException) -> bool:
    """True for a unique-key violation: SQLite's wording, then PostgreSQL's and MySQL's."""
    message = str(err)
    return any(
        words in message
        for words in ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")
    )
