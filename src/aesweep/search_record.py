"""A search's outcome as plain data: what the sweeper writes and the sweep's parent reads.

Reading it needs no Optuna: the parent run of a search (:mod:`aesweep.parent`) and
``report.py`` load this JSON file, not the study.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aesweep.names import SEARCH_FILE
from aesweep.summary import OBJECTIVE


def describe_storage(storage: str | None) -> str:
    """The storage as a log line may show it: a database URL without its password."""
    if not storage:
        return "memory (not resumable)"
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        if "://" in storage:
            return make_url(storage).render_as_string(hide_password=True)
    return storage


@dataclass
class TrialRecord:
    """One trial of the study as the parent run reports it."""

    number: int
    state: str  # COMPLETE or FAIL
    value: float | None
    params: dict[str, Any]
    overrides: list[str] | None = None  # as launched by this sweep; None: an earlier sweep's
    failure: str = ""  # a FAIL: the error its job ended on (class and message)


@dataclass
class SearchRecord:
    """A search's outcome: the study, its space and its trials (:data:`SEARCH_FILE`)."""

    study_name: str
    storage: str | None
    direction: str
    sampler: dict[str, Any]
    n_trials: int
    space: dict[str, dict[str, Any]]  # key -> {"spec", "kind", "log"}
    trials: list[TrialRecord] = field(default_factory=list)
    objective: str = OBJECTIVE  # what its jobs returned (n_test=0: the training acc)
    closes_parent: bool = True  # this worker told the study's last trial: it ends the parent

    def best(self) -> TrialRecord | None:
        """The best COMPLETE trial (the first of equals), or None."""
        done = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        sign = 1 if self.direction == "maximize" else -1
        return max(done, key=lambda t: (sign * t.value, -t.number), default=None)

    def write(self, sweep_dir: Path) -> None:
        """Write the record whole or not at all (a search killed mid-write keeps the last)."""
        path = Path(sweep_dir) / SEARCH_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.replace(partial, path)

    @classmethod
    def read(cls, sweep_dir: Path) -> SearchRecord | None:
        """The record a search left in ``sweep_dir``, or None for a grid sweep."""
        path = Path(sweep_dir) / SEARCH_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["trials"] = [TrialRecord(**t) for t in data["trials"]]
        return cls(**data)
