"""A newcomer's terminal: TensorFlow's native start-up lines kept off a machine without a GPU.

On a CPU-only machine every run used to open with lines such as::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...

which read as a failure where nothing failed. Two mechanisms are needed on TensorFlow 2.21:

* ``TF_CPP_MIN_LOG_LEVEL`` silences what TensorFlow logs once it is running (the ``E`` line
  comes from probing CUDA when the first device is listed; it takes level 3).
* The ``I`` lines are logged while TensorFlow's shared libraries load (``port.cc`` and
  ``cudart_stub.cc`` twice: ``libtensorflow_framework`` and the profiler plugin each carry
  their own Abseil), before anything has read ``TF_CPP_MIN_LOG_LEVEL``, and Abseil writes
  everything to stderr until ``absl::InitializeLog()``: no variable reaches them. So the
  first ``import tensorflow`` runs with file descriptor 2 sent to a temporary file, and
  what it wrote is copied back to stderr without the Abseil lines below the level.
  Everything else (Python warnings, a traceback) comes back as written, after the import;
  only a process killed inside the import (a segfault) would lose what it wrote there.

Where a GPU is visible nothing is filtered and the default level stays 2, as before: there
the CUDA lines say whether TensorFlow found the GPU. A ``TF_CPP_MIN_LOG_LEVEL`` the user
set is kept, and ``0`` (show everything) turns the filter off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

#: Abseil's line prefix: severity letter, date, time, thread id, ``file:line]``
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \S+\s+\d+ [^\s:]+:\d+\] ")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called"


def gpu_present(root: str | Path = "/") -> bool:
    """Whether an NVIDIA driver (or WSL's GPU bridge) is visible, checked without TensorFlow.

    Errs towards "present": then the lines are simply left as TensorFlow prints them.
    """
    root = Path(root)
    dev = root / "dev"
    return (
        (root / "proc" / "driver" / "nvidia").exists()
        or (dev / "dxg").exists()
        or any(dev.glob("nvidia*"))
    )


def native_log_level(environ: MutableMapping[str, str], *, gpu: bool) -> int | None:
    """Set ``TF_CPP_MIN_LOG_LEVEL``'s default in ``environ``; return the level to enforce on
    the lines TensorFlow's libraries log while loading, or None to leave them alone.

    The default is 3 without a GPU (the CUDA probe's ``E`` line is noise there, and a real
    failure of TensorFlow's reaches Python as an exception with its message) and 2 with one,
    as before; a value already in ``environ`` is the user's and is kept.
    """
    setting = environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if gpu else "3")
    try:
        level = int(setting)
    except ValueError:
        return None  # not ours to interpret
    return level if not gpu and level > 0 else None


def prepare_process() -> None:
    """What a process that runs aesweep sets before anything imports TensorFlow or MLflow:
    called by the entry scripts and by each job (a launcher's worker runs the job without
    running ``train.py`` as a script), not on import, so that importing aesweep changes
    nothing of the importer's process.

    - TensorFlow's native start-up lines off a CPU-only terminal (:func:`quiet_native_logs`);
    - no usage telemetry from MLflow 3 (``MLFLOW_DISABLE_TELEMETRY=true``): a job talks to
      no one but its tracking store;
    - no artifact download bars (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``): they
      would print between a sweep's last job and its table.

    - MLflow's system-metrics sampler says only what goes wrong: its four start and stop
      lines per run would print through every job's log.

    A value the user set is kept.
    """
    quiet_native_logs()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sampler = logging.getLogger("mlflow.system_metrics")
    if sampler.level == logging.NOTSET:
        sampler.setLevel(logging.WARNING)


def quiet_native_logs() -> bool:
    """Keep TensorFlow's native start-up lines off a CPU-only user's terminal.

    Call before anything imports TensorFlow. Sets the ``TF_CPP_MIN_LOG_LEVEL`` default and,
    without a GPU, filters the first ``import tensorflow`` (see the module docstring). It
    imports nothing itself, so commands that never train stay fast. Returns whether the
    import will be filtered.
    """
    level = native_log_level(os.environ, gpu=gpu_present())
    if level is None or "tensorflow" in sys.modules:
        return False
    if any(isinstance(finder, _FilteredFirstImport) for finder in sys.meta_path):
        return True
    sys.meta_path.insert(0, _FilteredFirstImport("tensorflow", level))
    return True


class _FilteredFirstImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: lends the real loader of one top-level module a filtered stderr
    for its first import, and leaves ``sys.meta_path`` once it has done so."""

    def __init__(self, name: str, min_level: int) -> None:
        self.name = name
        self.min_level = min_level
        self._finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self._finding:
            return None
        self._finding = True  # the real finders answer the look-up below, not this one
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        loader = getattr(spec, "loader", None)
        if not hasattr(loader, "exec_module") or "exec_module" in getattr(loader, "__dict__", ()):
            return None  # a loader this wrapper does not know how to restore: import unfiltered
        run = loader.exec_module

        def exec_module(module):
            try:
                with _native_stderr_filtered(self.min_level):
                    run(module)
            finally:
                del loader.exec_module  # the loader's own method again

        try:
            loader.exec_module = exec_module
        except AttributeError:  # a loader with __slots__
            return None
        # Returning a spec ends the import system's walk over sys.meta_path, so leaving it
        # now is safe; later imports of the module find it in sys.modules anyway.
        sys.meta_path.remove(self)
        return spec


@contextlib.contextmanager
def _native_stderr_filtered(min_level: int) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file; copy it back without Abseil's lines of a
    severity below ``min_level`` (0 INFO .. 3 FATAL) and without its start-up banner."""
    _flush_python_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                _flush_python_stderr()  # what Python wrote goes through the filter too
                os.dup2(saved, 2)
                captured.seek(0)
                kept = b"".join(line for line in captured if _keep(line, min_level))
                while kept:
                    kept = kept[os.write(2, kept) :]
    finally:
        os.close(saved)


def _keep(line: bytes, min_level: int) -> bool:
    if line.startswith(_ABSL_BANNER):
        return False
    match = _ABSL_LINE.match(line)
    return match is None or _SEVERITY[match.group(1)] >= min_level


def _flush_python_stderr() -> None:
    if sys.stderr is not None:  # None under pythonw
        sys.stderr.flush()
