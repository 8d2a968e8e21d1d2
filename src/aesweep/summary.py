"""The sweep table: one row per job, the swept values, its scores, and pixel reference rows.

Pure functions over plain records, so that the table built at the end of a sweep and the
one rebuilt later from MLflow (``src/report.py``) are the same by construction.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RUN_ID = "run_id"  # a job row's run, for the links of the table logged in MLflow
OBJECTIVE = "test/acc"  # the sweep objective: what train.py returns and the table sorts by
REFERENCE_NAME = "pixels (reference)"


def objective_for(n_test: int) -> str:
    """The metric a job returns: held-out accuracy, or with no held-out digits (``n_test``
    0) the training digits' ``cluster/acc``."""
    return OBJECTIVE if n_test else "cluster/acc"


class JobValue(float):
    """What a job returns to the sweeper: its objective, with the metric's name, or NaN with
    the error the job ended on (a sweeper reads ``metric`` and ``failure`` if it wants them;
    to any other it is a float)."""

    metric: str
    failure: str

    def __new__(cls, value: float, *, metric: str = OBJECTIVE, failure: str = "") -> JobValue:
        job_value = super().__new__(cls, value)
        job_value.metric, job_value.failure = metric, failure
        return job_value  # pickles with both (joblib's and submitit's workers send it back)


SCORE_KEYS = [
    f"{split}/{score}" for split in ("cluster", "test") for score in ("purity", "acc", "nmi", "ari")
]
#: (CSV name, markdown header) of every column after the swept keys
VALUE_COLUMNS = [
    ("status", "status"),
    ("epochs", "epochs"),
    ("train/loss", "train loss"),
    ("val/loss", "val loss"),
    *[(key, key.replace("cluster/", "").replace("/", " ")) for key in SCORE_KEYS],
    ("minutes", "minutes"),
]


@dataclass
class JobRecord:
    """What one job of a sweep recorded: its run, swept overrides, metrics and outcome."""

    run_name: str
    status: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    overrides: Sequence[str] = ()
    failure: str = ""
    run_id: str = ""
    selection: str = ""  # which digits (data settings and seed): jobs alike share a reference
    trial: int | None = None  # a search's Optuna trial number; None in a grid


def _override_items(overrides: Sequence[str]) -> dict[str, str]:
    """``["lr=0.01", "+x=1"]`` -> ``{"lr": "0.01", "x": "1"}``."""
    items = {}
    for override in overrides:
        key, _, value = override.partition("=")
        items[key.lstrip("+~")] = value
    return items


def swept_keys(jobs: Sequence[JobRecord]) -> list[str]:
    """``arch`` and every override key whose value is not the same in all jobs."""
    per_job = [_override_items(job.overrides) for job in jobs]
    keys = sorted({key for items in per_job for key in items})
    varying = [k for k in keys if len({items.get(k) for items in per_job}) > 1 and k != "arch"]
    return ["arch", *varying]


class Sampled(float):
    """A value a search drew (``lr=0.0031415926535``): shown to 4 digits, stored in full."""

    def __str__(self) -> str:
        return f"{float(self):.4g}"


def _sampled(value: str) -> str | Sampled:
    """A drawn float as :class:`Sampled`; other values (choices, integers) as they are."""
    try:
        number = float(value)
    except ValueError:
        return value
    return Sampled(number) if any(c in value for c in ".e") else value


def _swept_values(job: JobRecord, keys: Sequence[str]) -> dict[str, str]:
    """The job's value of each swept key other than arch: as typed, else its param."""
    overrides = _override_items(job.overrides)
    values = {k: overrides.get(k, job.params.get(k, "")) for k in keys if k != "arch"}
    if job.trial is None:
        return values
    return {k: _sampled(v) for k, v in values.items()}


def job_title(job: JobRecord, keys: Sequence[str]) -> str:
    """``cnn lr=0.005``: the arch and the job's values of the swept ``keys``."""
    values = [f"{k}={v}" for k, v in _swept_values(job, keys).items()]
    return " ".join([job.params.get("arch.name", job.run_name), *values])


