"""Bad input, failed and interrupted jobs, parallel and resumed sweeps, a live server."""

from __future__ import annotations

import csv
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TINY, cli_env, run_cli, serve_mlflow
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def _client(cwd: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")


def _all_runs(client: MlflowClient, experiment: str = "aesweep"):
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def _summary_rows(cwd: Path) -> list[dict[str, str]]:
    [path] = cwd.glob("multirun/*/*/summary.csv")
    return list(csv.DictReader(path.open()))


def _wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "train.py"), *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _pickle_file(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"data": np.zeros((20, 784)), "target": np.zeros(20)}))
    return path


BAD_INPUTS = [
    (["lr=-1"], "lr=-1.0 must be > 0"),
    (["train.epochs=0"], "train.epochs=0 must be > 0"),
    (["data.n_samples=4950"], "data.n_samples=4950 + data.n_test=100 exceeds the 5000"),
    (["data=file", "data.path=missing.npz"], "data.path='missing.npz': no such file"),
    (["data=file", "data.path=digits.pkl"], "data.allow_pickle=true"),
    (["arch=mlp"], "Could not find 'arch/mlp'"),
    (["activation.output=tanh"], "Error merging override activation.output=tanh"),
    (["-m", "lr=0.01,-2"], "lr=-2.0 must be > 0"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_fails_fast_with_one_clear_line_and_no_run(tmp_path, args, message):
    _pickle_file(tmp_path / "digits.pkl")
    flags = [a for a in args if a == "-m"]  # argparse wants flags before the overrides
    result = run_cli([*flags, *TINY, *(a for a in args if a != "-m")], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Traceback" not in output
    assert _all_runs(_client(tmp_path)) == []
    assert not list(tmp_path.glob("multirun/*/*/0"))  # no sweep job started either


def _assert_nothing_running(client: MlflowClient):
    statuses = {run.info.run_name: run.info.status for run in _all_runs(client)}
    assert "RUNNING" not in statuses.values(), statuses


def test_a_diverging_job_fails_alone_and_the_sweep_reports_it(tmp_path):
    result = run_cli(["-m", *TINY, "lr=0.01,1e9,0.005"], cwd=tmp_path)
    assert result.returncode == 1
    client = _client(tmp_path)
    runs = _all_runs(client)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    jobs = {r.data.params["lr"]: r for r in runs if r is not parent}
    assert {lr: r.info.status for lr, r in jobs.items()} == {
        "0.01": "FINISHED",
        "1000000000.0": "FAILED",
        "0.005": "FINISHED",
    }
    failed = jobs["1000000000.0"]
    assert "loss diverged" in failed.data.tags["failure_reason"]
    assert failed.data.tags["epochs_reached"] == "1"
    assert parent.info.status == "FAILED"
    rows = _summary_rows(tmp_path)
    assert [row["status"].split(":")[0] for row in rows] == [
        "FINISHED",
        "FINISHED",
        "FAILED",
        "reference",
    ]
    assert "loss diverged" in rows[2]["status"]
    for run in jobs.values():
        if run.info.status == "FINISHED":
            assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    _assert_nothing_running(client)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_ends_killed_with_its_metrics_kept(tmp_path, sig):
    process = _start_cli([*TINY, "train.epochs=100000"], cwd=tmp_path)
    try:
        client = _client(tmp_path)

        def epochs_logged():
            runs = _all_runs(client) if (tmp_path / "mlflow.db").exists() else []
            if not runs:
                return 0
            return len(client.get_metric_history(runs[0].info.run_id, "train/loss")) >= 3

        _wait_for(epochs_logged, timeout=180, what="three logged epochs")
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    [run] = _all_runs(client)
    assert run.info.status == "KILLED"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 3


def test_joblib_sweep_records_every_job_on_sqlite(tmp_path):
    result = run_cli(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            *TINY,
            "arch=ffn,cnn,ffn_linear",
            "lr=0.01,0.005",
        ],
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "database is locked" not in output
    client = _client(tmp_path)
    runs = _all_runs(client)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and len(runs) == 7
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in children:
        assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    assert len(_summary_rows(tmp_path)) == 7


def test_resume_completes_an_interrupted_sweep_without_repeating_work(tmp_path):
    sweep = ["-m", *TINY, "arch=ffn,cnn", "lr=0.01,0.005"]
    process = _start_cli([*sweep, "train.epochs=2"], cwd=tmp_path)
    client = _client(tmp_path)
    try:

        def two_finished():
            if not (tmp_path / "mlflow.db").exists():
                return False
            return (
                sum(
                    r.info.status == "FINISHED" and "arch" in r.data.tags for r in _all_runs(client)
                )
                >= 2
            )

        _wait_for(two_finished, timeout=300, what="two finished jobs")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        process.kill()
    _assert_nothing_running(client)
    finished_before = {
        r.info.run_id
        for r in _all_runs(client)
        if r.info.status == "FINISHED" and "arch" in r.data.tags
    }

    result = run_cli([*sweep, "resume=true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _all_runs(client)
    parents = sorted(
        (r for r in runs if r.data.tags.get("aesweep.role") == "sweep"),
        key=lambda r: r.info.start_time,
    )
    assert [p.info.status for p in parents] == ["KILLED", "FINISHED"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[1].info.run_id]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    reused = {r.data.tags.get("aesweep.resumed_from") for r in children} - {None}
    assert reused == finished_before  # every finished job reused, none trained again
    rows = _summary_rows(tmp_path)  # the interrupted sweep wrote none
    assert len(rows) == 5
    _assert_nothing_running(client)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1 with its own backend and artifact folders."""
    args = [
        "server",
        "--host",
        "127.0.0.1",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "server-artifacts"),
        "--workers",
        "1",
    ]
    with serve_mlflow(args, cwd=tmp_path) as url:
        yield url


def test_sweep_against_a_live_tracking_server(tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli(["-m", *TINY, "arch=ffn,cnn", f"tracking.uri={mlflow_server}"], cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (work / "mlflow.db").exists()  # nothing went to a local store
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = _all_runs(client)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        if "arch" not in run.data.tags:
            continue
        assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
        assert "test/acc" in run.data.metrics
        path = client.download_artifacts(run.info.run_id, "figures/latent_grid.png", str(tmp_path))
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{mlflow_server}/#/experiments/" in result.stdout
    report = subprocess.run(
        [sys.executable, str(ROOT / "src" / "report.py"), "--tracking-uri", mlflow_server],
        cwd=work,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert report.returncode == 0 and report.stdout.count("\n| ") == 3


def test_submitit_local_launcher_runs_each_job_in_its_own_process(tmp_path):
    result = run_cli(
        ["-m", "hydra/launcher=submitit_local", *TINY, "arch=ffn,pca"], cwd=tmp_path, timeout=900
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    client = _client(tmp_path)
    runs = _all_runs(client)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert len(_summary_rows(tmp_path)) == 3
