"""A run's metrics on their way to the store: per-epoch ones batched, and every value kept
while a server does not take it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from aesweep import server

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0  # how long per-epoch metrics may wait before they are written (default)
EPOCH_METRICS = {"loss": "train/loss", "val_loss": "val/loss"}  # Keras' names -> the run's


class MetricBuffer:
    """The metrics of run ``run_id`` not yet written (:attr:`pending`)."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        tracking_uri: str,
        *,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.client = client
        self.flush_seconds = flush_seconds
        self.run_id = run_id
        self.tracking_uri = tracking_uri  # for messages
        self.pending: list[Metric] = []  # kept on an error, for the next write or the unsent file
        self._last_flush = time.monotonic()
        self._failing = False

    def log(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Write ``metrics`` now, with the pending per-epoch ones (kept if the write fails)."""
        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.flush()

    def log_epoch(self, epoch: int, losses: Mapping[str, float]) -> None:
        """Add one epoch's ``{"loss": ..., "val_loss": ...}`` as ``train/loss``, ``val/loss``.

        Epochs are written in batches (every :attr:`flush_seconds`, and when the run ends,
        also on Ctrl-C): one database write per epoch cost several percent of a short epoch.
        A batch the server does not take stays pending and goes with the next one, so a
        server that is away for a while stalls no training and loses no epoch.
        """
        now = int(time.time() * 1000)
        self.pending += [
            Metric(EPOCH_METRICS[k], float(v), now, epoch)
            for k, v in losses.items()
            if k in EPOCH_METRICS
        ]
        if time.monotonic() - self._last_flush <= self.flush_seconds:
            return
        self._last_flush = time.monotonic()
        try:
            with server.no_retries():  # the next batch is the retry
                self.flush()
        except MlflowException as err:
            if not self._failing:
                log.warning(
                    "tracking server %s: %s; keeping the epochs' metrics to send later",
                    self.tracking_uri,
                    server.reason(err) if server.unreachable(err) else str(err).splitlines()[0],
                )
            self._failing = True
        else:
            if self._failing:
                log.info("tracking server %s answers again: metrics sent", self.tracking_uri)
            self._failing = False

    def flush(self) -> None:
        """Write the pending metrics; on an error they stay pending, nothing is dropped."""
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
        self.pending = []
        self._last_flush = time.monotonic()
