"""The orchestration in process: the real config, shrunk by debug=tiny, run against a
throwaway sqlite store, read back through MLflow's client (no subprocess, no mocks)."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import subprocess
import traceback

import mlflow
import numpy as np
import PIL.Image
import pytest
from conftest import (
    CONF_DIR,
    FIGURES,
    LEAN,
    ROOT,
    TINY,
    compose_config,
    image_path,
    image_steps,
    store_runs,
)
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient
from omegaconf import open_dict

import report
from aesweep.errors import TrainingDiverged
from aesweep.experiment import run_experiment
from aesweep.names import (
    MAP_ARTIFACT,
    MODEL_FROM_TAG,
    OBJECTIVE_TAG,
    PANEL_ARTIFACT,
    REPLICATES_TAG,
    RESUMED_FROM_TAG,
    SELECTION_TAG,
    SUMMARY_TABLE,
)
from aesweep.review import find_parent, load_sweep
from aesweep.summary import REFERENCE_NAME, to_markdown
from aesweep.sweep import MlflowSweepCallback
from aesweep.tracking import Tracker


def _run(workdir, *overrides: str) -> float:
    cfg = compose_config([*TINY, f"tracking.uri=sqlite:///{workdir / 'mlflow.db'}", *overrides])
    return run_experiment(cfg, root=workdir, overrides=list(overrides))


def test_a_run_records_the_values_in_force_its_curves_scores_and_figures(workdir):
    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    objective = _run(
        workdir, "arch=ffn", "tracking.log_model=false", "tracking.system_metrics_every=0.2"
    )
    # Every record named its run: no process-wide MLflow state is left for the next test.
    after = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    assert mlflow.active_run() is None and after == before
    client, [run] = store_runs(workdir)
    assert run.info.status == "FINISHED" and run.info.run_name == "ffn-relu-lr0.01-z100"
    params = run.data.params
    # Interpolated from the arch: the logged params are the values the run used.
    assert (params["lr"], params["latent_dim"], params["data.scaling"]) == ("0.01", "100", "zscore")
    assert params["data.n_samples"] == "200" and params["train.epochs"] == "2"
    # The values in force, not the arch's defaults beside them; lr on a log axis too.
    assert not any(key.startswith("arch.default_") for key in params)
    assert params["log10_lr"] == "-2.0"
    # MLflow's system metrics, sampled while it trained
    assert run.data.metrics["system/cpu_utilization_percentage"] >= 0
    assert run.data.metrics["system/system_memory_usage_megabytes"] > 0
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2]
    assert objective == run.data.metrics["test/acc"]
    assert run.data.tags[OBJECTIVE_TAG] == "test/acc"
    selection = json.loads(run.data.tags[SELECTION_TAG])
    assert selection == {
        "data.allow_pickle": False,
        "data.n_samples": 200,
        "data.n_test": 100,
        "data.path": None,
        "data.source": "mnist_sample",
        "seed": 0,
    }
    images = image_steps(client, run.info.run_id)
    assert set(images) == FIGURES
    # The reconstructions of the same digits after epoch 1 and at the end (epoch 2): the
    # steps MLflow's image chart slides over; a picture made once is step 0.
    assert images["reconstructions"] == [1, 2] and images["latent_grid"] == [0]
    grid = PIL.Image.open(image_path(client, run.info.run_id, "latent_grid", 0, workdir))
    assert grid.mode == "RGB" and min(grid.size) > 300


def test_without_images_a_run_keeps_its_scores_and_the_arrays_its_sweep_draws(workdir):
    _run(workdir, "arch=ffn", "tracking.log_model=false", "tracking.images=false")
    client, [run] = store_runs(workdir)
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    assert image_steps(client, run.info.run_id) == {}  # none at the end, none while training
    # What a sweep's figures read: the panel's latents and the t-SNE map's coordinates
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "latents")}
    assert {PANEL_ARTIFACT, MAP_ARTIFACT} <= logged


def test_a_run_records_its_digits_and_code(workdir):
    _run(workdir, "arch=pixels", "tracking.system_metrics_every=0.2", "tracking.images=false")
    _, [run] = store_runs(workdir)
    assert not any(key.startswith("system/") for key in run.data.metrics)  # trains nothing
    inputs = {
        {tag.key: tag.value for tag in d.tags}["mlflow.data.context"]: d.dataset
        for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "held-out"}
    assert inputs["training"].name == "mnist_sample-train-200" and inputs["training"].digest
    assert inputs["training"].digest != inputs["held-out"].digest
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    # In a git checkout (a clone, as CI's), the commit that ran; elsewhere no tag at all.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert run.data.tags["mlflow.source.git.commit"] == head.stdout.strip()
    else:
        assert "mlflow.source.git.commit" not in run.data.tags


def test_a_job_with_the_same_training_settings_reuses_the_trained_model(workdir, caplog):
    # the model is logged; the pictures and the t-SNE map are not read
    no_map = ["tracking.latent_map=false", "tracking.images=false"]
    _run(workdir, "arch=ffn", *no_map)
    _run(workdir, "arch=ffn", "cluster=gmm", *no_map)  # another clusterer on the same network
    _run(workdir, "arch=ffn", "cluster.n_init=2", "reuse_model=false", *no_map)
    client, runs = store_runs(workdir)
    first, second, third = sorted(runs, key=lambda r: r.info.start_time)
    assert second.data.tags[MODEL_FROM_TAG] == first.info.run_id
    assert MODEL_FROM_TAG not in first.data.tags and MODEL_FROM_TAG not in third.data.tags
    assert "time/s_per_epoch" not in second.data.metrics  # no epoch trained
    curves = [
        [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")]
        for run in (first, second)
    ]
    assert curves[0] == curves[1] and len(curves[0]) == 2  # the curves travel with the model

    # When in doubt, train again: a reused model whose files are gone is trained anew.
    models = [path.parent for path in workdir.glob("mlruns/**/MLmodel")]
    assert len(models) == 2  # the first and the third run's
    for folder in models:
        shutil.rmtree(folder)
    with caplog.at_level(logging.WARNING, logger="aesweep"):
        _run(workdir, "arch=ffn", *no_map)
    [warning] = [r.getMessage() for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert f"the autoencoder of run {third.info.run_id} cannot be loaded" in warning
    assert warning.endswith("training again")
    client, runs = store_runs(workdir)
    fourth = runs[-1]
    assert fourth.info.status == "FINISHED" and MODEL_FROM_TAG not in fourth.data.tags
    assert "time/s_per_epoch" in fourth.data.metrics  # it trained
    assert fourth.data.metrics["cluster/acc"] == first.data.metrics["cluster/acc"]


def test_tracking_off_records_nothing_and_still_returns_the_objective(tmp_path):
    cfg = compose_config([*TINY, "arch=pixels", "tracking=off"])
    objective = run_experiment(cfg, root=tmp_path)
    assert 0.2 < objective <= 1
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no mlruns/


def test_resume_reuses_the_finished_run_of_an_identical_config(workdir):
    first = _run(workdir, "arch=pixels", "resume=true", *LEAN)
    second = _run(workdir, "arch=pixels", "resume=true", *LEAN)
    _, runs = store_runs(workdir)
    older, newer = sorted(runs, key=lambda r: r.info.start_time)
    assert newer.data.tags[RESUMED_FROM_TAG] == older.info.run_id
    assert second == first and newer.data.metrics == older.data.metrics
    _run(workdir, "arch=pixels", "resume=true", "seed=1", *LEAN)  # another config: anew
    _, runs = store_runs(workdir)
    assert sum(RESUMED_FROM_TAG in r.data.tags for r in runs) == 1


def test_a_diverging_run_ends_failed_with_its_reason_and_epoch(workdir):
    with pytest.raises(TrainingDiverged):
        _run(workdir, "arch=ffn", "lr=1e9", "train.epochs=5")
    _, [run] = store_runs(workdir)
    assert run.info.status == "FAILED"
    assert "loss diverged" in run.data.tags["failure_reason"]
    assert 1 <= int(run.data.tags["epochs_reached"]) <= 5


def test_without_held_out_digits_the_objective_is_the_training_accuracy_and_says_so(
    workdir, caplog
):
    with caplog.at_level(logging.WARNING, logger="aesweep"):
        objective = _run(workdir, "arch=pixels", "data.n_test=0", *LEAN)
    _, [run] = store_runs(workdir)
    assert objective == run.data.metrics["cluster/acc"] and "test/acc" not in run.data.metrics
    assert run.data.tags[OBJECTIVE_TAG] == "cluster/acc"
    assert "data.n_test=0" in caplog.text and "cluster/acc" in caplog.text


def test_bad_data_fails_before_any_run_exists(workdir):
    with pytest.raises(FileNotFoundError, match="data.path="):
        _run(workdir, "data=file", f"data.path={workdir / 'missing.npz'}")
    assert store_runs(workdir)[1] == []


@pytest.fixture(scope="session")  # session: xdist may interleave other modules' tests
def seed_sweep(tmp_path_factory, empty_store):
    """``-m arch=pixels,pca seed=0,1`` through the sweep callback, in process, as Hydra's
    basic launcher runs it: start, each job under the parent, end."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = [*TINY, *LEAN, f"tracking.uri={store}"]  # its tests read tables, not pictures
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            config = compose("config", overrides=base, return_hydra_config=True)
            with open_dict(config):
                config.hydra.overrides.task = [*base, "arch=pixels,pca", "seed=0,1"]
            callback = MlflowSweepCallback()
            callback.on_multirun_start(config)
            for arch in ("pixels", "pca"):
                for seed in (0, 1):
                    job = [f"arch={arch}", f"seed={seed}"]
                    run_experiment(
                        compose("config", overrides=[*base, *job]),
                        root=tmp_path,
                        overrides=job,
                        parent_run_id=callback.parent.run_id,
                    )
            callback.on_multirun_end(config)
    return tmp_path, MlflowClient(store), callback.parent.run_id


