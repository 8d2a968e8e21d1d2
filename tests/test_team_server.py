"""A team's tracking server through the real command line: a job that finds no server,
logins and permissions, eight jobs at once on a PostgreSQL store, an outage mid-job.

One basic-auth server (on PostgreSQL where its binaries exist, else on sqlite) serves the
login, load and database tests: MLflow's auth app takes long to start. The outage tests
share one stop of a plain server of their own, with two jobs on it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import psycopg2
import pytest
import requests
from conftest import (
    LEAN,
    LEAN_PICTURED,
    TINY,
    BackgroundCli,
    free_port,
    image_path,
    image_steps,
    run_cli,
    serve_mlflow,
    summary_rows,
    wait_for,
)
from mlflow import MlflowClient

import report
from aesweep import search, server, studies
from aesweep.errors import TrackingRefused
from aesweep.studies import RETRY_ATTR
from aesweep.tracking import Tracker

pytestmark = pytest.mark.slow

PASSWORDS = {"admin": "admin-Pw-7f3", "alice": "alice-Pw-2c9", "reader": "reader-Pw-5e1"}
#: the server's own variables: the auth app starts only with both secrets set; no job
#: consumers beside it (they are for GenAI jobs, and slow its start)
SERVER_ENV = {
    "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORDS["admin"],
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-test-secret-key",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
#: the 8 jobs of the load test: baselines, so that each job is mostly MLflow traffic
#: (the outage tests check the per-epoch metrics of a training job)
LOAD_JOBS = [("pixels", seed) for seed in range(4)] + [("pca", seed) for seed in range(4)]
BASELINE_FIGURES = ("latent_grid", "sample_latent", "confusion")


def login(user: str, password: str | None = None) -> dict[str, str]:
    """The environment a job of ``user`` gets: MLflow's client reads it."""
    return {
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": PASSWORDS[user] if password is None else password,
    }


@contextlib.contextmanager
def logged_in(user: str, password: str | None = None) -> Iterator[None]:
    """MLflow clients in this process send ``user``'s login (or ``password``) inside."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in login(user, password).items():
            patch.setenv(name, value)
        yield


def admin_client(url: str):
    """MLflow's client of the basic-auth app's user API (send the admin's login)."""
    with warnings.catch_warnings():
        # importing mlflow.server loads its FastAPI app, which imports a deprecated module
        warnings.filterwarnings("ignore", "starlette.middleware.wsgi is deprecated")
        from mlflow.server.auth.client import AuthServiceClient
    return AuthServiceClient(url)


def one_line(output: str, word: str) -> str:
    """The one line of ``output`` holding ``word``; fail if there are more, or none."""
    lines = [line for line in output.splitlines() if word in line]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian: /usr/lib/postgresql/<v>/bin),
    or None where there are none, or no user ``postgres`` to run them as root."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextlib.contextmanager
