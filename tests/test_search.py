"""Search instead of grids: the space, the study's bookkeeping, and a tiny search end to end.

The search logic (:mod:`aesweep.search`) is tested in process with a stand-in launcher;
one tiny search runs through the command line twice (the second run continues the
study), and a bad space once.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
import requests
from conftest import CONF_DIR, TINY, compose_config, free_port, run_cli, store_runs, wait_for
from conftest import summary_rows as summary_file_rows
from hydra import compose, initialize_config_dir
from matplotlib.figure import Figure
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from aesweep import figures, search
from aesweep.config import to_experiment_config
from aesweep.errors import InputError
from aesweep.names import SEARCH_FILE, SUMMARY_TABLE, TRIAL_ENV
from aesweep.studies import RETRY_ATTR, StudyWorker
from aesweep.summary import JobRecord, summary_rows, to_csv, to_markdown

optuna.logging.set_verbosity(optuna.logging.WARNING)

# --- The space -------------------------------------------------------------------------


def test_parse_space_reads_hydras_grammar_and_the_command_line_wins():
    params = {
        "arch": "choice(ffn, cnn, dec)",
        "lr": "tag(log, interval(0.0001, 0.01))",
        "latent_dim": "range(16, 65, 16)",
        "cluster": "choice(kmeans, gmm)",
    }
    space, fixed = search.parse_space(params, ["debug=tiny", "arch=cnn", "latent_dim=8,16"])
    assert list(space) == ["lr", "cluster", "latent_dim"]  # arch pinned by the command line
    assert space["lr"].distribution == FloatDistribution(0.0001, 0.01, log=True)
    assert space["cluster"].distribution == CategoricalDistribution(["kmeans", "gmm"])
    assert space["latent_dim"].distribution == CategoricalDistribution([8, 16])
    assert fixed == ["debug=tiny", "arch=cnn"]
    int_space, _ = search.parse_space({"latent_dim": "tag(log, int(interval(8, 128)))"}, [])
    assert int_space["latent_dim"].distribution == IntDistribution(8, 128, log=True)
    range_space, _ = search.parse_space({"latent_dim": "range(16, 65, 16)"}, [])
    assert range_space["latent_dim"].distribution == IntDistribution(16, 64, step=16)
    assert space["lr"].override(0.00123) == "lr=0.00123"


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_preset_composes_with_either_sampler(sampler):
    cfg = compose_config(["hparams_search=optuna", f"hydra/sweeper/sampler={sampler}"], hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("AesweepOptunaSweeper") and sweeper.n_trials == 30
    assert sweeper.sampler.seed == 0 and sampler in sweeper.sampler._target_.lower()
    assert set(sweeper.params) == {"arch", "cluster", "finetune", "lr", "latent_dim"}
    assert cfg.resume is True and cfg.train.epochs == 20


def _check(overrides: list[str]) -> None:
    """What the sweeper does with a trial: compose the real config, validate it."""
    to_experiment_config(compose("config", overrides=overrides))


BAD_SPACES = [
    ({"lrr": "interval(0.001, 0.01)"}, "search space lrr=interval(0.001, 0.01): lrr is not a key"),
    ({"arch": "choice()"}, "search space arch=choice(): "),
    ({"arch": "choice(ffn, mlp)"}, "Could not find 'arch/mlp'"),
    ({"lr": "interval(0.01, 0.0001)"}, "its low bound 0.01 is above its high bound 0.0001"),
    ({"lr": "tag(log, interval(0, 0.01))"}, "a log scale needs a low bound above 0"),
    (
        {"latent_dim": "choice(0, 8)"},
        "search space latent_dim=choice(0, 8): latent_dim=0 must be > 0",
    ),
    ({}, "search space: empty"),
]


@pytest.mark.parametrize(("params", "message"), BAD_SPACES, ids=[m for _, m in BAD_SPACES])
def test_a_bad_space_fails_with_one_line_naming_it(params, message):
    with (
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
        pytest.raises(InputError) as caught,
    ):
        space, fixed = search.parse_space(params, TINY)
        search.validate_space(space, fixed, _check)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_combinations_are_not_refused_up_front_but_skipped_when_drawn():
    """finetune=dec needs cluster=kmeans: each value is valid, some pairs are not."""
    params = {"cluster": "choice(kmeans, gmm)", "finetune": "choice(none, dec)"}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        space, fixed = search.parse_space(params, TINY)
        search.validate_space(space, fixed, _check)
        drawn = [search.ask_valid(study, space, fixed, _check)[0] for _ in range(6)]
    assert all(t.params["finetune"] == "none" or t.params["cluster"] == "kmeans" for t in drawn)
    skipped = [t for t in study.trials if search.SKIPPED_ATTR in t.user_attrs]
    assert skipped, "with 6 random draws of 4 pairs, one invalid draw is all but certain"
    assert all(
        "finetune=dec starts its centres" in t.user_attrs[search.SKIPPED_ATTR] for t in skipped
    )
    assert all(t.state == TrialState.PRUNED for t in skipped)
    assert not any(search.counts_towards_budget(t) for t in skipped)


def test_study_name_follows_what_shapes_the_results():
    space, fixed = search.parse_space({"lr": "interval(0.001, 0.01)"}, ["debug=tiny", "seed=1"])
    sampler = {"_target_": "optuna.samplers.TPESampler", "seed": 0}
    name = search.study_name(space, fixed, direction="maximize", sampler=sampler)
    assert name.startswith("search-")
    same = [
        (space, ["seed=1", "debug=tiny"], sampler),  # order
        (space, [*fixed, "resume=true", "tracking.uri=x", "train.threads=1"], sampler),
        (search.parse_space({"lr": "interval(1e-3, 1e-2)"}, [])[0], fixed, sampler),
    ]
    for other_space, other_fixed, other_sampler in same:
        assert name == search.study_name(
            other_space, other_fixed, direction="maximize", sampler=other_sampler
        )
    different = [
        (search.parse_space({"lr": "interval(0.001, 0.02)"}, [])[0], fixed, sampler),
        (space, [*fixed, "arch=cnn"], sampler),
        (space, fixed, {**sampler, "seed": 1}),
        (space, fixed, {"_target_": "optuna.samplers.RandomSampler", "seed": 0}),
    ]
    for other_space, other_fixed, other_sampler in different:
        assert name != search.study_name(
            other_space, other_fixed, direction="maximize", sampler=other_sampler
        )


# --- The study's bookkeeping, with a stand-in launcher ----------------------------------


class FakeLauncher:
    """Hydra's launcher as the search sees it: overrides in, one outcome per job out."""

    def __init__(self) -> None:
        self.batches: list[list[list[str]]] = []

    def __call__(self, batch: list[list[str]], initial_job_idx: int) -> list[search.JobOutcome]:
        assert initial_job_idx == sum(len(b) for b in self.batches)
        self.batches.append(batch)
        return [self.outcome(dict(o.split("=") for o in job)) for job in batch]

    @staticmethod
    def outcome(overrides: dict[str, str]) -> search.JobOutcome:
        lr = float(overrides["lr"])
        if lr > 0.05:  # "diverges"
            return search.JobOutcome(math.nan)
        return search.JobOutcome(1 - abs(math.log10(lr) + 2.5))


