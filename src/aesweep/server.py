"""A tracking server as a job meets it: is it there, does it let us in, what if it goes away.

A job checks an HTTP server before any work (:func:`check_server`), waits out a short
outage within a bounded retry budget (:func:`use_retry_budget`), turns MLflow's refusals
and connection failures into one-line :class:`~aesweep.errors.TrackingError` s
(:func:`translate_errors`), and leaves the metrics it could not send in its folder for
``src/send_metrics.py`` (:func:`save_unsent`, :func:`send_unsent`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import read_mlflow_creds

from aesweep.errors import InputError, TrackingRefused, TrackingUnavailable

#: aesweep's retry budget against an HTTP server, where the environment sets none: MLflow
#: tries again after 0, 2, 4, 8, 16 and 32 s, so a server back within about a minute loses
#: nothing, and one that stays away ends the job after a minute (MLflow's own defaults, 7
#: retries with factor 2, wait over 4 minutes).
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
CHECK_TIMEOUT = (5, 30)  # seconds to connect to a server at the start, then to hear back
UNSENT_FILE = "unsent_metrics.json"  # in a job's folder: the metrics its server never got
SENT_FILE = "sent_metrics.json"  # what send_metrics.py renames it to once sent
SEND_COMMAND = "uv run python src/send_metrics.py"
_INVALID_HOST = "Invalid Host header"  # the start of MLflow's answer to a host not allowed


def is_http(uri: str) -> bool:
    """True for a tracking server (``http(s)://``), False for a local store."""
    return urlsplit(uri).scheme in ("http", "https")


def use_retry_budget() -> None:
    """Apply :data:`HTTP_RETRIES` to MLflow's HTTP requests, unless the environment sets them."""
    for name, value in HTTP_RETRIES.items():
        os.environ.setdefault(name, value)


def retry_budget() -> str:
    """MLflow's retry budget in force, in words: ``"6 retries over about 62 s"``."""
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7"))
    factor = float(os.environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2"))
    # urllib3 waits 0 s before the first retry, then factor * 2**(k-1) before retry k
    seconds = sum(min(factor * 2 ** (k - 1), 120) for k in range(2, retries + 1))
    return f"{retries} retries over about {seconds:.0f} s"


@contextlib.contextmanager
def no_retries() -> Iterator[None]:
    """Inside, MLflow's HTTP requests fail at once instead of retrying (for a server that
    already failed to answer, or for writes that will be tried again anyway)."""
    name = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    before = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def prepare(uri: str) -> None:
    """Before a client talks to ``uri``: for an HTTP server, aesweep's retry budget
    (:func:`use_retry_budget`) and one check that it answers (:func:`check_server`)."""
    if is_http(uri):
        use_retry_budget()
        check_server(uri)


def check_server(uri: str) -> None:
    """Raise unless the HTTP tracking server at ``uri`` answers within seconds.

    MLflow's client would retry for minutes; this asks ``/health`` once. Any answer below
    500 counts: a server behind a path prefix may serve no ``/health`` there.

    Raises
    ------
    InputError
        For a password written into the URI (it would be logged with every run).
    TrackingUnavailable
        When nothing answers, or the answer is a server error.
    """
    parts = urlsplit(uri)
    if parts.password:
        hidden = uri.replace(f":{parts.password}@", ":***@")
        raise InputError(
            f"tracking.uri={hidden!r} holds a password, which would be logged with every run: "
            "give it in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        )
    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=CHECK_TIMEOUT, **_tls())
    except requests.RequestException as err:
        raise TrackingUnavailable(
            f"tracking server {uri} does not answer ({reason(err)}): start it, or point "
            "tracking.uri (or MLFLOW_TRACKING_URI) at one that runs"
        ) from None
    if response.status_code >= 500:
        raise TrackingUnavailable(
            f"tracking server {uri} answers {response.status_code} {response.reason}"
        )


def _tls() -> dict[str, object]:
    """The TLS settings MLflow's client takes from the environment, for ``requests``."""
    settings: dict[str, object] = {}
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        settings["verify"] = False
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        settings["verify"] = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        settings["cert"] = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
    return settings


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or while handling."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def unreachable(err: BaseException) -> bool:
    """True when ``err`` comes from a server that did not answer (refused, timed out, or
    kept answering 5xx through MLflow's retries)."""
    gone = (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)
    return any(isinstance(link, gone) for link in _chain(err))


def reason(err: BaseException) -> str:
    """A few words for why a request failed, such as ``Connection refused``."""
    for link in _chain(err):
        if isinstance(link, requests.Timeout):
            return "no answer in time"
        if isinstance(link, requests.exceptions.RetryError):
            status = re.search(r"too many (\d+) error responses", str(link))
            return f"it kept answering {status.group(1)}" if status else "too many errors"
    text = " ".join(str(link) for link in _chain(err))
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return errno.group(1).strip() if errno else type(err).__name__


def refusal(err: BaseException) -> int | None:
    """401 or 403 when ``err`` is the server refusing a request, else None (MLflow's REST
    calls raise MlflowException; its artifact uploads, requests' HTTPError)."""
    for link in _chain(err):
        if isinstance(link, MlflowException) and link.get_http_status_code() in (401, 403):
            return link.get_http_status_code()
        status = getattr(getattr(link, "response", None), "status_code", None)
        if isinstance(link, requests.HTTPError) and status in (401, 403):
            return status
    return None


@contextlib.contextmanager
def translate_errors(uri: str, doing: str) -> Iterator[None]:
    """Raise MLflow's refusals and connection failures while ``doing`` as one-line errors.

    ``doing`` completes "tracking server <uri> refused ...", as in ``"a new run in
    experiment 'aesweep'"``.
    """
    try:
        yield
    except MlflowException as err:
        status = refusal(err)
        if status is not None:
            raise TrackingRefused(refusal_message(uri, doing, status, str(err))) from err
        if unreachable(err):
            raise TrackingUnavailable(
                f"tracking server {uri} stopped answering ({reason(err)}) during {doing}, "
                f"through {retry_budget()}"
            ) from err
        raise


def refusal_message(uri: str, doing: str, status: int, text: str) -> str:
    """One line on why the server refused: no login, a wrong one, or no permission."""
    creds = read_mlflow_creds()  # what MLflow's client sends: environment, ~/.mlflow/credentials
    if status == 401:
        why = (
            f"wrong password for user {creds.username!r}, or no such user"
            if creds.username and creds.password
            else "no login: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        return f"tracking server {uri} refused {doing}: 401 not authenticated ({why})"
    if _INVALID_HOST in text:
        why = "this host name is not in the server's --allowed-hosts"
    else:
        why = f"user {creds.username!r} lacks the permission: ask an admin or the owner for EDIT"
    return f"tracking server {uri} refused {doing}: 403 permission denied ({why})"


def save_unsent(
    directory: Path,
    *,
    tracking_uri: str,
    run_id: str,
    metrics: Sequence[Metric],
    status: str,
    failure_reason: str | None,
) -> Path:
    """Write what a job could not send (its metrics, and how its run ended) to ``directory``."""
    record = {
        "tracking_uri": tracking_uri,
        "run_id": run_id,
        "status": status,
        "failure_reason": failure_reason,
        "metrics": [
            {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
            for m in metrics
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / UNSENT_FILE
    path.write_text(json.dumps(record, indent=1))
    return path


def send_unsent(path: Path, *, tracking_uri: str | None = None) -> tuple[str, int]:
    """Send the metrics in a job's :data:`UNSENT_FILE` and end its run as the job did.

    ``tracking_uri`` overrides the server named in the file (one that moved). The file is
    renamed to :data:`SENT_FILE` afterwards, so that it is not sent twice. Returns the run
    id and the number of values sent.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    record = json.loads(path.read_text())
    uri = tracking_uri or record["tracking_uri"]
    run_id = record["run_id"]
    prepare(uri)
    client = MlflowClient(uri)
    metrics = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in record["metrics"]]
    with translate_errors(uri, f"the unsent metrics of run {run_id}"):
        if metrics:
            client.log_batch(run_id, metrics=metrics)  # values already there are skipped
        if client.get_run(run_id).info.status == "RUNNING":
            if record.get("failure_reason"):
                client.set_tag(run_id, "failure_reason", record["failure_reason"])
            client.set_terminated(run_id, record["status"])
    path.rename(path.with_name(SENT_FILE))
    return run_id, len(metrics)
