"""aesweep.server in process: no server needed. Real servers are in test_team_server.py."""

from __future__ import annotations

import time

import pytest
from conftest import free_port
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from aesweep import server
from aesweep.errors import InputError, TrackingUnavailable
from aesweep.tracking import MetricBuffer, Tracker


def test_a_password_in_the_tracking_uri_is_refused_without_being_repeated(tmp_path):
    with pytest.raises(InputError, match=r"'http://alice:\*\*\*@127.0.0.1:1'") as caught:
        Tracker.connect(
            enabled=True, uri="http://alice:s3cret@127.0.0.1:1", experiment="x", root=tmp_path
        )
    assert "s3cret" not in str(caught.value)


def test_a_closed_port_is_unavailable_at_once(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnavailable, match="does not answer .Connection refused."):
        server.check_server(url)


def test_the_retry_budget_is_about_a_minute(monkeypatch):
    for name in server.HTTP_RETRIES:  # as a user's shell has them: unset
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # and so again after the test
    server.use_retry_budget()
    assert server.retry_budget() == "6 retries over about 62 s"


def test_a_failed_flush_keeps_its_metrics(monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    buffer = MetricBuffer(MlflowClient(uri), "0" * 32, uri)
    buffer.pending = [Metric("train/loss", 0.5, 0, 1), Metric("val/loss", 0.6, 0, 1)]
    with server.no_retries(), pytest.raises(MlflowException) as caught:
        buffer.flush()
    assert server.unreachable(caught.value)
    assert server.reason(caught.value) == "Connection refused"
    assert len(buffer.pending) == 2


def test_epochs_wait_for_the_next_write_every_metrics_every_seconds(workdir):
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("batches")).info.run_id
    buffer = MetricBuffer(client, run_id, uri, flush_seconds=0.5)
    buffer.log_epoch(1, {"loss": 0.5, "val_loss": 0.6, "accuracy": 0.9})  # curves only
    assert [m.key for m in buffer.pending] == ["train/loss", "val/loss"]  # within 0.5 s
    time.sleep(0.55)
    buffer.log_epoch(2, {"loss": 0.4, "val_loss": 0.5})
    assert buffer.pending == []
    history = client.get_metric_history(run_id, "val/loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.6), (2, 0.5)]


def test_send_unsent_sends_the_metrics_and_ends_the_run_as_the_job_did(workdir):
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("unsent"))
    metrics = [Metric("train/loss", 1.0 / step, 1000 + step, step) for step in (1, 2, 3)]
    client.log_batch(run.info.run_id, metrics=metrics[:1])  # sent before the server went
    path = server.save_unsent(
        workdir / "job",
        tracking_uri="http://127.0.0.1:1",  # where it was; the server moved since
        run_id=run.info.run_id,
        metrics=metrics,
        status="FAILED",
        failure_reason="MlflowException: API request failed",
    )
    assert server.send_unsent(path, tracking_uri=uri) == (run.info.run_id, 3)
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == [1, 2, 3]  # the one already there not twice
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FAILED"
    assert after.data.tags["failure_reason"] == "MlflowException: API request failed"
    assert not path.exists() and (path.parent / server.SENT_FILE).is_file()