def _run(study, launcher, tmp_path, *, n_trials, n_jobs=1):
    space, fixed = search.parse_space({"lr": "tag(log, interval(0.0001, 0.1))"}, ["debug=tiny"])

    def check(overrides):
        if float(overrides[-1].split("=")[1]) < 0.0002:
            raise InputError("lr too small for this test")

    record = search.SearchRecord(
        study_name=study.study_name,
        storage=None,
        direction="maximize",
        sampler={},
        n_trials=n_trials,
        space=search.describe_space(space),
    )
    return search.run_search(
        StudyWorker(study, shared=False, created=True),
        space,
        fixed,
        n_trials=n_trials,
        n_jobs=n_jobs,
        launch=launcher,
        check=check,
        record=record,
        sweep_dir=tmp_path,
    )


def test_run_search_batches_trials_and_tells_failures(tmp_path):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(3))
    launcher = FakeLauncher()
    record = _run(study, launcher, tmp_path, n_trials=7, n_jobs=3)
    assert [len(batch) for batch in launcher.batches] == [3, 3, 1]
    jobs = [job for batch in launcher.batches for job in batch]
    assert all(job[0] == "debug=tiny" and job[1].startswith("lr=") for job in jobs)
    # each job is told its trial number, for its run's tag
    numbers = [int(job[2].removeprefix(f"++hydra.job.env_set.{TRIAL_ENV}=")) for job in jobs]
    assert sorted(numbers) == [t.number for t in study.trials if t.state != TrialState.PRUNED]
    finished = [t for t in study.trials if search.counts_towards_budget(t)]
    assert len(finished) == 7
    for trial in finished:  # each value as the job gave it; a NaN is a FAIL with its reason
        expected = FakeLauncher.outcome({"lr": str(trial.params["lr"])}).value
        if math.isnan(expected):
            assert trial.state == TrialState.FAIL and search.FAILURE_ATTR in trial.user_attrs
        else:
            assert trial.value == pytest.approx(expected)
    assert search.SearchRecord.read(tmp_path) == record
    assert record.best().value == max(t.value for t in study.trials if t.value is not None)
    assert [t.number for t in record.trials] == [t.number for t in finished]