@pytest.mark.xdist_group("seed_sweep")
def test_the_parents_table_loads_in_mlflow_and_links_every_job(seed_sweep, monkeypatch):
    _, client, parent_id = seed_sweep
    # load_table takes no client: it reads the store and experiment of the process
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", client.get_run(parent_id).info.experiment_id)
    table = mlflow.load_table(SUMMARY_TABLE, run_ids=[parent_id])
    children = load_sweep(client, parent_id).children
    jobs = table[table["run_id"].notna()]
    assert sorted(jobs["run_id"]) == sorted(r.info.run_id for r in children)
    for row in jobs.itertuples():
        assert row.run.endswith(f"/runs/{row.run_id}?workflowType=machine_learning")
    assert REFERENCE_NAME in set(table["arch"])  # the pixel references, by name
    assert {"test/acc", "cluster/nmi", "status"} <= set(table.columns)
    # The references are rows of that table and an artifact, not metrics named by a hash.
    assert not any(key.startswith("reference/") for key in client.get_run(parent_id).data.metrics)


@pytest.mark.xdist_group("seed_sweep")
def test_seed_replicates_share_the_tag_that_mlflow_groups_by(seed_sweep):
    _, client, parent_id = seed_sweep
    children = load_sweep(client, parent_id).children
    groups = {(r.data.params["arch.name"], r.data.params["seed"]): r.data.tags for r in children}
    group = {job: tags[REPLICATES_TAG] for job, tags in groups.items()}
    assert group[("pixels", "0")] == group[("pixels", "1")] != group[("pca", "0")]
    assert group[("pca", "0")] == group[("pca", "1")]
    assert group[("pca", "1")].startswith("arch=pca #")  # the overrides but the seed


