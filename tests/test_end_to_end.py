"""The main commands as a user types them, read back through MLflow's client."""

from __future__ import annotations

import json
import shutil
import urllib.request

import mlflow
import numpy as np
import pytest
from conftest import (
    FIGURES,
    TINY,
    image_steps,
    run_cli,
    serve_mlflow,
    store_runs,
    summary_rows,
)

import report

pytestmark = pytest.mark.slow

SCORES = ["purity", "acc", "nmi", "ari"]


def _assert_complete(client, run, *, epochs):
    assert run.info.status == "FINISHED"
    for key in ["arch.name", "lr", "latent_dim", "train.epochs", "data.n_samples", "seed"]:
        assert key in run.data.params
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == list(range(1, epochs + 1))
    assert len(client.get_metric_history(run.info.run_id, "val/loss")) == epochs
    for score in SCORES:
        assert 0 <= run.data.metrics[f"cluster/{score}"] <= 1 or score == "ari"
        assert f"test/{score}" in run.data.metrics
    assert run.data.metrics["time/s_per_epoch"] > 0
    assert set(image_steps(client, run.info.run_id)) == FIGURES
    hydra_files = {a.path for a in client.list_artifacts(run.info.run_id, ".hydra")}
    assert ".hydra/config.yaml" in hydra_files


