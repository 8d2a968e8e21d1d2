"""A sweep's table tells the truth: every job a row, every reused result what a fresh run
would give, every run ended. In process through the real callback, experiment and MLflow
store (the command-line cases are in test_reliability.py)."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import pickle
import shutil
import signal
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from conftest import CONF_DIR, LEAN, TINY, compose_config, store_runs, summary_rows
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from mlflow import MlflowClient
from omegaconf import open_dict

from aesweep import data, fingerprint, search
from aesweep.config import to_experiment_config
from aesweep.experiment import run_experiment
from aesweep.names import (
    FAILURE_TAG,
    FINGERPRINT_TAG,
    FINGERPRINTS_ARTIFACT,
    MODEL_FROM_TAG,
    RESUMED_FROM_TAG,
)
from aesweep.parent import SweepParent
from aesweep.review import Sweep, load_sweep, sweep_figures
from aesweep.search import JobOutcome
from aesweep.search_record import SearchRecord
from aesweep.studies import StudyWorker
from aesweep.summary import REFERENCE_NAME, JobValue
from aesweep.sweep import MlflowSweepCallback
from aesweep.tracking import Tracker, process_tags
from hydra_plugins.aesweep_optuna_sweeper.optuna_sweeper import _value


def _store(path) -> str:
    return f"sqlite:///{path / 'mlflow.db'}"


def _run(workdir, *overrides: str, parent_run_id: str | None = None) -> float:
    cfg = compose_config([*TINY, f"tracking.uri={_store(workdir)}", *overrides])
    return run_experiment(cfg, root=workdir, overrides=list(overrides), parent_run_id=parent_run_id)


class InProcessSweep:
    """A multirun as Hydra's basic launcher runs it, in this process: the callback's start,
    each job under the parent, the callback's end."""

    def __init__(self, workdir, base: list[str], swept: list[str]) -> None:
        # LEAN: these sweeps' tests read tables and tags, not models or t-SNE maps
        self.workdir = workdir
        self.base = [*TINY, *LEAN, f"tracking.uri={_store(workdir)}", *base]
        self._init = initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3")
        self._init.__enter__()
        self.config = compose("config", overrides=self.base, return_hydra_config=True)
        with open_dict(self.config):
            self.config.hydra.overrides.task = [*self.base, *swept]
            self.config.hydra.sweep.dir = str(workdir / "multirun" / "sweep")
        self.callback = MlflowSweepCallback()
        self.callback.on_multirun_start(self.config)
        self.parent_run_id = self.callback.parent.run_id

    def job(self, *overrides: str) -> float:
        cfg = compose("config", overrides=[*self.base, *overrides])
        return run_experiment(
            cfg, root=self.workdir, overrides=list(overrides), parent_run_id=self.parent_run_id
        )

    def end(self) -> None:
        try:
            self.callback.on_multirun_end(self.config)
        finally:
            self._init.__exit__(None, None, None)

    def summary(self) -> list[dict[str, str]]:
        return summary_rows(self.workdir / "multirun" / "sweep")


