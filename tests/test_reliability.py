"""Failures through the real command line: exit codes, signals, parallel and resumed
sweeps, other launchers. What needs no subprocess is in test_experiment.py; sweeps against
a live tracking server are in test_team_server.py."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import (
    LEAN,
    TINY,
    BackgroundCli,
    free_port,
    run_cli,
    store_runs,
    summary_rows,
)
from mlflow.tracking import MlflowClient

from aesweep.console import gpu_present

pytestmark = pytest.mark.slow


def _client(cwd: Path) -> MlflowClient:
    return store_runs(cwd)[0]


def _all_runs(client: MlflowClient, experiment: str = "aesweep"):
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


# One case per place a bad value is caught: the schema, the data loader, Hydra's own
# composition, the check of a sweep's jobs before any starts. The other bad values take the
# same paths and are tested in process (test_config.py, test_data.py, test_experiment.py).
BAD_INPUTS = [
    (["lr=-1"], "lr=-1.0 must be > 0"),
    (["data=file", "data.path=missing.npz"], "data.path='missing.npz': no such file"),
    (["arch=mlp"], "Could not find 'arch/mlp'"),
    (["-m", "lr=0.01,-2"], "lr=-2.0 must be > 0"),
    # what only the data's size can tell: before the first job, not when the second starts
    (
        ["-m", "arch=pixels", "data.n_samples=300,4500", "data.n_test=1000"],
        "data.n_samples=4500 + data.n_test=1000 exceeds the 5000 digits available",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_fails_fast_with_one_clear_line_and_no_run(workdir, args, message):
    flags = [a for a in args if a == "-m"]  # argparse wants flags before the overrides
    result = run_cli([*flags, *TINY, *(a for a in args if a != "-m")], cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Traceback" not in output
    assert _all_runs(_client(workdir)) == []
    assert not list(workdir.glob("multirun/*/*/0"))  # no sweep job started either


def _assert_nothing_running(client: MlflowClient):
    statuses = {run.info.run_name: run.info.status for run in _all_runs(client)}
    assert "RUNNING" not in statuses.values(), statuses


def test_ctrl_c_kills_a_sweep_and_resume_finishes_it_without_repeating_work(workdir):
    # The reader holds at "epoch 2": the job stalls within ~100 of its 300 epoch lines
    # (~110 bytes each), and the signal finds it training on any machine.
    sweep = ["-m", *TINY, *LEAN, "arch=pixels,ffn", "train.epochs=300"]
    sweep += ["train.progress_every=1"]
    cli = BackgroundCli(sweep, workdir, hold_at=r"epoch +2/300")
    try:
        cli.wait_for_line(r"epoch +2/300")  # the second job is training
        assert cli.interrupt(signal.SIGINT) != 0
    finally:
        cli.kill()
    if not gpu_present():  # a newcomer's first screen: no TensorFlow noise that reads as failure
        first_screen = "".join(cli.output)  # a fresh process, up to its second job's training
        assert "#/experiments/" in first_screen  # the direct link to mlflow ui
        assert "cuInit" not in first_screen and "absl::InitializeLog" not in first_screen
    client = _client(workdir)
    _assert_nothing_running(client)
    runs = _all_runs(client)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    assert parent.info.status == "KILLED"
    jobs = {r.data.tags["arch"]: r for r in runs if "arch" in r.data.tags}
    assert {arch: r.info.status for arch, r in jobs.items()} == {
        "pixels": "FINISHED",
        "ffn": "KILLED",
    }
    assert len(client.get_metric_history(jobs["ffn"].info.run_id, "train/loss")) >= 2
    assert not list(workdir.glob("multirun/*/*/summary.csv"))  # no table for half a sweep

    result = run_cli([*sweep, "resume=true"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _all_runs(client)
    [resumed] = [
        r
        for r in runs
        if r.data.tags.get("aesweep.role") == "sweep" and r.info.run_id != parent.info.run_id
    ]
    assert resumed.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == resumed.info.run_id]
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
    reused = {r.data.tags["arch"]: r.data.tags.get("aesweep.resumed_from") for r in children}
    # Every finished job reused, the killed one trained again.
    assert reused == {"pixels": jobs["pixels"].info.run_id, "ffn": None}
    assert len(summary_rows(workdir)) == 3  # two jobs and the pixel reference
    _assert_nothing_running(client)


def test_a_joblib_sweep_queues_its_jobs_fails_a_diverging_one_alone_and_ends_killed(workdir):
    # Two workers, three jobs: the diverging one fails at once and frees its worker for the
    # third; then SIGTERM (what a scheduler or `kill` sends) to the sweep's process while
    # both of the others train.
    sweep = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train.threads=1"]
    sweep += [*TINY, *LEAN, "arch=ffn", "lr=1e9,0.01,0.005", "train.epochs=100000"]
    cli = BackgroundCli([*sweep, "train.progress_every=1"], workdir)
    try:
        cli.wait_for_line(r"epoch +2/100000")
        cli.wait_for_line(r"epoch +2/100000")  # both long jobs train: the third one started
        assert cli.interrupt(signal.SIGTERM) != 0
    finally:
        cli.kill()
    output = cli.finish()
    assert "Traceback" not in output and "database is locked" not in output
    assert "interrupted (signal SIGTERM): runs ended KILLED" in output
    client = _client(workdir)
    runs = _all_runs(client)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 and len(runs) == 4
    assert parent.info.status == "KILLED"
    for run in children:
        if run.data.params["lr"] == "1000000000.0":
            assert run.info.status == "FAILED"
            assert "loss diverged" in run.data.tags["failure_reason"]
            assert run.data.tags["epochs_reached"] == "1"
        else:
            assert run.info.status == "KILLED"  # not RUNNING for good
    _assert_nothing_running(client)


def test_submitit_jobs_run_apart_and_one_that_never_reaches_mlflow_is_a_failed_row(workdir):
    # Each job in its own process (submitit_local); the second job's tracking server does
    # not answer, so it cannot record a run at all: the table still has its row.
    dead = f"http://127.0.0.1:{free_port()}"
    sweep = ["-m", "hydra/launcher=submitit_local", *TINY, *LEAN, "arch=pixels"]
    result = run_cli([*sweep, f"tracking.uri=null,{dead}"], cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]  # a job failed: the command says so
    assert "Downloading artifacts" not in output  # MLflow's bars stay out of the terminal
    assert len(list(workdir.glob("multirun/*/*/.submitit/*/*_result.pkl"))) == 2
    runs = _all_runs(_client(workdir))
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    [child] = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert child.info.status == "FINISHED" and parent.info.status == "FAILED"
    rows = summary_rows(workdir)
    assert [row["status"].split(":")[0] for row in rows] == ["FINISHED", "reference", "FAILED"]
    assert dead.rsplit(":", 1)[1] in rows[2]["tracking.uri"]  # as Hydra records it: http\\://
    assert rows[2]["status"].startswith(f"FAILED: TrackingUnavailable: tracking server {dead}")