def test_rerun_counts_finished_trials_and_runs_a_killed_searchs_trial_again(tmp_path):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    _run(study, FakeLauncher(), tmp_path, n_trials=2)
    cut_short = study.ask({"lr": FloatDistribution(0.0001, 0.1, log=True)})  # then killed
    launcher = FakeLauncher()
    record = _run(study, launcher, tmp_path, n_trials=4)
    assert [len(b) for b in launcher.batches] == [1, 1]  # no finished trial runs again
    assert launcher.batches[0][0][1] == f"lr={cut_short.params['lr']}"  # the killed one first
    states = {t.number: t.state for t in study.trials}
    assert states[cut_short.number] == TrialState.FAIL
    retry = next(t for t in study.trials if t.user_attrs.get(RETRY_ATTR) is not None)
    assert retry.user_attrs[RETRY_ATTR] == cut_short.number
    assert retry.params == cut_short.params and retry.state == TrialState.COMPLETE
    assert sum(search.counts_towards_budget(t) for t in study.trials) == 4
    assert cut_short.number not in {t.number for t in record.trials}
    assert len(record.trials) == 4 and all(t.overrides is not None for t in record.trials)
    # Nothing left to do: a rerun launches nothing, and reviews the study.
    launcher = FakeLauncher()
    record = _run(study, launcher, tmp_path, n_trials=4)
    assert launcher.batches == [] and record.closes_parent