@pytest.mark.xdist_group("seed_sweep")
def test_each_seed_gets_the_pixel_reference_of_its_own_digits(seed_sweep):
    _, client, parent_id = seed_sweep
    sweep = load_sweep(client, parent_id)
    assert sweep.parent.info.status == "FINISHED" and len(sweep.children) == 4
    columns, rows = sweep.table()
    assert columns[:3] == ["arch", "seed", "status"]
    per_seed, means = rows[:6], rows[6:]  # jobs and references by seed, then seed means
    references = [row for row in per_seed if row["arch"] == REFERENCE_NAME]
    assert sorted(row["seed"] for row in references) == ["0", "1"]
    for reference in references:
        # KMeans on pixels is the pixels job itself: the same digits give the same scores.
        [job] = [r for r in per_seed if r["arch"] == "pixels" and r["seed"] == reference["seed"]]
        for key in ("cluster/acc", "test/acc", "test/nmi"):
            assert reference[key] == pytest.approx(job[key], rel=1e-9)
    seed0, seed1 = (r["test/nmi"] for r in sorted(references, key=lambda r: r["seed"]))
    assert not math.isclose(seed0, seed1)  # two seeds, two sets of digits, two references
    # Each reference row follows the jobs of its own seed.
    seeds = [row["seed"] for row in per_seed]
    assert seeds in (["0"] * 3 + ["1"] * 3, ["1"] * 3 + ["0"] * 3)
    assert sorted(row["arch"] for row in means) == ["pca", "pixels", REFERENCE_NAME]
    assert {row["seed"] for row in means} == {"mean of 2"}