def postgres(bin_dir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 with databases ``mlflow`` and ``mlflow_auth``;
    yields ``postgresql://mlflow:<password>@127.0.0.1:<port>``.

    PostgreSQL refuses to run as root: as root, its programs run as user ``postgres``
    (which Debian's package creates), in a folder of theirs outside pytest's private ones.
    """
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="aesweep-postgres-"))
    password = "pg-Pw-91d"
    (folder / "password").write_text(password)
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "password", "postgres")
    port = free_port()
    process = None
    try:
        subprocess.run(
            [*as_user, bin_dir / "initdb", "-D", folder / "data", "-U", "mlflow", "-A"]
            + ["scram-sha-256", "--pwfile", folder / "password", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        log = (folder / "postgres.log").open("w")
        # fsync off: a test database need not survive a power cut
        process = subprocess.Popen(
            [*as_user, bin_dir / "postgres", "-D", folder / "data", "-h", "127.0.0.1"]
            + ["-p", str(port), "-k", folder, "-c", "fsync=off"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"postgresql://mlflow:{password}@127.0.0.1:{port}"
        wait_for(lambda: _create_databases(url), what="PostgreSQL", process=process, poll=0.5)
        yield url
    finally:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _create_databases(url: str) -> bool:
    try:
        connection = psycopg2.connect(f"{url}/postgres", connect_timeout=5)
    except psycopg2.OperationalError:
        return False  # not accepting connections yet
    connection.autocommit = True  # CREATE DATABASE runs outside transactions
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
            cursor.execute("CREATE DATABASE mlflow_auth")
    finally:
        connection.close()
    return True


# ---------------------------------------------------------------- the team's server


@dataclass
class TeamServer:
    url: str
    database: str | None  # PostgreSQL's URL (libpq's form), None for sqlite


@pytest.fixture(scope="module")
def team_server(tmp_path_factory) -> Iterator[TeamServer]:
    """docs/team-server.md's team server: basic-auth logins, host and origin checks, a database,
    artifacts served through it; users alice (writes) and reader (reads)."""
    folder = tmp_path_factory.mktemp("team")
    with contextlib.ExitStack() as stack:
        bin_dir = postgres_bin()
        database = None
        if bin_dir is not None:
            database = stack.enter_context(postgres(bin_dir))
            # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; aesweep has psycopg2
            driver = database.replace("postgresql://", "postgresql+psycopg2://")
            backend, users = f"{driver}/mlflow", f"{driver}/mlflow_auth"
        else:
            backend, users = f"sqlite:///{folder / 'mlflow.db'}", f"sqlite:///{folder / 'auth.db'}"
        (folder / "auth.ini").write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {users}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 60\n"
        )
        port = free_port()
        args = ["server", "--app-name", "basic-auth", "--host", "127.0.0.1"]
        args += ["--backend-store-uri", backend, "--artifacts-destination", str(folder / "art")]
        args += ["--allowed-hosts", f"127.0.0.1:{port}"]
        args += ["--cors-allowed-origins", f"http://127.0.0.1:{port}", "--workers", "1"]
        env = SERVER_ENV | {"MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini")}
        url = stack.enter_context(serve_mlflow(args, cwd=folder, env=env, port=port))
        with logged_in("admin"):
            admin = admin_client(url)
            admin.create_user("alice", PASSWORDS["alice"])
            admin.create_user("reader", PASSWORDS["reader"])
        yield TeamServer(url=url, database=database and f"{database}/mlflow")


def team_train(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_cli(args, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def team_sweep(team_server, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """alice's sweep of 8 jobs, 4 at a time, against the team server."""
    work = tmp_path_factory.mktemp("alice")
    start = time.monotonic()
    result = team_train(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "train.threads=1", *TINY]
        + ["arch=pixels,pca", "seed=0,1,2,3", *LEAN_PICTURED]
        + [f"tracking.uri={team_server.url}", "tracking.experiment=team"],
        work,
        login("alice"),
    )
    print(f"8-job sweep: {time.monotonic() - start:.0f} s")
    return result, work


def experiment_runs(url: str, experiment: str) -> list:
    with logged_in("admin"):
        client = MlflowClient(url)
        found = client.get_experiment_by_name(experiment)
        return [] if found is None else client.search_runs([found.experiment_id])


def test_a_job_whose_server_does_not_answer_says_so_in_seconds(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for flags in ([], ["-m"]):
        start = time.monotonic()
        result = run_cli([*flags, *TINY, f"tracking.uri={url}"], cwd=tmp_path)
        seconds = time.monotonic() - start
        output = result.stdout + result.stderr
        assert result.returncode == 1, output[-3000:]
        line = one_line(output, "TrackingUnavailable")
        print(line)
        assert f"tracking server {url} does not answer (Connection refused)" in line
        assert "Traceback" not in output and "epoch" not in output  # before any training
        assert seconds < 60, seconds  # the Python start-up; MLflow's retries took 4.5 min
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.xdist_group("team_server")
@pytest.mark.parametrize("password", ["wrong-password", ""], ids=["wrong", "missing"])
def test_a_wrong_or_missing_password_stops_the_job_with_one_line(team_server, tmp_path, password):
    env = login("alice", password) if password else {}
    args = [*TINY, f"tracking.uri={team_server.url}", "tracking.experiment=refused"]
    result = team_train(args, tmp_path, env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    line = one_line(output, "TrackingRefused")
    print(line)
    assert f"tracking server {team_server.url} refused" in line
    assert "401 not authenticated" in line
    assert ("'alice'" if password else "no login") in line
    assert "Traceback" not in output
    with logged_in("admin"):
        assert MlflowClient(team_server.url).get_experiment_by_name("refused") is None


@pytest.mark.xdist_group("team_server")
def test_a_read_only_user_stops_with_one_line_and_leaves_no_run(team_server, tmp_path):
    with logged_in("admin"):
        experiment_id = MlflowClient(team_server.url).create_experiment("read-only")
        admin_client(team_server.url).grant_user_permission(
            "reader", "experiment", experiment_id, "READ"
        )
    args = [*TINY, f"tracking.uri={team_server.url}", "tracking.experiment=read-only"]
    result = team_train(args, tmp_path, login("reader"))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    line = one_line(output, "TrackingRefused")
    print(line)
    assert f"tracking server {team_server.url} refused a new run in experiment 'read-only'" in line
    assert "403 permission denied" in line and "'reader'" in line
    assert "Traceback" not in output and "epoch" not in output
    assert experiment_runs(team_server.url, "read-only") == []


@pytest.mark.xdist_group("team_server")
def test_the_server_refuses_other_host_names_and_origins(team_server):
    port = team_server.url.rsplit(":", 1)[1]
    auth = ("alice", PASSWORDS["alice"])
    search = "/api/2.0/mlflow/experiments/search"
    ok = requests.post(team_server.url + search, json={"max_results": 1}, auth=auth, timeout=30)
    assert ok.status_code == 200
    # DNS rebinding: a name that resolves here but is not in --allowed-hosts
    other_host = requests.post(
        f"http://localhost:{port}{search}", json={"max_results": 1}, auth=auth, timeout=30
    )
    assert other_host.status_code == 403 and "Invalid Host header" in other_host.text
    # A web page elsewhere writing with a team member's browser session
    foreign = requests.post(
        team_server.url + "/api/2.0/mlflow/experiments/create",
        json={"name": "from-elsewhere"},
        auth=auth,
        headers={"Origin": "https://evil.example"},
        timeout=30,
    )
    assert foreign.status_code == 403


@pytest.mark.xdist_group("team_server")
def test_a_logged_in_sweep_finishes_and_no_password_is_recorded(team_server, team_sweep, capsys):
    result, work = team_sweep
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert not (work / "mlflow.db").exists() and not (work / "mlruns").exists()
    assert f"{team_server.url}/#/experiments/" in result.stdout
    runs = experiment_runs(team_server.url, "team")
    assert runs and all(run.info.status == "FINISHED" for run in runs)
    with logged_in("alice"):
        assert report.main(["--tracking-uri", team_server.url, "--experiment", "team"]) == 0
    report_output = capsys.readouterr().out
    with logged_in("alice", "not-her-password"):
        assert report.main(["--tracking-uri", team_server.url, "--experiment", "team"]) == 1
    refused = capsys.readouterr().err
    assert refused.count("\n") == 1 and f"tracking server {team_server.url} refused" in refused
    # the 8 jobs, a pixel reference per seed, and the means over seeds of pixels, pca, reference
    assert report_output.count("\n| ") == 8 + 4 + 3
    recorded = [output]
    for run in runs:
        recorded += [str(run.data.params), str(run.data.tags)]
    recorded += [p.read_text(errors="replace") for p in work.rglob("*") if p.is_file()]
    for password in PASSWORDS.values():
        assert not any(password in text for text in recorded)


@pytest.mark.xdist_group("team_server")
def test_a_permission_taken_away_mid_run_is_one_line_and_keeps_the_metrics(
    team_server, tmp_path, monkeypatch
):
    """In process (the command line's handling is the refused logins' above): alice's run
    loses EDIT while it trains; its next write is refused."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set by Tracker.connect below
    with logged_in("admin"):
        experiment_id = MlflowClient(team_server.url).create_experiment("revoked")
        admin_client(team_server.url).grant_user_permission(
            "alice", "experiment", experiment_id, "EDIT"
        )
    with logged_in("alice"):
        tracker = Tracker.connect(
            enabled=True, uri=team_server.url, experiment="revoked", root=tmp_path
        )
        with (
            pytest.raises(TrackingRefused) as refused,
            tracker.run(run_name="job", tags={}) as run,
        ):
            run.log_epoch(1, {"loss": 0.5, "val_loss": 0.6})  # pending: the next batch
            with logged_in("admin"):
                # back to the server's default_permission, READ
                admin_client(team_server.url).revoke_user_permission(
                    "alice", "experiment", experiment_id
                )
            run.log_params({"lr": 0.01})
    line = str(refused.value)
    print(line)
    assert "\n" not in line
    assert f"tracking server {team_server.url} refused writes to run {tracker.run_id}" in line
    assert "403 permission denied" in line and "'alice'" in line
    [unsent] = tmp_path.glob(server.UNSENT_FILE)
    assert f"{server.SEND_COMMAND} {unsent}" in line

    with logged_in("admin"):  # EDIT again: the job's metrics and end go in
        admin_client(team_server.url).grant_user_permission(
            "alice", "experiment", experiment_id, "EDIT"
        )
    with logged_in("alice"):
        assert server.send_unsent(unsent)[0] == tracker.run_id
        run = MlflowClient(team_server.url).get_run(tracker.run_id)
    assert run.info.status == "FAILED" and run.data.metrics["val/loss"] == 0.6


@pytest.mark.xdist_group("team_server")
def test_eight_jobs_four_at_a_time_lose_nothing(team_server, team_sweep):
    result, work = team_sweep
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with logged_in("admin"):
        client = MlflowClient(team_server.url)
        runs = experiment_runs(team_server.url, "team")
        [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(runs) == 9 and parent.info.status == "FINISHED"
        jobs = sorted((r.data.params["arch.name"], int(r.data.params["seed"])) for r in children)
        assert jobs == sorted(LOAD_JOBS)
        assert all(r.info.status == "FINISHED" for r in children)
        for run in children:  # a baseline's figures, with no t-SNE map asked for
            names = {*BASELINE_FIGURES}
            if run.data.params["arch.name"] == "pca":
                names.add("reconstructions")  # PCA reconstructs, pixels do not
            assert set(image_steps(client, run.info.run_id)) == names
    rows = {
        (row["arch"], int(row["seed"])): row
        for row in summary_rows(work)
        if row["status"] == "FINISHED"
    }
    assert len(rows) == 8
    for run in children:  # the table is what the children recorded, to the last digit
        row = rows[(run.data.params["arch.name"], int(run.data.params["seed"]))]
        for key in ("cluster/acc", "cluster/nmi", "test/acc", "test/nmi", "test/ari"):
            assert float(row[key]) == run.data.metrics[key], (key, row)


@pytest.mark.xdist_group("team_server")
def test_the_team_sweep_is_stored_in_postgresql(team_server, team_sweep, tmp_path):
    if team_server.database is None:
        pytest.skip(
            "no PostgreSQL here (initdb, and a user postgres to run it as root): "
            "apt-get install postgresql, as .ci/run does; the team server used sqlite"
        )
    connection = psycopg2.connect(team_server.database)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM runs JOIN experiments USING (experiment_id) "
            "WHERE experiments.name = 'team' AND runs.status = 'FINISHED'"
        )
        assert cursor.fetchone() == (9,)
        cursor.execute("SELECT count(*) FROM metrics WHERE key = 'test/acc'")
        assert cursor.fetchone() == (8,)  # one per job
    with logged_in("alice"):
        client = MlflowClient(team_server.url)
        runs = experiment_runs(team_server.url, "team")
        [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
        child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId"))
        sweep_figure = "figures/sweep_cluster_scores.png"
        for path in [
            Path(client.download_artifacts(parent.info.run_id, sweep_figure, str(tmp_path))),
            image_path(client, child.info.run_id, "latent_grid", 0, tmp_path),
        ]:
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "test/acc" in child.data.metrics


# ---------------------------------------------------------------- search workers

#: one study of 9 tiny trials: the seed's FFN, two epochs on 200 digits, a latent size drawn
WORKER_TRIALS = 9
HEARTBEAT, GRACE = 1, 3  # seconds: a killed worker's trial is noticed within 4


def study_database(team_server: TeamServer, name: str = "optuna") -> str:
    """A new database ``name`` beside the team server's, as SQLAlchemy's URL with psycopg2."""
    connection = psycopg2.connect(team_server.database.rsplit("/", 1)[0] + "/postgres")
    connection.autocommit = True
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    base = team_server.database.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg2://") + f"/{name}"


@pytest.mark.xdist_group("team_server")
def test_workers_that_open_a_new_study_database_together_all_join(team_server):
    # Each worker's Optuna creates the tables of an empty database; PostgreSQL refuses all
    # but the first, and the others retry. Threads meet unique_violation (3 of 4 here
    # without the retry); processes now and then duplicate_table, as CI's workers once did.
    if team_server.database is None:
        pytest.skip("no PostgreSQL here: apt-get install postgresql, as .ci/run does")
    storage = study_database(team_server, "optuna_race")
    barrier, joined, errors = threading.Barrier(4), [], []

    def worker() -> None:
        barrier.wait()
        try:
            joined.append(
                studies.join_study(
                    storage,
                    study_name="race",
                    direction="maximize",
                    sampler=optuna.samplers.RandomSampler(seed=0),
                    heartbeat_interval=HEARTBEAT,
                    grace_period=GRACE,
                )
            )
        except Exception as err:  # noqa: BLE001 - the test reports any, by its type
            errors.append(f"{type(err).__name__}: {err}"[:300])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(joined) == 4
    assert sum(worker.created for worker in joined) == 1  # one created the study, three joined


@pytest.mark.xdist_group("team_server")
def test_three_workers_share_one_study_and_a_killed_ones_trial_runs_again(team_server, tmp_path):
    if team_server.database is None:
        pytest.skip("no PostgreSQL here: apt-get install postgresql, as .ci/run does")
    storage = study_database(team_server)
    command = ["-m", "hparams_search=optuna", *TINY, *LEAN, "train.threads=1"]
    # a continuous space: a later trial of the killed one's exact config would end its run
    # first, by its resume (a run whose process is gone), and say so instead of the trial
    command += ["hydra.sweeper.params=null", "arch=ffn", "lr=interval(0.001,0.01)"]
    command += [f"hydra.sweeper.n_trials={WORKER_TRIALS}", "hydra.sweeper.study_name=shared"]
    command += [f"hydra.sweeper.storage={storage}", f"hydra.sweeper.heartbeat_interval={HEARTBEAT}"]
    command += [f"hydra.sweeper.grace_period={GRACE}"]
    command += [f"tracking.uri={team_server.url}", "tracking.experiment=workers"]
    folders = [tmp_path / f"machine{i}" for i in range(3)]  # as if on three machines
    for folder in folders:
        folder.mkdir()
    workers = [BackgroundCli(command, folder, env=login("alice")) for folder in folders]
    victim = workers[0].process

    def victims_running_run():
        with logged_in("alice"):
            runs = experiment_runs(team_server.url, "workers")
        return next(
            (
                r
                for r in runs
                if r.info.status == "RUNNING"
                and r.data.tags.get("aesweep.pid") == str(victim.pid)
                and "aesweep.trial" in r.data.tags  # a trial's, not the parent it created
            ),
            None,
        )

    killed_run = wait_for(victims_running_run, what="a trial of the first worker", process=victim)
    victim.send_signal(signal.SIGKILL)  # mid-trial: its run and its trial are left RUNNING
    killed_at = time.time()
    victim.wait()
    outputs = [worker.finish(timeout=600) for worker in workers[1:]]
    for worker, output in zip(workers[1:], outputs, strict=True):
        assert worker.process.returncode == 0, output[-3000:]
        assert "Traceback" not in output and "Error" not in output, output[-3000:]
    Path(os.environ.get("AESWEEP_WORKER_LOG", os.devnull)).write_text("\n=====\n".join(outputs))

    study = optuna.load_study(study_name="shared", storage=storage)
    counted = [t for t in study.trials if search.counts_towards_budget(t)]
    assert len(counted) == WORKER_TRIALS and all(t.state.name == "COMPLETE" for t in counted)
    trial = int(killed_run.data.tags["aesweep.trial"])
    [dead] = [t for t in study.trials if t.number == trial]
    assert dead.state.name == "FAIL" and dead.user_attrs["aesweep.pid"] == str(victim.pid)
    noticed = dead.datetime_complete.timestamp() - killed_at
    assert noticed <= HEARTBEAT + GRACE + 2, f"noticed {noticed:.1f} s after the kill"
    [retry] = [t for t in study.trials if t.user_attrs.get(RETRY_ATTR) == trial]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params

    with logged_in("alice"):
        runs = experiment_runs(team_server.url, "workers")
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert parent.info.status == "FINISHED" and len(finished) == WORKER_TRIALS
    numbers = sorted(int(r.data.tags["aesweep.trial"]) for r in finished)
    assert numbers == sorted(t.number for t in counted)  # each trial once, none twice
    [killed] = [r for r in children if r.info.status == "KILLED"]
    assert killed.info.run_id == killed_run.info.run_id
    assert f"trial {trial}:" in killed.data.tags["failure_reason"]
    assert parent.data.metrics["search/trials"] == WORKER_TRIALS
    # one of the two workers told the study's last trial, and reviewed the whole study
    assert sum("Sweep summary" in output for output in outputs) == 1, outputs
    assert sum("ran on another worker" in output for output in outputs) == 1


# ---------------------------------------------------------------- outages


class Cable:
    """The network between the jobs and a server: a TCP forwarder from a port of its own to
    the server's. :meth:`unplug` makes the server away for every job (nothing listens on the
    port any more, and open connections drop, as when the server's process is gone);
    :meth:`plug` brings it back on the same port. What toxiproxy does, in one thread each."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._plugged = threading.Event()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listening: threading.Thread | None = None

    def plug(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: same port
        listener.settimeout(0.1)  # to notice unplug()
        self._plugged.set()
        self._listening = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._listening.start()

    def unplug(self) -> None:
        self._plugged.clear()
        if self._listening is not None:
            self._listening.join()  # it closes the listening socket
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._plugged.is_set():
                try:
                    job, _ = listener.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.server_port))
                with self._lock:
                    self._connections += [job, upstream]
                for source, sink in ((job, upstream), (upstream, job)):
                    threading.Thread(target=_forward, args=(source, sink), daemon=True).start()


def _forward(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)  # the other side's end of the request or the answer


OUTAGE_SECONDS = 3  # three of a job's per-epoch metric writes (tracking.metrics_every=1)


@dataclass
class Outage:
    url: str  # the server, as the jobs see it (through the cable)
    away: tuple[int, str]  # the job that rode out the outage: exit code, output
    gone: tuple[int, str]  # the job that gave up: exit code, output
    gone_dir: Path  # where that one ran
    epochs: dict[str, int]


def single_run(experiment: str, epochs: int, url: str) -> list[str]:
    """A single run with one line per epoch, recorded in ``experiment`` on ``url``, that
    writes its per-epoch metrics every second."""
    # with its pictures: those taken while it trains must not wait for the server either
    return [*TINY, *LEAN_PICTURED, "train.progress_every=1", "tracking.metrics_every=1"] + [
        f"train.epochs={epochs}",
        f"tracking.experiment={experiment}",
        f"tracking.uri={url}",
    ]


@pytest.fixture(scope="module")
def outage(tmp_path_factory, empty_store) -> Iterator[Outage]:
    """One server, two jobs on it, and the server away from both once both are training.

    ``gone`` (200 epochs, a retry budget of 2 s standing for aesweep's minute) gives up
    while the server is still away: the outage lasts until it has ended, and at least
    :data:`OUTAGE_SECONDS`. ``away`` (250 epochs, aesweep's retry budget) stalls meanwhile
    (its output is not read after epoch 2), then trains on until a write of its has failed,
    and finishes once the server is back.
    """
    folder = tmp_path_factory.mktemp("outage")
    shutil.copyfile(empty_store, folder / "server.db")
    port = free_port()
    args = ["server", "--host", "127.0.0.1", "--backend-store-uri", f"sqlite:///{folder}/server.db"]
    args += ["--artifacts-destination", str(folder / "art"), "--workers", "1"]
    epochs = {"away": 250, "gone": 200}
    budget = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    dirs = {name: tmp_path_factory.mktemp(name) for name in epochs}
    jobs = {}
    with serve_mlflow(args, cwd=folder, env=SERVER_ENV, port=port):
        cable = Cable(port)
        cable.plug()
        try:
            for name, env in (("away", None), ("gone", budget)):
                args = single_run(name, epochs[name], cable.url)
                # away's ~110 epochs till it stalls leave 140 to train through the outage
                held = rf"epoch +2/{epochs[name]}" if name == "away" else None
                jobs[name] = BackgroundCli(args, dirs[name], env=env, hold_at=held)
            for name in ("gone", "away"):  # the shorter job first: it must still be training
                jobs[name].wait_for_line(rf"epoch +2/{epochs[name]}")
            cable.unplug()
            unplugged = time.monotonic()
            gone = jobs["gone"].finish()
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - unplugged)))
            jobs["away"].release()
            jobs["away"].wait_for_line("keeping the epochs' metrics to send later")
            cable.plug()
            away = jobs["away"].finish()
            yield Outage(
                url=cable.url,
                away=(jobs["away"].process.returncode, away),
                gone=(jobs["gone"].process.returncode, gone),
                gone_dir=dirs["gone"],
                epochs=epochs,
            )
        finally:
            for job in jobs.values():
                job.kill()
            cable.unplug()


