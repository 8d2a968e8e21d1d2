"""Whole runs through the real command line, read back through MLflow's client."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from conftest import TINY, run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

FIGURES = {"latent_grid.png", "sample_latent.png", "reconstructions.png", "loss_curve.png"}
SCORES = ["purity", "acc", "nmi", "ari"]


def _runs(tmp_path, experiment="aesweep"):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment)
    return client, client.search_runs([experiment.experiment_id])


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
    figures = {a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == FIGURES
    hydra_files = {a.path for a in client.list_artifacts(run.info.run_id, ".hydra")}
    assert ".hydra/config.yaml" in hydra_files


def test_single_run_records_everything_and_the_model_loads_back(tmp_path):
    result = run_cli([*TINY, "arch=cnn", "latent_dim=16"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "#/experiments/" in result.stdout + result.stderr  # the direct link to mlflow ui

    client, runs = _runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    _assert_complete(client, run, epochs=2)
    assert run.info.run_name == "cnn-relu-lr0.005-z16"
    assert run.data.params["lr"] == "0.005" and run.data.params["latent_dim"] == "16"
    assert "latent_dim=16" in run.data.tags["overrides"]
    assert (tmp_path / "mlruns").is_dir()  # artifacts beside mlflow.db, where `mlflow ui` looks

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [model_info] = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert model_info.source_run_id == run.info.run_id
    model = mlflow.keras.load_model(model_info.model_uri)
    out = model.predict(np.zeros((2, 28, 28, 1), dtype="float32"), verbose=0)
    assert out.shape == (2, 28, 28, 1)


def test_multirun_design_card_gives_one_run_per_combination(tmp_path):
    result = run_cli(["-m", *TINY, "arch=ffn,cnn", "lr=0.01,0.005"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = _runs(tmp_path)
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
    assert len(list(tmp_path.glob("multirun/*/*/*/.hydra"))) == 4


@pytest.mark.parametrize("arch", ["pixels", "pca"])
def test_baselines_are_runs_of_the_same_kind(tmp_path, arch):
    result = run_cli([*TINY, f"arch={arch}", "latent_dim=20"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, [run] = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["cluster/acc"] > 0.2  # ten digits: chance is about 0.1
    assert "train/loss" not in run.data.metrics