def test_single_run_records_everything_and_the_model_loads_back(workdir):
    # (A fresh interpreter's first screen, TensorFlow's start included, is checked on the
    # Ctrl-C test's command in test_reliability.py.)
    result = run_cli([*TINY, "arch=cnn", "latent_dim=16"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "#/experiments/" in result.stdout + result.stderr  # the direct link to mlflow ui

    client, runs = store_runs(workdir)
    assert len(runs) == 1
    run = runs[0]
    _assert_complete(client, run, epochs=2)
    assert run.info.run_name == "cnn-relu-lr0.005-z16"
    assert run.data.params["lr"] == "0.005" and run.data.params["latent_dim"] == "16"
    assert "latent_dim=16" in run.data.tags["overrides"]
    assert (workdir / "mlruns").is_dir()  # artifacts beside mlflow.db, where `mlflow ui` looks

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    [model_info] = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert model_info.source_run_id == run.info.run_id
    model = mlflow.keras.load_model(model_info.model_uri)
    out = model.predict(np.zeros((2, 28, 28, 1), dtype="float32"), verbose=0)
    assert out.shape == (2, 28, 28, 1)


@pytest.fixture(scope="session")  # session: xdist may interleave other modules' tests
def design_sweep(tmp_path_factory, empty_store):
    """The design-card sweep ``arch=ffn,cnn lr=0.01,0.005``, tiny, run once for this module."""
    cwd = tmp_path_factory.mktemp("sweep")
    shutil.copyfile(empty_store, cwd / "mlflow.db")
    # Without saving the models (seconds each): the single run above checks that path.
    result = run_cli(
        ["-m", *TINY, "arch=ffn,cnn", "lr=0.01,0.005", "tracking.log_model=false"], cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, result


@pytest.mark.xdist_group("design_sweep")
def test_multirun_design_card_gives_one_run_per_combination(design_sweep):
    cwd, _ = design_sweep
    client, runs = store_runs(cwd)
    jobs = [r for r in runs if r.data.tags.get("arch")]
    assert sorted(r.info.run_name for r in jobs) == [
        "cnn-relu-lr0.005-z196",
        "cnn-relu-lr0.01-z196",
        "ffn-relu-lr0.005-z100",
        "ffn-relu-lr0.01-z100",
    ]
    for run in jobs:
        _assert_complete(client, run, epochs=2)
    # multirun/<date>/<time>/<job number>/.hydra, one folder per job
    assert len(list(cwd.glob("multirun/*/*/*/.hydra"))) == 4


@pytest.mark.xdist_group("design_sweep")
def test_sweep_has_one_parent_with_the_jobs_as_children(design_sweep):
    cwd, result = design_sweep
    client, runs = store_runs(cwd)
    [parent] = [r for r in runs if r.data.tags.get("aesweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and len(runs) == 5
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.startswith("sweep-")
    assert "arch=ffn,cnn" in parent.data.tags["aesweep.command"]
    assert parent.data.tags["aesweep.sweep_dir"].startswith(str(cwd / "multirun"))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.md", "summary.csv", "figures"} <= artifacts
    sweep_figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert sweep_figures == {
        "figures/sweep_loss_curves.png",
        "figures/sweep_cluster_scores.png",
        "figures/sweep_latent_panel.png",
        "figures/sweep_latent_maps.png",
    }
    assert f"runs/{parent.info.run_id}" in result.stdout  # direct link to the parent
    assert "workflowType=machine_learning" in result.stdout
    assert "compareRunsMode=CHART&searchFilter=tags.%60mlflow.parentRunId%60" in result.stdout


@pytest.mark.xdist_group("design_sweep")
def test_summary_table_matches_the_children_metrics(design_sweep):
    cwd, result = design_sweep
    client, runs = store_runs(cwd)
    by_name = {r.info.run_name: r for r in runs}
    rows = summary_rows(cwd)
    assert len(rows) == 5 and rows[-1]["arch"] == "pixels (reference)"
    assert list(rows[0])[:3] == ["arch", "lr", "status"]  # only the swept keys, then values
    accs = [float(row["test/acc"]) for row in rows[:-1]]
    assert accs == sorted(accs, reverse=True)
    for row in rows[:-1]:
        arch, lr = row["arch"], row["lr"]
        run = by_name[f"{arch}-relu-lr{lr}-z{196 if arch == 'cnn' else 100}"]
        for key in ["cluster/acc", "cluster/nmi", "test/purity", "test/ari", "train/loss"]:
            assert float(row[key]) == pytest.approx(run.data.metrics[key], rel=1e-12)
    assert float(rows[-1]["cluster/acc"]) > 0.2
    markdown = next(cwd.glob("multirun/*/*/summary.md")).read_text()
    assert markdown.count("\n") == 2 + 5
    assert markdown.splitlines()[2] in result.stdout  # printed at the end of the sweep


@pytest.mark.xdist_group("design_sweep")
def test_report_rebuilds_the_table_from_mlflow_alone(design_sweep, capsys, monkeypatch):
    cwd, _ = design_sweep
    summary_dir = next(cwd.glob("multirun/*/*"))
    expected_csv = (summary_dir / "summary.csv").read_text()
    expected_md = (summary_dir / "summary.md").read_text()
    hidden = (cwd / "multirun").rename(cwd.parent / f"{cwd.name}-multirun")  # gone, as if deleted
    monkeypatch.chdir(cwd)  # report.py, like mlflow ui, finds ./mlflow.db
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        assert report.main(["--format", "csv"]) == 0
        assert capsys.readouterr().out == expected_csv
        assert report.main(["--experiment", "aesweep"]) == 0
        assert capsys.readouterr().out.startswith(expected_md)
    finally:
        hidden.rename(cwd / "multirun")


@pytest.mark.xdist_group("design_sweep")
def test_mlflow_ui_without_arguments_serves_the_sweep(design_sweep):
    """`mlflow ui` started in the project root finds the store and nests the jobs."""
    cwd, _ = design_sweep
    # No store arguments; one worker instead of four, and no job consumers (for GenAI
    # jobs) beside it: they only slow its start here.
    no_jobs = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with serve_mlflow(["ui", "--workers", "1"], cwd=cwd, env=no_jobs) as base:
        experiment = _get_json(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=aesweep"
        )
        experiment = experiment["experiment"]
        tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        runs = json.loads(urllib.request.urlopen(request, timeout=10).read())["runs"]
        parent_ids = [
            {t["key"]: t["value"] for t in run["data"].get("tags", [])}.get("mlflow.parentRunId")
            for run in runs
        ]
        assert len(runs) == 5 and parent_ids.count(None) == 1 and len(set(parent_ids) - {None}) == 1
        page = urllib.request.urlopen(f"{base}/", timeout=10).read().decode()
        assert "<html" in page.lower()


def _get_json(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=10).read())