@pytest.mark.xdist_group("seed_sweep")
def test_summary_files_and_report_agree_with_mlflow(seed_sweep, capsys):
    tmp_path, client, parent_id = seed_sweep
    [summary_md] = tmp_path.glob("multirun/*/*/summary.md")
    [summary_csv] = tmp_path.glob("multirun/*/*/summary.csv")
    columns, rows = load_sweep(client, parent_id).table()
    assert summary_md.read_text() == to_markdown(columns, rows)
    assert "e-0" not in summary_csv.read_text()  # minutes rounded, not 6.9e-07
    experiment_id = client.get_run(parent_id).info.experiment_id
    assert find_parent(client, experiment_id).info.run_id == parent_id
    store = client.tracking_uri
    assert report.main(["--tracking-uri", store, "--format", "csv"]) == 0
    assert capsys.readouterr().out == summary_csv.read_text()
    assert report.main(["--tracking-uri", store, "--sweep", "no-such-sweep"]) == 1
    assert "no --sweep='no-such-sweep'" in capsys.readouterr().err


JOBS, ROUNDS = 8, 5  # jobs logging together, and how many times: a race lost in every round


def _log_digits_job(
    uri: str, source: str, go: multiprocessing.synchronize.Barrier, number: int
) -> None:
    """A job of a parallel sweep, in a forked process: start a run; then, in each round,
    wait until every job is ready and log the same digits as the others. Exit 0, or 1
    with the traceback."""
    try:
        with Tracker(tracking_uri=uri, experiment_id="0").run(
            run_name=f"job-{number}", tags={}
        ) as tracker:
            for round_ in range(ROUNDS):
                digits = np.full((20, 10), round_, dtype="float32")
                go.wait()
                tracker.log_digits(
                    digits, np.arange(20), name=f"digits-{round_}", source=source, context="train"
                )
    except BaseException:
        traceback.print_exc()
        go.abort()  # the other jobs stop waiting for this one
        os._exit(1)
    os._exit(0)  # not pytest's exit handlers: this is a fork of its worker


def test_parallel_jobs_logging_the_same_digits_at_once_all_record_them(workdir):
    # MLflow's store looks a dataset up, then inserts it: of jobs that log the same digits
    # at the same moment, some broke the unique key and failed (seen once in the joblib
    # sweep of test_reliability.py; without aesweep's retry, here in most rounds).
    # Forked before this process opens the store, each job has a database connection of
    # its own, as jobs in separate processes do; they log into the Default experiment.
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    fork = multiprocessing.get_context("fork")
    go = fork.Barrier(JOBS, timeout=600)
    args = (uri, str(workdir), go)
    jobs = [fork.Process(target=_log_digits_job, args=(*args, n)) for n in range(JOBS)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=600)
    assert [job.exitcode for job in jobs] == [0] * JOBS  # the tracebacks are in the output
    runs = MlflowClient(uri).search_runs(["0"])
    assert len(runs) == JOBS and all(run.info.status == "FINISHED" for run in runs)
    for run in runs:
        assert sorted(i.dataset.name for i in run.inputs.dataset_inputs) == [
            f"digits-{round_}" for round_ in range(ROUNDS)
        ]
