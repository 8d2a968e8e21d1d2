"""The look-ups behind ``resume`` and ``reuse_model``: finished runs by a fingerprint tag,
and the RUNNING runs whose process is gone, ended KILLED."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException

from aesweep.names import FAILURE_TAG, HOST_TAG, PID_TAG

log = logging.getLogger(__name__)


def process_tags() -> dict[str, str]:
    """The host and process that run a run: how a resume tells a killed job's RUNNING run
    from one that still runs (:func:`process_gone`)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_gone(tags: Mapping[str, str]) -> bool:
    """True if the run's process (its :func:`process_tags`) ran on this host and is gone."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False  # another machine's, or a run from before these tags: cannot tell
    pid = int(tags[PID_TAG])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user's
    return False


def end_run(client: MlflowClient, run_id: str, status: int, why: str) -> None:
    """End run ``run_id`` with ``status`` (``RunStatus.KILLED``, ...), saying ``why``."""
    client.set_tag(run_id, FAILURE_TAG, why[:5000])
    client.set_terminated(run_id, RunStatus.to_string(status))


def search(
    client: MlflowClient, experiment_id: str, filter_string: str, max_results: int
) -> list[Run]:
    """The runs of ``experiment_id`` that match ``filter_string``, newest first."""
    return client.search_runs(
        [experiment_id],
        filter_string=filter_string,
        max_results=max_results,
        order_by=["attributes.start_time DESC"],
    )


def find_finished(client: MlflowClient, experiment_id: str, tag: str, value: str) -> Run | None:
    """The latest FINISHED run of ``experiment_id`` whose ``tag`` equals ``value``."""
    where = f"tags.`{tag}` = '{value}' and attributes.status = 'FINISHED'"
    runs = search(client, experiment_id, where, 1)
    return runs[0] if runs else None


def end_stale_runs(client: MlflowClient, experiment_id: str, tag: str, value: str) -> list[str]:
    """End KILLED the RUNNING runs whose ``tag`` equals ``value`` and whose process is
    gone: it ran on this host and no longer exists (:func:`process_gone`), or it was a
    sweep's job and that sweep has ended. Returns their run ids.

    A job killed with SIGKILL (the OOM killer, ``kill -9``) cannot end its run; the
    next ``resume=true`` of its sweep does, and runs the job again.
    """
    ended = []
    where = f"tags.`{tag}` = '{value}' and attributes.status = 'RUNNING'"
    for run in search(client, experiment_id, where, 100):
        tags = run.data.tags
        parent_id = tags.get("mlflow.parentRunId")
        parent = _run_or_none(client, parent_id) if parent_id is not None else None
        parent_ended = parent_id is not None and (parent is None or parent.info.status != "RUNNING")
        if not (parent_ended or process_gone(tags)):
            continue  # it may still be running, on another machine say
        _end_killed(client, run, "ended KILLED by a resume")
        ended.append(run.info.run_id)
        # The whole sweep was killed (kill -9 of its command): its parent too.
        if parent is not None and not parent_ended and process_gone(parent.data.tags):
            _end_killed(client, parent, "ended KILLED by a resume of one of its jobs")
            ended.append(parent_id)
    return ended


def _end_killed(client: MlflowClient, run: Run, how: str) -> None:
    """End ``run`` KILLED, saying that its process is gone and ``how`` it was ended."""
    tags = run.data.tags
    why = f"its process ({tags.get(HOST_TAG, '?')} pid {tags.get(PID_TAG, '?')}) is gone; {how}"
    end_run(client, run.info.run_id, RunStatus.KILLED, why)
    log.warning("run %s was left RUNNING: %s", run.info.run_id, why)


def _run_or_none(client: MlflowClient, run_id: str) -> Run | None:
    """Run ``run_id``, or None where it was deleted (it then counts as ended)."""
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None