def _epochs_recorded(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.mark.xdist_group("outage")
def test_a_server_away_mid_job_loses_no_epoch(outage):
    returncode, output = outage.away
    assert returncode == 0, output[-3000:]
    assert "keeping the epochs' metrics to send later" in output  # training went on
    client = MlflowClient(outage.url)
    [run] = client.search_runs([client.get_experiment_by_name("away").experiment_id])
    assert run.info.status == "FINISHED"
    for key in ("train/loss", "val/loss"):
        assert _epochs_recorded(client, run.info.run_id, key) == list(
            range(1, outage.epochs["away"] + 1)
        ), key


@pytest.mark.xdist_group("outage")
def test_a_server_gone_for_good_ends_the_job_and_leaves_its_metrics_to_send(outage):
    returncode, output = outage.gone
    assert returncode == 1, output[-3000:]
    line = one_line(output, "TrackingUnavailable")
    print(line)
    assert f"tracking server {outage.url} stopped answering" in line
    assert "Traceback" not in output
    [unsent] = outage.gone_dir.glob("outputs/*/*/unsent_metrics.json")
    assert f"uv run python src/send_metrics.py {unsent}" in line

    sent = run_cli([str(unsent)], cwd=outage.gone_dir, script="send_metrics.py")
    assert sent.returncode == 0, sent.stderr[-3000:]
    assert not unsent.exists() and (unsent.parent / "sent_metrics.json").is_file()
    client = MlflowClient(outage.url)
    [run] = client.search_runs([client.get_experiment_by_name("gone").experiment_id])
    assert run.info.status == "FAILED"  # as the job ended it, not RUNNING
    assert "failure_reason" in run.data.tags
    assert "cluster/acc" in run.data.metrics  # the scores were unsent too
    for key in ("train/loss", "val/loss"):
        assert _epochs_recorded(client, run.info.run_id, key) == list(
            range(1, outage.epochs["gone"] + 1)
        ), key
