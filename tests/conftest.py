"""Shared fixtures: the real config shrunk to a tiny run, and throwaway MLflow stores."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from aesweep.config import register_configs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

#: overrides that make any run take seconds: few digits, two epochs
TINY = ["data.n_samples=200", "data.n_test=100", "train.epochs=2", "train.batch_size=50"]

register_configs()


def compose_config(overrides: list[str] = ()) -> DictConfig:
    """The project's real config, composed as Hydra's command line would."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_cli(args: list[str], *, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``src/train.py`` as a user would, in ``cwd`` (where mlflow.db lands)."""
    return run_script("train.py", args, cwd=cwd, timeout=timeout)


def run_script(
    script: str, args: list[str], *, cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``src/<script>`` in a fresh interpreter, in ``cwd``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_env() -> dict[str, str]:
    """The environment of a user's shell: without the tracking URI that ``mlflow``
    calls made in this test process put into ``os.environ``."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return env | {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT / "src")}


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh sqlite MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@contextlib.contextmanager
def serve_mlflow(args: list[str], *, cwd: Path) -> Iterator[str]:
    """Run ``mlflow <args>`` on a free local port in ``cwd``; yield its URL once healthy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *args, "--port", str(port)],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, f"mlflow {args[0]} did not start"
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