def _job_row(job: JobRecord, keys: Sequence[str]) -> dict[str, object]:
    row: dict[str, object] = {"arch": job.params.get("arch.name", ""), RUN_ID: job.run_id}
    if job.trial is not None:
        row[TRIAL] = job.trial
    row |= _swept_values(job, keys)
    epochs = job.metrics.get("train/epochs", job.metrics.get("epochs_reached", math.nan))
    row |= {
        "status": job.status if not job.failure else f"{job.status}: {job.failure}",
        "epochs": epochs,
        "train/loss": job.metrics.get("train/loss", math.nan),
        "val/loss": job.metrics.get("val/loss", math.nan),
        **{key: job.metrics.get(key, math.nan) for key in SCORE_KEYS},
        # what the job spent on its network: training (or loading it) and fine-tuning
        "minutes": (
            job.metrics.get("time/train_s", math.nan) + job.metrics.get("time/finetune_s", 0)
        )
        / 60,
    }
    return row


class Spread(float):
    """The mean of replicates (jobs that differ only in their seed), with their spread."""

    sd: float
    n: int

    def __new__(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        mean = statistics.fmean(finite) if finite else math.nan
        spread = super().__new__(cls, mean)
        spread.sd = statistics.stdev(finite) if len(finite) > 1 else math.nan
        spread.n = len(finite)
        return spread


REPLICATE_KEY = "seed"  # jobs that differ only in this key are replicates of one config
TRIAL = "trial"  # a search's first column: the Optuna trial number of each job
NUMERIC = [name for name, _ in VALUE_COLUMNS if name != "status"]


def replicate_rows(rows: Sequence[dict[str, object]], keys: Sequence[str]) -> list[dict]:
    """One row per config swept over several seeds: mean and spread of each value.

    ``rows`` are job and reference rows keyed by ``keys`` (the swept keys) and the value
    columns; rows alike in every key but :data:`REPLICATE_KEY` are averaged, best mean
    held-out accuracy first (reference rows averaged among themselves, last).
    """
    if REPLICATE_KEY not in keys:
        return []
    config_keys = [key for key in keys if key != REPLICATE_KEY]
    groups: dict[tuple, list[dict[str, object]]] = {}
    for row in rows:
        if row["status"] in ("FINISHED", "reference"):
            groups.setdefault(tuple(str(row.get(key, "")) for key in config_keys), []).append(row)
    means = []
    for values, members in groups.items():
        if len(members) < 2:
            continue
        mean = dict(zip(config_keys, values, strict=True))
        mean[REPLICATE_KEY] = f"mean of {len(members)}"
        mean["status"] = "reference" if members[0]["status"] == "reference" else "mean ± sd"
        mean |= {key: Spread([float(m[key]) for m in members]) for key in NUMERIC}
        means.append(mean)
    return sorted(means, key=lambda r: (r["status"] == "reference", -_objective(r)))


def _objective(row: Mapping[str, object]) -> float:
    """The held-out accuracy; without held-out digits (data.n_test=0), the training one."""
    value = row.get(OBJECTIVE, math.nan)
    if value is None or math.isnan(value):
        value = row.get("cluster/acc", math.nan)
    return -math.inf if value is None or math.isnan(value) else float(value)


def _reference_row(
    scores: Mapping[str, float], group: Sequence[dict[str, object]], selection_keys: list[str]
) -> dict[str, object]:
    """KMeans on the pixels of one group's digits, with the values that pick those digits."""
    row: dict[str, object] = {key: group[0].get(key, "") for key in selection_keys}
    row |= {"arch": REFERENCE_NAME, "status": "reference", "epochs": math.nan}
    row |= {"train/loss": math.nan, "val/loss": math.nan, "minutes": math.nan}
    return row | {key: scores.get(key, math.nan) for key in SCORE_KEYS}


def summary_rows(
    jobs: Sequence[JobRecord], references: Mapping[str, Mapping[str, float]] | None
) -> tuple[list[str], list[dict[str, object]]]:
    """The table's columns and rows: jobs best first by held-out accuracy, with references.

    Jobs are grouped by the digits they saw (``JobRecord.selection``: data settings and
    seed); each group is followed by its own pixel reference row from ``references``
    (selection -> scores), and groups come in the order of their best job. Most sweeps
    have one group: all jobs, then one reference row.

    A search's jobs (those with a ``trial``) rank the same way, best first, with their
    trial number in a first column :data:`TRIAL`.

    Returns
    -------
    columns : list of str, [trial,] the swept keys, then :data:`VALUE_COLUMNS` names
    rows : list of dict keyed by those columns
    """
    keys = swept_keys(jobs)
    groups: dict[str, list[dict[str, object]]] = {}
    for job in jobs:
        groups.setdefault(job.selection, []).append(_job_row(job, keys))
    for rows in groups.values():
        rows.sort(key=_objective, reverse=True)
    # The keys that pick the digits: the same within each group, different between groups.
    selection_keys = [
        key
        for key in keys[1:]
        if len(groups) > 1
        and all(len({str(row[key]) for row in rows}) == 1 for rows in groups.values())
    ]
    table = []
    for selection, rows in sorted(groups.items(), key=lambda g: -_objective(g[1][0])):
        table += rows
        if references and selection in references:
            table.append(_reference_row(references[selection], rows, selection_keys))
    table += replicate_rows(table, keys)
    trial = [TRIAL] if any(job.trial is not None for job in jobs) else []
    return [*trial, *keys, *(name for name, _ in VALUE_COLUMNS)], table


def _cell(value: object) -> str:
    if isinstance(value, Sampled):
        return str(value)
    if isinstance(value, Spread) and not math.isnan(value.sd):
        return f"{_cell(float(value))} ± {value.sd:.3f}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def to_markdown(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> str:
    """A GitHub-flavoured markdown table, numbers to three decimals."""
    headers = dict(VALUE_COLUMNS)
    header = [headers.get(c, c) for c in columns]
    numeric = {name for name, _ in VALUE_COLUMNS} - {"status"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|",
    ]
    for row in rows:
        cells = [_cell(row.get(c, "")).replace("|", "/") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_table(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> dict[str, list]:
    """The table column by column, as ``mlflow.log_table`` takes it: numbers as numbers
    (a mean of seed replicates as its mean), empty cells as None, and each job's run id in
    :data:`RUN_ID` (None for a reference row or a mean)."""

    def cell(value: object) -> object:
        if isinstance(value, float):
            return None if math.isnan(value) else float(value)
        return value if value is None or isinstance(value, int) else str(value)

    table = {column: [cell(row.get(column, math.nan)) for row in rows] for column in columns}
    table[RUN_ID] = [row.get(RUN_ID) or None for row in rows]
    return table


def to_csv(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> str:
    """CSV with scores at full precision, minutes to 0.001; empty cells where not applicable.

    Rows of seed replicates hold means, and their standard deviations in ``<column> sd``
    columns (present when the table has such rows).
    """
    spread = [c for c in columns if any(isinstance(row.get(c), Spread) for row in rows)]
    out = io.StringIO()
    writer = csv.DictWriter(
        out,
        fieldnames=[*columns, *(f"{c} sd" for c in spread)],
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    for row in rows:
        cells = {c: _csv_cell(c, v) for c, v in row.items()}
        cells |= {f"{c} sd": _csv_cell(c, row[c].sd) for c in spread if _has_spread(row, c)}
        writer.writerow(cells)
    return out.getvalue()


def _has_spread(row: Mapping[str, object], column: str) -> bool:
    return isinstance(row.get(column), Spread)


def _csv_cell(column: str, value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if column == "minutes":
        return round(value, 3)  # a wall time; more digits are noise, and 6.9e-07 reads badly
    return float(value) if isinstance(value, Spread | Sampled) else value