def _other_workers_trial(study: optuna.Study, host: str) -> optuna.Trial:
    """A trial asked by a worker on ``host`` (its process is not one this machine knows)."""
    trial = study.ask({"lr": FloatDistribution(0.0001, 0.1, log=True)})
    attrs = {"aesweep.worker": f"{host}:1:x", "aesweep.host": host, "aesweep.pid": "1"}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return trial


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_a_trial_whose_heartbeat_stops_runs_again_and_its_run_is_ended(tmp_path):
    """On a database, another machine's worker is noticed as stopped by its heartbeat."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1
    )
    study = optuna.create_study(storage=storage, direction="maximize")
    worker = StudyWorker(study, shared=True, created=True, heartbeat_interval=1, grace_period=1)
    storage.heartbeat_stale_trial_callback = lambda s, t: worker._run_again(t, "no heartbeat")
    stopped = []
    worker.on_stopped = lambda trial, why: stopped.append((trial.number, why))
    beating = _other_workers_trial(study, "elsewhere")
    storage.record_heartbeat(beating._trial_id)  # then its machine is lost
    live = _other_workers_trial(study, "elsewhere")
    worker.reap()
    assert stopped == []  # within its grace period, and the other one never beat: left alone
    wait_for(lambda: worker.reap() or stopped, what="the stale trial noticed", poll=0.5)
    assert stopped == [(beating.number, "no heartbeat")]
    states = {t.number: t.state for t in study.trials}
    assert states[beating.number] == TrialState.FAIL and states[live.number] == TrialState.RUNNING
    retry = study.ask({"lr": FloatDistribution(0.0001, 0.1, log=True)})  # the next free worker's
    assert retry.user_attrs[RETRY_ATTR] == beating.number and retry.params == beating.params


def test_a_worker_on_this_machine_whose_process_is_gone_is_noticed_at_once():
    study = optuna.create_study(direction="maximize")
    worker = StudyWorker(study, shared=True, created=True)
    gone = _other_workers_trial(study, socket.gethostname())
    gone.set_user_attr("aesweep.pid", str(_dead_pid()))
    alive = _other_workers_trial(study, socket.gethostname())
    alive.set_user_attr("aesweep.pid", str(os.getpid()))  # this very process: alive
    alive.set_user_attr("aesweep.worker", "another worker in this process")
    worker.reap()
    states = {t.number: t.state for t in study.trials}
    assert states[gone.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    assert worker.others_running()  # the live one: an interrupted worker leaves the parent open


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# --- The table and the figures -----------------------------------------------------------


def _job(trial, lr, acc, status="FINISHED"):
    return JobRecord(
        run_name=f"ffn-{trial}",
        status=status,
        params={"arch.name": "ffn"},
        metrics={"test/acc": acc},
        overrides=["hparams_search=optuna", "arch=ffn", f"lr={lr}"],
        trial=trial,
    )


def test_summary_ranks_a_search_with_its_trial_numbers():
    jobs = [_job(0, 0.0012345678, 0.4), _job(3, 0.004, 0.6), _job(5, 0.05, math.nan, "FAILED")]
    columns, rows = summary_rows(jobs, None)
    assert columns[:2] == ["trial", "arch"] and "lr" in columns
    assert [row["trial"] for row in rows] == [3, 0, 5]
    markdown = to_markdown(columns, rows)
    assert "| 0 | ffn | 0.001235 |" in markdown  # drawn floats to 4 digits
    assert list(csv.DictReader(to_csv(columns, rows).splitlines()))[1]["lr"] == "0.0012345678"
    grid = [JobRecord(**{**vars(job), "trial": None}) for job in jobs]
    grid_columns, grid_rows = summary_rows(grid, None)
    assert "trial" not in grid_columns and grid_rows[1]["lr"] == "0.0012345678"


def test_best_so_far_skips_failures_and_follows_the_direction():
    values = np.array([np.nan, 0.3, 0.2, np.nan, 0.5, 0.4])
    np.testing.assert_array_equal(figures.best_so_far(values), [np.nan, 0.3, 0.3, 0.3, 0.5, 0.5])
    np.testing.assert_array_equal(
        figures.best_so_far(values, maximize=False), [np.nan, 0.3, 0.2, 0.2, 0.2, 0.2]
    )


def test_search_figures_draw_every_key():
    numbers = np.array([0, 2, 3, 5])
    values = np.array([0.4, np.nan, 0.6, 0.5])
    history = figures.search_history(numbers, values, objective="test/acc")
    assert isinstance(history, Figure) and "0.600 (trial 3)" in history.axes[0].get_title()
    params = {"arch": ["ffn", "cnn", "cnn", "dec"], "lr": [1e-3, 2e-2, 3e-3, None]}
    panels = figures.search_params(
        params, values, numbers, objective="test/acc", log_scale={"lr": True},
        categorical={"arch": True},
    )  # fmt: skip
    axes = [ax for ax in panels.axes if ax.get_xlabel()]
    assert [ax.get_xlabel() for ax in axes] == ["arch", "lr"]
    assert axes[1].get_xscale() == "log"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["cnn", "dec", "ffn"]
    figures.plt.close("all")


# --- Through the command line ------------------------------------------------------------

#: a tiny space: PCA to 2-16 dimensions, which trains nothing (skipped draws are tested above)
TINY_SEARCH = [
    "hparams_search=optuna",
    *TINY,
    "tracking.log_model=false",
    "hydra.sweeper.params=null",
    "arch=pca",
    "latent_dim=int(interval(2,16))",
]


def _runs(cwd: Path):
    client, runs = store_runs(cwd)
    parents = sorted(
        (r for r in runs if r.data.tags.get("aesweep.role") == "sweep"),
        key=lambda r: r.info.start_time,
    )
    children = {
        p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
        for p in parents
    }
    return client, parents, children


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory, empty_store):
    """One trial, then the same command with ``n_trials=3``, two trials at a time through
    the joblib launcher: the study continues."""
    cwd = tmp_path_factory.mktemp("search")
    shutil.copyfile(empty_store, cwd / "mlflow.db")
    first = run_cli(["-m", *TINY_SEARCH, "hydra.sweeper.n_trials=1"], cwd=cwd)
    assert first.returncode == 0, first.stderr[-3000:]
    parallel = ["hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"]  # not part of the study
    second = run_cli(["-m", *TINY_SEARCH, "hydra.sweeper.n_trials=3", *parallel], cwd=cwd)
    assert second.returncode == 0, second.stderr[-3000:]
    return cwd, second


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_search")
def test_tiny_search_has_one_parent_three_children_and_the_best_recorded(tiny_search):
    cwd, result = tiny_search
    client, [parent], children = _runs(cwd)  # the second command reopened the study's parent
    trials = children[parent.info.run_id]
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    assert parent.info.status == "FINISHED"
    by_trial = {int(r.data.tags["aesweep.trial"]): r for r in trials}
    assert sorted(by_trial) == [0, 1, 2]  # each job tagged with its own trial, once
    # Equal accuracies are likely on 100 digits: the best is the first trial of the best.
    best_value = max(r.data.metrics["test/acc"] for r in trials)
    best_trial = min(n for n, r in by_trial.items() if r.data.metrics["test/acc"] == best_value)
    best = by_trial[best_trial]
    assert parent.data.metrics["best/test_acc"] == best_value
    assert parent.data.metrics["best/trial"] == best_trial
    assert parent.data.tags["best.latent_dim"] == best.data.params["latent_dim"]
    assert parent.data.params["search.space.latent_dim"] == "int(interval(2,16))"
    budgets = client.get_metric_history(parent.info.run_id, "search/n_trials")
    assert [m.value for m in budgets] == [1, 3]  # reviewed after each command
    figures_logged = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert {"figures/search_history.png", "figures/search_params.png"} <= figures_logged
    output = result.stdout + result.stderr
    assert "best so far: trial" in output and "1 of 3 trials done before this run" in output
    # the joblib launcher ran the second command's trials in pairs, each on half the cores
    cores = os.cpu_count() or 1
    assert f"2 trials at a time: train.threads={max(1, cores // 2)} each" in output
    assert {by_trial[n].data.params["train.threads"] for n in (1, 2)} == {str(max(1, cores // 2))}


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_search")
def test_rerun_continues_the_study_and_its_table_lists_it_once(tiny_search, monkeypatch):
    cwd, _ = tiny_search
    client, [parent], children = _runs(cwd)
    study_name = parent.data.params["search.study"]
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{cwd / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    # The table, reviewed twice, holds each trial once: the second review replaced the first.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", parent.info.experiment_id)
    table = mlflow.load_table(SUMMARY_TABLE, run_ids=[parent.info.run_id])
    jobs = table[table["run_id"].notna()]
    assert sorted(jobs["run_id"]) == sorted(r.info.run_id for r in children[parent.info.run_id])


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_search")
def test_search_summary_ranks_the_trials_best_first(tiny_search):
    cwd, result = tiny_search
    _, [parent], children = _runs(cwd)
    sweep_dir = cwd / result.stdout.split("Sweep summary (")[1].split("/summary.md")[0]
    rows = summary_file_rows(sweep_dir)
    assert list(rows[0])[:3] == ["trial", "arch", "latent_dim"]
    jobs, reference = rows[:-1], rows[-1]
    assert reference["arch"] == "pixels (reference)"
    accs = [float(row["test/acc"]) for row in jobs]
    assert accs == sorted(accs, reverse=True)
    tagged = {r.data.tags["aesweep.trial"] for r in children[parent.info.run_id]}
    assert {row["trial"] for row in jobs} == tagged
    record = json.loads((sweep_dir / SEARCH_FILE).read_text())
    assert sorted(str(t["number"]) for t in record["trials"]) == sorted(tagged)


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_search")
def test_optuna_dashboard_shows_the_study(tiny_search):
    """docs/search.md's command to watch a study live, on the study the search made."""
    cwd, _ = tiny_search
    port = free_port()
    dashboard = subprocess.Popen(
        [Path(sys.executable).parent / "optuna-dashboard", "sqlite:///optuna.db"]
        + ["--port", str(port), "--quiet"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def studies():
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"http://127.0.0.1:{port}/api/studies", timeout=5).json()

        listed = wait_for(studies, what="optuna-dashboard's answer", process=dashboard)
        [study] = listed["study_summaries"]
        assert study["study_name"].startswith("search-") and study["directions"] == ["maximize"]
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}"
        trials = requests.get(url, timeout=30).json()["trials"]
        assert [trial["state"] for trial in trials] == ["Complete"] * 3
    finally:
        dashboard.terminate()
        dashboard.wait()


@pytest.mark.slow
def test_a_second_worker_on_a_sqlite_study_is_refused_with_one_line(workdir):
    with open(workdir / "optuna.db", "ab") as held:  # as the first worker holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_cli(["-m", *TINY_SEARCH, "hydra.sweeper.n_trials=1"], cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    line = next(line for line in output.splitlines() if "SQLite takes one at a time" in line)
    assert "hydra.sweeper.storage=sqlite:///" in line and "hydra.sweeper.storage=optuna.log" in line
    assert "postgresql+psycopg2://" in line
    _, parents, _ = _runs(workdir)
    assert parents == []  # refused before it opened anything


@pytest.mark.slow
def test_bad_search_space_fails_before_any_trial_with_one_line(workdir):
    result = run_cli(["hparams_search=optuna", *TINY, "lr=interval(0.01,0.0001)"], cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "search space lr=interval(0.01,0.0001): its low bound 0.01 is above" in output
    assert "Traceback" not in output
    client, parents, _ = _runs(workdir)
    assert parents == [] and not (workdir / "optuna.db").exists()
