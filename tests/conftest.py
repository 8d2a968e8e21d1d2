"""Shared fixtures: the real config shrunk to a tiny run, and throwaway MLflow stores."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import queue
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# One thread per pytest-xdist worker, for the worker and the commands it starts: the
# workers are already as many as the cores, and a core-sized pool of TensorFlow, OpenMP
# or numba threads in each worker only makes them compete (on 2 cores the suite's CPU
# time fell from 745 s to 688 s, its wall time from 392 s to 365 s). Set a variable
# yourself to test another count: the tests pass with 1 and 2 threads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in (
        "TF_NUM_INTRAOP_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    ):
        os.environ.setdefault(variable, "1")
# numba's LLVM at -O1 instead of -O3: UMAP's numba code compiles in 30 CPU-s instead of 40
# in a fresh environment (CI's), and runs as fast on the tests' few hundred digits, whose
# embeddings the tests check for what they separate and that a seed repeats them.
os.environ.setdefault("NUMBA_OPT", "1")

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow import MlflowClient
from omegaconf import DictConfig

from aesweep.config import register_configs
from aesweep.console import prepare_process

prepare_process()  # as the commands do: the tests' own TensorFlow start-up stays quiet

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

#: the images every run of a trained network logs (``mlflow.log_image`` keys)
FIGURES = {
    "latent_grid",
    "sample_latent",
    "reconstructions",
    "loss_curve",
    "latent_map",
    "confusion",
}

#: makes any run take seconds: 200 digits, two epochs (conf/debug/tiny.yaml)
TINY = ["debug=tiny"]
#: leaves out records a test does not read and that cost seconds to make: the Keras model
#: and the t-SNE map (test_end_to_end.py checks both), but keeps the pictures
LEAN_PICTURED = ["tracking.log_model=false", "tracking.latent_map=false"]
#: and the pictures too, about a second per run (test_experiment.py checks what is left)
LEAN = [*LEAN_PICTURED, "tracking.images=false"]

register_configs()


def store_runs(folder: Path, experiment: str = "aesweep") -> tuple[MlflowClient, list]:
    """The client of ``folder``'s ``mlflow.db`` and the runs of ``experiment`` there, oldest
    first ([] if the experiment does not exist yet)."""
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    runs = [] if found is None else client.search_runs([found.experiment_id], max_results=1000)
    return client, sorted(runs, key=lambda run: run.info.start_time)


def image_steps(client: MlflowClient, run_id: str) -> dict[str, list[int]]:
    """The keys of a run's images (``mlflow.log_image(key=...)``) and the steps of each, from
    the files MLflow writes for them: ``images/<key>+step+<step>+timestamp+...png``."""
    steps: dict[str, list[int]] = {}
    for artifact in client.list_artifacts(run_id, "images"):
        name = artifact.path.split("/")[-1]
        if name.endswith(".png"):  # beside each: a .webp thumbnail for the UI
            key, _, step, *_ = name.split("+")
            steps.setdefault(key, []).append(int(step))
    return {key: sorted(values) for key, values in steps.items()}


def image_path(client: MlflowClient, run_id: str, key: str, step: int, folder: Path) -> Path:
    """Image ``key`` of ``run_id`` at ``step``, downloaded into ``folder``."""
    [name] = [
        a.path
        for a in client.list_artifacts(run_id, "images")
        if a.path.split("/")[-1].startswith(f"{key}+step+{step}+") and a.path.endswith(".png")
    ]
    return Path(client.download_artifacts(run_id, name, str(folder)))


def summary_rows(sweep_dir_or_root: Path) -> list[dict[str, str]]:
    """The rows of the one ``summary.csv`` in a sweep folder, or under ``multirun/`` of a
    project folder."""
    if (sweep_dir_or_root / "summary.csv").is_file():
        path = sweep_dir_or_root / "summary.csv"
    else:
        [path] = sweep_dir_or_root.glob("multirun/*/*/summary.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


def compose_config(overrides: list[str] = (), *, hydra: bool = False) -> DictConfig:
    """The project's real config, composed as Hydra's command line would.

    ``hydra=True`` keeps Hydra's own node (``cfg.hydra``), as a sweep callback sees it.
    """
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def assert_close_to_scale(actual, reference, *, rel: float, scale: float | None = None):
    """Assert ``|actual - reference| <= rel * scale`` everywhere; ``scale``: max |reference|.

    A float32 result is off by a fraction of the terms it was computed from, not of its own
    value: a sum of n products, added in any order, is off by at most about
    ``n * eps * sum|terms|`` (Higham, *Accuracy and Stability*, §3.1), however near zero the
    sum is. oneDNN picks kernels, hence summation orders, per CPU: on an AMD CPU an output
    of 0.038 among outputs up to 43 came out 1.7e-5 away (issue #9). So each comparison
    takes one tolerance for the whole tensor, a fraction of the size of its terms: with
    random weights and inputs no sum cancels systematically, and the tensor's largest
    magnitude stands for ``sum|terms|`` unless the caller knows better.
    """
    reference = np.asarray(reference)
    scale = float(np.abs(reference).max()) if scale is None else scale
    np.testing.assert_allclose(actual, reference, rtol=0, atol=rel * scale)


def run_cli(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, script: str = "train.py"
) -> subprocess.CompletedProcess:
    """Run ``src/<script> <args>`` (``train.py``: the command) in ``cwd`` (where mlflow.db
    lands), in this process.

    The script itself runs (``runpy``, as ``__main__``): Hydra parses the same command
    line, the same exit code comes back (``SystemExit``), and what it prints is captured.
    What a fresh interpreter would add is TensorFlow's import, seconds per command: the
    tests that check a fresh process (its first screen, signals, launchers' processes) use
    :class:`BackgroundCli`. Everything the command changes in this
    process is put back: directory, environment, signal handlers, logging, Hydra's state.
    """
    out, err = io.StringIO(), io.StringIO()
    saved_environ = dict(os.environ)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    saved_logging = (list(root.handlers), root.level, logging.root.manager.disable)
    saved_levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    # Hydra configures logging with dictConfig, which closes every handler it finds (pytest's
    # capture among them): it finds none of those, and they come back afterwards.
    saved_handler_list = logging._handlerList[:]
    saved_named_handlers = dict(logging._handlers)
    del logging._handlerList[:]
    code = 0
    try:
        for name in set(os.environ) & CLI_UNSET:
            del os.environ[name]
        os.environ.update(env or {})
        os.chdir(cwd)
        sys.argv = [str(ROOT / "src" / script), *args]
        GlobalHydra.instance().clear()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(sys.argv[0], run_name="__main__")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        GlobalHydra.instance().clear()
        _stop_loky_workers()  # spawned with this call's environment: not for the next one
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        for handler in root.handlers:
            if handler not in saved_logging[0]:
                handler.close()  # Hydra's: the job's log file, the captured console
        root.handlers[:] = saved_logging[0]
        logging._handlerList[:] = saved_handler_list
        logging._handlers.clear()
        logging._handlers.update(saved_named_handlers)
        root.setLevel(saved_logging[1])
        logging.disable(saved_logging[2])
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
    return subprocess.CompletedProcess(sys.argv, code, out.getvalue(), err.getvalue())


def _stop_loky_workers() -> None:
    """Shut down the joblib launcher's worker processes, if a command started them."""
    loky = sys.modules.get("joblib.externals.loky")
    if loky is not None:
        loky.get_reusable_executor().shutdown(wait=True)


#: what ``mlflow`` calls made in this test process may have put into ``os.environ``: a user's
#: shell has no tracking URI but the one the user sets
CLI_UNSET = {"MLFLOW_TRACKING_URI"}


def cli_env() -> dict[str, str]:
    """The environment of a user's shell, for a fresh interpreter: without :data:`CLI_UNSET`,
    nor the TensorFlow log level that importing aesweep set here (a command sets its own,
    as it would for a user)."""
    set_here = CLI_UNSET | {"TF_CPP_MIN_LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in set_here}
    return env | {"PYTHONPATH": str(ROOT / "src")}


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its tables made, to copy: a new store runs MLflow's
    database migrations, which take seconds, and every test wants a store of its own."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def workdir(tmp_path: Path, empty_store: Path) -> Path:
    """A project folder of one's own, with an empty ``mlflow.db`` (MLflow's default store)."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return tmp_path


def wait_for(condition, *, what: str, process: subprocess.Popen | None = None, poll: float = 0.2):
    """Poll ``condition()`` until it returns something true, and return that.

    No deadline tuned to this machine's speed: a slow machine only waits longer. It fails
    at once if ``process`` ends first, and after 10 minutes as a last resort (a hang).
    """
    deadline = time.monotonic() + 600
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after 10 minutes")
        time.sleep(poll)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_mlflow(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """Run ``mlflow <args>`` on ``port`` (default: a free one) of 127.0.0.1 in ``cwd``, with
    ``env`` added to the environment; yield its URL once healthy.

    The server runs in its own process group (it starts worker processes beside itself),
    and the whole group is stopped afterwards.
    """
    port = port or free_port()
    log = (cwd / f"mlflow-{args[0]}-{port}.log").open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *args, "--port", str(port)],
        cwd=cwd,
        env=cli_env() | (env or {}),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"{url}/health", timeout=5).status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, what=f"mlflow {args[0]} to answer on {url}", process=process, poll=0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class BackgroundCli:
    """``src/train.py`` in the background, its output read line by line as it comes."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        *,
        env: dict[str, str] | None = None,
        hold_at: str | None = None,
    ) -> None:
        """``hold_at``: stop reading the output after the first line matching it, until
        :meth:`release` (or :meth:`interrupt`). The command then stalls at its next few KiB
        of output (its pipe holds a page, the reader's buffer 8 KiB): a signal sent after
        that line finds it there, however slow the machine, without a margin of work it
        must redo later."""
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "src" / "train.py"), *args],
            cwd=cwd,
            env=cli_env() | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Ctrl-C as in a terminal: a suite started in the background of a
            # non-interactive shell inherits SIGINT ignored, and so would the command.
            preexec_fn=_default_sigint,
            bufsize=0,  # the reader takes what the pipe has, not 8 KiB more
        )
        self._hold_at = hold_at
        self._released = threading.Event()
        if hold_at is None:
            self._released.set()
        else:
            fcntl.fcntl(self.process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
            if not self._released.is_set() and re.search(self._hold_at, line):
                self._released.wait()

    def wait_for_line(self, pattern: str) -> str:
        """Block until a line matching ``pattern`` appears; fail if the process ends first."""

        def matching_line():
            while not self.lines.empty():
                line = self.lines.get()
                self.output.append(line)
                if re.search(pattern, line):
                    return line
            return None

        try:
            return wait_for(
                matching_line, what=f"a line matching {pattern!r}", process=self.process
            )
        except AssertionError as err:
            self.kill()  # ended, or hung for 10 minutes: its output is all there is
            raise AssertionError(f"{err}; its output ends:\n{self.finish()[-3000:]}") from None

    def finish(self, timeout: float = 600) -> str:
        """Wait for the process to end; return all its output."""
        self.process.wait(timeout=timeout)
        self._reader.join()  # it ends at the end of the output
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return "".join(self.output)

    def release(self) -> None:
        """Read the output on (``hold_at``): the command goes on."""
        self._released.set()

    def interrupt(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        self.release()  # what the command prints on its way out
        return self.process.wait(timeout=600)

    def kill(self) -> None:
        self.release()
        self.process.kill()
        self.process.wait()


def pytest_collection_modifyitems(config, items):
    """Run the slow tests first: pytest-xdist hands tests out in this order, so the short
    ones fill the workers' ends instead of one long test keeping one core busy alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
