"""Which tracking store and experiment a run goes to, and the links into ``mlflow ui``."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

# Marks the experiment as model training, so MLflow 3's UI shows its runs, not GenAI traces.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
UI_RUNS_VIEW = "workflowType=machine_learning"  # MLflow 3 otherwise opens its GenAI view


def resolve_tracking_uri(uri: str | None, root: Path) -> str:
    """The tracking URI in force: ``uri``, ``$MLFLOW_TRACKING_URI``, or MLflow's default store.

    MLflow's default (``sqlite:///mlflow.db``, artifacts in ``./mlruns``) is relative to the
    working directory; making it absolute keeps every Hydra job in the one store that
    ``mlflow ui`` finds when started in ``root``.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        if "://" not in uri and not uri.startswith("sqlite:"):
            return Path(uri).expanduser().resolve().as_uri()  # a plain folder: a file store
        return uri
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Return the id of experiment ``name``, creating it if needed (safe for racing jobs)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, tags={EXPERIMENT_KIND_TAG: "custom_model_development"}
        )
    except MlflowException:
        # Another job created it between our lookup and our create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (MLflow's or Optuna's), or None."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def open_client(tracking_uri: str) -> MlflowClient:
    """``MlflowClient(tracking_uri)``, one process at a time on a local SQLite store.

    A client creates a new store's tables and runs MLflow's migrations on an old one: two
    processes doing it at once (two search workers started together, say) corrupt each
    other's migration. An exclusive lock on the database file (``flock``, apart from
    SQLite's own locks) makes the second wait for the first.
    """
    path = sqlite_file(tracking_uri)
    if path is None or not path.parent.is_dir():
        return MlflowClient(tracking_uri)  # a server, or a folder MLflow will name in its error
    with open(path, "ab") as database:  # creates an empty file: SQLite takes it as new
        fcntl.flock(database, fcntl.LOCK_EX)
        return MlflowClient(tracking_uri)  # the lock ends with the file's closing


def code_tags() -> dict[str, str]:
    """MLflow's source tags: the entry script, and the git commit of aesweep's checkout.

    MLflow finds the commit only with GitPython installed; the ``git`` command, where there
    is one, does the same without a dependency.
    """
    script = Path(sys.argv[0])
    tags = {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": str(script.resolve()) if script.is_file() else "aesweep",
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return tags  # no git here
    if commit.returncode == 0:
        tags["mlflow.source.git.commit"] = commit.stdout.strip()
    return tags


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping to ``{"a.b.c": value}``, the form MLflow params take."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def chart_link(tracking_uri: str, experiment_id: str, parent_run_id: str) -> str:
    """The runs page in its Chart view, filtered to one sweep's jobs.

    MLflow's URL carries the view (``compareRunsMode=CHART``) and the search filter, not
    which rows are expanded: MLflow 3.17 still folds the jobs under their parent, whose
    ``[+]`` then shows them in every chart.
    """
    where = urllib.parse.quote(f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return f"{ui_link(tracking_uri, experiment_id)}&compareRunsMode=CHART&searchFilter={where}"


def ui_link(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """The page of ``mlflow ui`` (or of a tracking server) that shows the runs table or a run."""
    base = tracking_uri if tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    base = base.rstrip("/")
    if run_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{UI_RUNS_VIEW}"
    return f"{base}/#/experiments/{experiment_id}/runs?{UI_RUNS_VIEW}"
