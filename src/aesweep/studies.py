"""Where a search's study lives, and this process as one of its workers.

Any number of processes, on one machine or many, may run the same search command on one
study: each asks for its next trial as soon as its last one ends (:func:`aesweep.search.
run_search`). What makes that safe is here:

* **The storage** (``hydra.sweeper.storage``). A database URL is Optuna's
  :class:`~optuna.storages.RDBStorage`: PostgreSQL or MySQL (``postgresql+psycopg2://...``)
  takes workers on many machines; SQLite (``sqlite:///optuna.db``, the default) takes one
  worker at a time, which a lock on its file enforces. A path without ``://``
  (``optuna.log``) is Optuna's journal file, its documented choice for several workers on
  one machine.
* **The trials of workers that stopped.** Each trial records its worker (host, process).
  A trial whose worker died (SIGKILL, a lost node) is ended FAIL and enqueued again, for
  the next free worker to run, within :attr:`StudyWorker.notice_within` seconds: at once
  when that worker ran on this machine (its process is gone), and after the heartbeat's
  grace period on a database, where every worker's running trials beat every
  ``heartbeat_interval`` seconds (Optuna's heartbeat, beaten here because Optuna's own
  thread runs only inside ``study.optimize``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage, RDBStorage, fail_stale_trials
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from aesweep.errors import InputError
from aesweep.names import HOST_TAG, PID_TAG
from aesweep.search_record import describe_storage
from aesweep.tracking.lookups import process_gone
from aesweep.tracking.store import sqlite_file

log = logging.getLogger(__name__)

WORKER_ATTR = "aesweep.worker"  # user attribute of a trial: the worker that runs it
RETRY_ATTR = "aesweep.retry_of"  # enqueued again after its worker stopped

#: ``on_stopped(trial, why)``: a trial's worker stopped; its job's run should end KILLED
OnStopped = Callable[[FrozenTrial, str], None]


def _is_sqlite(storage: str) -> bool:
    return storage.startswith("sqlite:")


def _refusal(storage: str) -> InputError:
    return InputError(
        f"hydra.sweeper.storage={describe_storage(storage)} is in use by another search worker, "
        "and SQLite takes one at a time: for several workers use a journal file on one "
        "machine (hydra.sweeper.storage=optuna.log) or PostgreSQL across machines "
        "(hydra.sweeper.storage=postgresql+psycopg2://user@host/db)"
    )


class StudyWorker:
    """One worker (this process) of one study: its trials, their heartbeat, and the trials
    of workers that stopped, run again."""

    def __init__(
        self,
        study: optuna.Study,
        *,
        shared: bool,
        created: bool,
        heartbeat_interval: float = 10,
        grace_period: float | None = None,
        lock: IO[bytes] | None = None,
    ) -> None:
        """``shared``: other workers may run trials of ``study`` (False: any RUNNING trial
        is a dead process's); ``created``: this worker created the study; ``lock``: the
        SQLite study's lock it holds until it leaves."""
        self.study = study
        self.shared = shared
        self.created = created
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = 2 * heartbeat_interval if grace_period is None else grace_period
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.on_stopped: OnStopped = lambda trial, why: None
        self._lock = lock
        self._reaping = threading.Lock()

    @property
    def notice_within(self) -> float:
        """Seconds, at most, before a stopped worker's trial is noticed by a live worker
        (one that is running a trial notices it from its heartbeat thread)."""
        return self.grace_period + self.heartbeat_interval

    # --- Its own trials -----------------------------------------------------------------

    def claim(self, trial: optuna.Trial) -> None:
        """Mark ``trial`` as this worker's, and beat its heart once."""
        trial.set_user_attr(WORKER_ATTR, self.id)
        trial.set_user_attr(HOST_TAG, socket.gethostname())
        trial.set_user_attr(PID_TAG, str(os.getpid()))
        self._beat([trial._trial_id])

    def leave(self) -> None:
        """Let go of what this worker holds (a SQLite study's lock): its search is over, and
        the next worker may be this process's own next search."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def is_mine(self, trial: FrozenTrial) -> bool:
        return trial.user_attrs.get(WORKER_ATTR) == self.id

    @contextlib.contextmanager
    def running(self, trials: Sequence[optuna.Trial]) -> Iterator[None]:
        """While ``trials`` run: beat their heart, and run again the trials of workers that
        stop meanwhile. Interrupted (Ctrl-C): ``trials`` go back to the study, to run again."""
        stop = threading.Event()
        ids = [trial._trial_id for trial in trials]

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                with contextlib.suppress(Exception):  # a storage away for a beat: next beat
                    self._beat(ids)
                    self.reap()

        thread = threading.Thread(target=beat, name="aesweep-heartbeat", daemon=True)
        if self.shared:  # alone on the study, no one needs the beat
            thread.start()
        try:
            yield
        except BaseException:
            for trial in trials:
                frozen = self.study._storage.get_trial(trial._trial_id)
                if frozen.state == TrialState.RUNNING:
                    self._end_and_run_again(frozen, "this worker was interrupted")
            raise
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()

    def tell(
        self,
        trial: optuna.Trial,
        value: float | None = None,
        *,
        state: TrialState | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> bool:
        """``study.tell`` with ``attrs`` set first; False (and a warning) if another worker
        gave the trial up meanwhile (its heartbeat was late) and runs it again."""
        try:
            for key, attr in (attrs or {}).items():
                trial.set_user_attr(key, attr)
            self.study.tell(trial, value, state=state)
        except UpdateFinishedTrialError:
            log.warning(
                "trial %d was given up by another worker (no heartbeat for %gs): its run "
                "stays in MLflow, and the study runs it again",
                trial.number,
                self.grace_period,
            )
            return False
        return True

    def _beat(self, trial_ids: Sequence[int]) -> None:
        storage = self.study._storage
        if self.shared and optuna.storages._heartbeat.is_heartbeat_enabled(storage):
            for trial_id in trial_ids:
                storage.record_heartbeat(trial_id)

    # --- Other workers' trials ----------------------------------------------------------

    def reap(self) -> None:
        """End FAIL the trials whose worker stopped, and enqueue each again."""
        with self._reaping:
            with warnings.catch_warnings():  # Optuna calls its heartbeat experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_stale_trials(self.study)  # a database's heartbeats: calls `stopped`
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                why = None if self.is_mine(trial) else _why_stopped(trial, self)
                if why is not None:
                    self._end_and_run_again(trial, why)

    def _end_and_run_again(self, trial: FrozenTrial, why: str) -> None:
        try:
            self.study.tell(trial.number, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            return  # another worker was first: it runs the trial again
        self._run_again(trial, why)

    def _run_again(self, trial: FrozenTrial, why: str) -> None:
        # Its runs are ended first: once enqueued, another worker may start the retry at
        # once, and that job's resume would end them with a vaguer reason.
        try:
            self.on_stopped(trial, why)
        finally:  # the trial runs again even if its runs could not be ended
            self.study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
            log.info("trial %d: %s; it runs again", trial.number, why)

    def others_running(self) -> bool:
        """Whether another live worker runs a trial of the study now."""
        return (
            any(
                not self.is_mine(trial) and not process_gone(trial.user_attrs)
                for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            )
            if self.shared
            else False
        )

    def idle(self) -> None:
        """Wait a moment: what is left runs on other workers, which may yet stop."""
        threading.Event().wait(min(self.heartbeat_interval, 1.0))


def _why_stopped(trial: FrozenTrial, worker: StudyWorker) -> str | None:
    """Why another worker's RUNNING ``trial`` has no live worker, or None if it may have."""
    if not worker.shared:
        return "its search was killed"  # no other worker could be running it
    if WORKER_ATTR not in trial.user_attrs:
        started = trial.datetime_start
        age = None if started is None else (datetime.now() - started).total_seconds()
        if age is not None and age <= worker.grace_period:
            return None  # just asked: its worker claims it in a moment
        return "its search, of an aesweep before workers, was killed"
    if process_gone(trial.user_attrs):
        return f"its worker {trial.user_attrs[WORKER_ATTR]} is gone"
    return None


def join_study(
    storage: str | None,
    *,
    study_name: str,
    direction: str,
    sampler: optuna.samplers.BaseSampler,
    heartbeat_interval: int,
    grace_period: int | None,
) -> StudyWorker:
    """Create the study ``study_name`` in ``storage``, or load it if another worker (or
    an earlier run) did, and join it.

    Raises
    ------
    InputError
        When another worker holds a SQLite storage, or a path's folder is missing.
    """
    lock = _lock_sqlite(storage) if storage and _is_sqlite(storage) else None
    opened = _open(storage, heartbeat_interval, grace_period)
    worker: StudyWorker | None = None

    def stopped(study: optuna.Study, trial: FrozenTrial) -> None:  # Optuna's stale check
        if worker is not None:
            worker._run_again(trial, "its worker stopped sending heartbeats")

    if isinstance(opened, RDBStorage) and opened.heartbeat_interval:
        opened.heartbeat_stale_trial_callback = stopped
        # Optuna warns at each ask that heartbeats are for study.optimize: here the
        # worker's own thread beats them (StudyWorker.running).
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed", UserWarning)
    try:
        study = optuna.create_study(
            study_name=study_name, storage=opened, sampler=sampler, direction=direction
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=opened, sampler=sampler)
        created = False
    worker = StudyWorker(
        study,
        shared=lock is None and storage is not None,
        created=created,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        lock=lock,
    )
    return worker


def _lock_sqlite(storage: str) -> IO[bytes] | None:
    """Hold an exclusive lock on a SQLite study's file until the worker leaves; another
    worker's lock refuses this one (:class:`InputError`). In memory: no lock."""
    path = sqlite_file(storage)
    if path is None:
        return None
    if not path.parent.is_dir():
        raise InputError(f"hydra.sweeper.storage={storage}: folder {path.parent} is missing")
    handle = open(path, "ab")  # noqa: SIM115 - held open: the lock lasts while the file does
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise _refusal(storage) from None
    return handle


#: PostgreSQL's codes for a table, index or type that another session created first
_ALREADY_EXISTS = {"42P07", "42710"}  # duplicate_table, duplicate_object


def _open(storage: str | None, heartbeat_interval: int, grace_period: int | None):
    """Optuna's storage for ``storage`` (a URL, a journal file's path, or None: memory)."""
    if storage is None:
        return None
    if "://" not in storage:
        path = Path(storage)
        if not path.parent.is_dir():
            raise InputError(f"hydra.sweeper.storage={storage}: folder {path.parent} is missing")
        return JournalStorage(JournalFileBackend(str(path)))
    if _is_sqlite(storage):
        return RDBStorage(storage)  # one worker: no heartbeat needed
    import sqlalchemy.exc

    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # Optuna calls the heartbeat experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            # Workers started together on a new database race to create Optuna's tables
            # (PostgreSQL says unique_violation or duplicate_table, by timing): the losers
            # find them made a moment later.
            lost_the_race = isinstance(err, sqlalchemy.exc.IntegrityError) or (
                getattr(err.orig, "pgcode", None) in _ALREADY_EXISTS
            )
            if attempt == 2 or not lost_the_race:
                raise
            threading.Event().wait(1 + attempt)
    raise AssertionError("unreachable")