@pytest.fixture(scope="session")
def idec_sweep(tmp_path_factory, empty_store):
    """``-m arch=ffn finetune=idec seed=0,1 debug=tiny``: a fine-tuning fixed for all jobs."""
    workdir = tmp_path_factory.mktemp("idec_sweep")
    shutil.copyfile(empty_store, workdir / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        # ffn with a small latent stands for dec here: any encoder, fine-tuned in every job
        fixed = ["arch=ffn", "latent_dim=10", "finetune=idec", *LEAN]
        sweep = InProcessSweep(workdir, fixed, ["seed=0,1"])
        for seed in (0, 1):
            sweep.job(f"seed={seed}")
        sweep.end()  # raised SystemExit before: the reference refused finetune=idec
    return sweep


@pytest.mark.xdist_group("idec_sweep")
def test_a_sweep_that_fine_tunes_every_job_gets_its_table_and_references(idec_sweep):
    client, runs = store_runs(idec_sweep.workdir)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    assert parent.info.status == "FINISHED"
    rows = idec_sweep.summary()
    jobs = [row for row in rows if row["arch"] == "ffn"]
    references = [row for row in rows if row["arch"] == REFERENCE_NAME]
    assert sorted(row["seed"] for row in jobs[:2]) == ["0", "1"]
    assert all(row["status"] == "FINISHED" for row in jobs[:2])
    assert sorted(row["seed"] for row in references[:2]) == ["0", "1"]  # one per seed's digits
    assert all(0 < float(row["test/acc"]) <= 1 for row in references)


@pytest.mark.xdist_group("idec_sweep")
def test_debug_tiny_caps_fine_tuning_and_says_what_its_tolerance_means(idec_sweep):
    client, runs = store_runs(idec_sweep.workdir)
    for run in runs:
        if run.data.tags.get("arch") == "ffn":
            assert run.data.params["finetune.max_steps"] == "50"
            assert run.data.metrics["finetune/steps"] <= 50


def test_a_review_that_fails_ends_the_command_with_one_line_and_the_parent_failed(
    workdir, monkeypatch, caplog
):
    monkeypatch.chdir(workdir)
    images, labels = data.load_mnist_sample()
    path = workdir / "digits.npz"
    np.savez(path, x_train=images[:400], y_train=labels[:400])
    sweep = InProcessSweep(workdir, ["data=file", f"data.path={path}"], ["arch=pixels,pca"])
    sweep.job("arch=pixels")
    path.unlink()  # the review's pixel reference cannot read the digits any more
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_:
        sweep.end()
    assert exit_.value.code == 1
    assert "the sweep's review failed: FileNotFoundError: data.path=" in caplog.text
    client, runs = store_runs(workdir)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    assert parent.info.status == "FAILED"
    assert "FileNotFoundError: data.path=" in parent.data.tags[FAILURE_TAG]


def test_a_job_whose_data_fails_before_its_run_is_a_failed_row(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    sweep = InProcessSweep(workdir, [], ["arch=pixels", "data.n_samples=200,300"])
    sweep.job("arch=pixels")
    with pytest.raises(FileNotFoundError):  # the data went away after the up-front check
        sweep.job("arch=pixels", "data=file", f"data.path={workdir / 'gone.npz'}")
    with pytest.raises(SystemExit) as exit_:
        sweep.end()
    assert exit_.value.code == 1  # a job failed: the command says so
    rows = sweep.summary()
    assert [row["status"].split(":")[0] for row in rows] == ["FINISHED", "reference", "FAILED"]
    assert "FileNotFoundError: data.path=" in rows[2]["status"]
    assert {"data", "data.path"} <= set(rows[0])  # the failed job's keys are columns


def test_three_resumes_in_a_row_all_name_the_run_that_did_the_work(workdir):
    for _ in range(3):
        _run(workdir, "arch=pca", "resume=true", *LEAN)
    client, (first, second, third) = store_runs(workdir)
    assert RESUMED_FROM_TAG not in first.data.tags
    assert second.data.tags[RESUMED_FROM_TAG] == third.data.tags[RESUMED_FROM_TAG]
    assert third.data.tags[RESUMED_FROM_TAG] == first.info.run_id
    # The review finds the third copy's latents where the work was done.
    figures = sweep_figures(client, Sweep(parent=first, children=[third], references={}))
    assert "sweep_latent_panel" in figures
    plt.close("all")


def test_a_reused_model_or_result_must_match_the_code_and_the_digits(workdir, monkeypatch):
    images, labels = data.load_mnist_sample()
    path = workdir / "digits.npz"
    np.savez(path, x_train=images[:300], y_train=labels[:300])
    job = ["arch=ffn", "data=file", f"data.path={path}", "resume=true"]
    job += ["tracking.latent_map=false", "tracking.images=false"]  # the model is logged
    _run(workdir, *job)
    # models.py edited (a layer added, say): neither the result nor the network is reused.
    code = workdir / "code"
    shutil.copytree(fingerprint.CODE_DIR, code, ignore=shutil.ignore_patterns("__pycache__"))
    with (code / "models.py").open("a") as f:
        f.write("\n# an edit\n")
    monkeypatch.setattr(fingerprint, "CODE_DIR", code)
    _run(workdir, *job)
    monkeypatch.undo()
    # The same file name with other digits in it: trained again too.
    np.savez(path, x_train=images[300:600], y_train=labels[300:600])
    _run(workdir, *job)
    client, (first, edited, other_digits) = store_runs(workdir)
    for run in (edited, other_digits):
        assert RESUMED_FROM_TAG not in run.data.tags and MODEL_FROM_TAG not in run.data.tags
        assert run.data.metrics["time/s_per_epoch"] > 0  # it trained
    hashes = {run.data.tags[FINGERPRINT_TAG] for run in (first, edited, other_digits)}
    assert len(hashes) == 3
    inputs = json.loads(
        Path(client.download_artifacts(first.info.run_id, FINGERPRINTS_ARTIFACT)).read_text()
    )
    assert set(inputs) == {"config", "training"}
    training = inputs["training"]
    assert {"tensorflow", "keras"} <= set(training["versions"])
    assert "models.py" in training["code"] and "clustering.py" not in training["code"]
    assert "aesweep.models.ffn" in training["code"]  # the arch's _target_, by its own name
    assert "clustering.py" in inputs["config"]["code"]
    assert len(training["data"]) == 64  # the digits' SHA-256
    assert "train.epochs" in training["params"]
    for not_shaping in ("train.threads", "train.finetune_max_steps", "data.allow_pickle"):
        assert not_shaping not in training["params"]
    assert "train.finetune_max_steps" in inputs["config"]["params"]
    assert not any(key.startswith("tracking.") for key in inputs["config"]["params"])


def test_an_edited_network_of_ones_own_is_trained_again(tmp_path, monkeypatch):
    module = tmp_path / "edited_net.py"
    module.write_text("def net(latent_dim):\n    return latent_dim\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from edited_net import net

    def training_hash() -> str:
        also = fingerprint.source_files(net)
        return fingerprint.training_fingerprint({"arch.name": "mine"}, data="d", also=also).hash

    before = training_hash()
    module.write_text(module.read_text() + "# a layer more\n")
    assert training_hash() != before


def _killed_sweep(uri: str, experiment_id: str, ready) -> None:
    """A sweep's command with its job inside, killed as with ``kill -9``: no handler runs."""
    client = MlflowClient(uri)
    parent = client.create_run(experiment_id, run_name="sweep", tags=process_tags())
    tracker = Tracker(tracking_uri=uri, experiment_id=experiment_id)
    tags = {FINGERPRINT_TAG: "same-config"}
    with tracker.run(run_name="killed", tags=tags, parent_run_id=parent.info.run_id):
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_resume_ends_killed_the_runs_whose_process_is_gone(workdir):
    uri = _store(workdir)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("aesweep")
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    job = fork.Process(target=_killed_sweep, args=(uri, experiment_id, ready))
    job.start()
    job.join(timeout=600)
    assert job.exitcode == -signal.SIGKILL and ready.is_set()
    # One that still runs here (this process), and one on another machine whose sweep ended.
    alive = client.create_run(
        experiment_id, tags={FINGERPRINT_TAG: "same-config", **process_tags()}
    )
    ended_parent = client.create_run(experiment_id)
    client.set_terminated(ended_parent.info.run_id, "KILLED")
    elsewhere = client.create_run(
        experiment_id,
        tags={
            FINGERPRINT_TAG: "same-config",
            "aesweep.host": "another-machine",
            "aesweep.pid": "1",
            "mlflow.parentRunId": ended_parent.info.run_id,
        },
    )
    tracker = Tracker(tracking_uri=uri, experiment_id=experiment_id)
    ended = tracker.end_stale_runs(FINGERPRINT_TAG, "same-config")
    statuses = {run.info.run_name: run.info.status for run in client.search_runs([experiment_id])}
    assert statuses["killed"] == "KILLED"
    assert statuses["sweep"] == "KILLED"  # the killed command's parent run too
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    assert client.get_run(elsewhere.info.run_id).info.status == "KILLED"
    assert len(ended) == 3
    [killed] = [r for r in client.search_runs([experiment_id]) if r.info.run_name == "killed"]
    assert "is gone" in killed.data.tags[FAILURE_TAG]


def test_a_search_names_its_best_after_the_metric_its_jobs_returned(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    base = compose_config([*TINY, *LEAN, f"tracking.uri={_store(workdir)}"])
    exp = to_experiment_config(base)
    sweep_dir = workdir / "multirun" / "search"
    parent = SweepParent(exp, sweep_dir=sweep_dir, root=workdir)
    space, fixed = search.parse_space({"seed": "choice(0)"}, ["arch=pixels", "data.n_test=0"])
    values = []

    def launch(batch, initial_job_idx):  # as the sweeper's launcher runs its jobs
        values.extend(_run(workdir, *job, parent_run_id=parent.run_id) for job in batch)
        return [JobOutcome(float(v), metric=v.metric) for v in values[-len(batch) :]]

    record = SearchRecord("s", None, "maximize", {}, 1, search.describe_space(space))
    search.run_search(
        StudyWorker(optuna.create_study(direction="maximize"), shared=False, created=True),
        space,
        fixed,
        n_trials=1,
        n_jobs=1,
        launch=launch,
        check=lambda overrides: None,
        record=record,
        sweep_dir=sweep_dir,
    )
    [value] = values
    assert value.metric == "cluster/acc"
    assert parent.review(sweep_dir) == 0
    metrics = MlflowClient(_store(workdir)).get_run(parent.run_id).data.metrics
    assert metrics["best/cluster_acc"] == pytest.approx(float(value))
    assert "best/test_acc" not in metrics
    plt.close("all")


def test_a_failed_job_tells_the_search_its_error_not_nan():
    failed = JobValue(math.nan, failure="InputError: data.n_samples=9 is too small")
    back = pickle.loads(pickle.dumps(failed))  # as a joblib or submitit worker returns it
    assert math.isnan(back) and back.failure == failed.failure
    job = JobReturn(status=JobStatus.COMPLETED, _return_value=back)
    assert _value(job) == (None, "InputError: data.n_samples=9 is too small")
    done = JobReturn(status=JobStatus.COMPLETED, _return_value=JobValue(0.5, metric="test/acc"))
    assert _value(done) == (0.5, "")


def test_a_job_without_a_run_is_a_row_from_its_folder(workdir, monkeypatch):
    # What train.py leaves when a job cannot reach its tracking server at all.
    monkeypatch.chdir(workdir)
    sweep = InProcessSweep(workdir, [], ["arch=pixels,pca"])
    sweep.job("arch=pixels")
    job_dir = workdir / "multirun" / "sweep" / "1"
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("- arch=pca\n")
    (job_dir / "aesweep_failure.txt").write_text("TrackingUnavailable: no answer\n")
    with pytest.raises(SystemExit):
        sweep.end()
    rows = sweep.summary()
    assert [row["arch"] for row in rows][-1] == ""  # no params: its config was not saved
    assert rows[-1]["status"] == "FAILED: TrackingUnavailable: no answer"
    sweep_ = load_sweep(MlflowClient(_store(workdir)), sweep.parent_run_id)
    assert len(sweep_.jobs) == 2  # report.py sees the same rows
