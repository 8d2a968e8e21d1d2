"""Search instead of grids: an Optuna study over a space written in Hydra's override grammar.

The project's Hydra sweeper (``hydra/sweeper=aesweep_optuna``, the plugin in
``src/hydra_plugins/aesweep_optuna_sweeper``) is a thin adapter over :func:`run_search`:
Optuna's ask/tell API proposes each trial's overrides, Hydra's launcher runs them as jobs
(so every trial is an ordinary job of the sweep, with its MLflow child run), and the job's
return value (held-out ``test/acc``) goes back to the study.

A space is ``key: spec`` pairs, ``spec`` in Hydra's grammar: ``choice(ffn,cnn)`` (or
``ffn,cnn``), ``range(16,65,16)``, ``interval(1e-4,1e-2)``, ``int(interval(8,128))``, and
``tag(log, ...)`` for a log scale. The study lives in a persistent storage under a name
derived from the search, so the same command resumes it. The outcome goes to the sweep
folder as a :class:`~aesweep.search_record.SearchRecord`, which the sweep's parent run
reads (:mod:`aesweep.parent`) without Optuna.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer, ValueType
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.trial import FrozenTrial, TrialState

from aesweep.errors import InputError
from aesweep.fingerprint import shapes_result
from aesweep.names import TRIAL_ENV
from aesweep.search_record import SearchRecord, TrialRecord
from aesweep.studies import RETRY_ATTR, StudyWorker

log = logging.getLogger(__name__)

#: user attributes of a study's trials (see :func:`counts_towards_budget`)
FAILURE_ATTR = "aesweep.failure"  # the job ran and failed: a NaN or an error
SKIPPED_ATTR = "aesweep.skipped"  # PRUNED, never launched: the drawn config is invalid
SURPLUS_ATTR = "aesweep.surplus"  # FAIL, never launched: other workers filled the budget
MAX_SKIPPED = 100  # invalid draws in a row before the space is declared empty

#: ``check(overrides)`` composes one job's config and raises if it is invalid
Check = Callable[[list[str]], None]
#: ``launch(batch, initial_job_idx)`` runs one batch of jobs, returning their values or errors
Launch = Callable[[list[list[str]], int], list["JobOutcome"]]
#: ``reseed(n)``: the sampler to draw the trial after ``n`` trials (its seed + n)
Reseed = Callable[[int], optuna.samplers.BaseSampler]


# --- The space -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One searched key: its override key (``+`` included), the spec as typed, Optuna's
    distribution, and the values that :func:`validate_space` composes."""

    key: str
    spec: str
    distribution: BaseDistribution
    probes: tuple[Any, ...]

    def override(self, value: Any) -> str:
        """``lr=0.0031``: the override that sets this key to ``value``."""
        return f"{self.key}={Transformer.str(value)}"


def _fail(line: str, why: str) -> InputError:
    return InputError(f"search space {line}: {why}")


def dimension(override: Override, line: str) -> Dimension:
    """The :class:`Dimension` of one sweep override (``choice``, ``range``, ``interval``).

    Raises
    ------
    InputError
        Naming the override, for a glob, an empty range, a low bound above the high one or
        a log scale that reaches zero.
    """
    key, value = override.get_key_element(), override.value()
    spec = line.partition("=")[2]
    if override.is_choice_sweep() or override.is_range_sweep():
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            raise _fail(line, "glob() is not a search dimension; use choice(...)")
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        if not choices:
            raise _fail(line, "the range is empty")
        step = getattr(value, "step", None)
        if override.is_range_sweep() and all(isinstance(c, int) for c in choices) and step > 0:
            distribution = IntDistribution(choices[0], choices[-1], step=int(step))
            return Dimension(key, spec, distribution, (choices[0], choices[-1]))
        return Dimension(key, spec, CategoricalDistribution(choices), tuple(choices))
    if override.is_interval_sweep():
        low, high, log_scale = value.start, value.end, "log" in value.tags
        if low > high:
            raise _fail(line, f"its low bound {low} is above its high bound {high}")
        if log_scale and low <= 0:
            raise _fail(line, f"a log scale needs a low bound above 0, not {low}")
        if isinstance(low, int) and isinstance(high, int):
            distribution = IntDistribution(low, high, log=log_scale)
        else:
            distribution = FloatDistribution(float(low), float(high), log=log_scale)
        return Dimension(key, spec, distribution, (low, high))
    raise _fail(line, "use choice(...), range(...) or interval(...)")


def parse_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str]
) -> tuple[dict[str, Dimension], list[str]]:
    """The search space and the fixed overrides of a search.

    ``params`` (``hydra.sweeper.params``) come first, then the command line's
    ``arguments``; a later entry for a key replaces an earlier one, so ``arch=cnn`` on the
    command line pins ``arch`` and ``lr='interval(1e-3,1e-2)'`` replaces the preset's range.

    Returns
    -------
    space : dict mapping each searched key to its :class:`Dimension`, in order
    fixed : list of str, the overrides every trial gets
    """
    parser = OverridesParser.create()
    entries: dict[str, Dimension | str] = {}
    lines = [f"{key}={spec}" for key, spec in (params or {}).items()] + list(arguments)
    for line in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as err:
            raise _fail(line, _first_line(err)) from None
        key = override.get_key_element()
        entries.pop(key, None)
        entries[key] = dimension(override, line) if override.is_sweep_override() else line
    space = {key: entry for key, entry in entries.items() if isinstance(entry, Dimension)}
    fixed = [entry for entry in entries.values() if isinstance(entry, str)]
    return space, fixed


def validate_space(space: Mapping[str, Dimension], fixed: Sequence[str], check: Check) -> None:
    """Compose a job for each choice and each bound of each key, the others left as
    configured: an unknown key, an unknown option or a value out of range fails here.

    Combinations of keys are not tried (they are many, and some are legitimately
    invalid: ``finetune=dec`` with ``cluster=gmm``); :func:`ask_valid` skips those.

    Raises
    ------
    InputError
        ``search space <key>=<spec>: <why>``, for the first value that does not compose.
    """
    if not space:
        raise InputError(
            "search space: empty; set hydra.sweeper.params or pass a sweep such as "
            "'lr=interval(0.001,0.01)'"
        )
    for dim in space.values():
        for value in dim.probes:
            try:
                check([*fixed, dim.override(value)])
            except (InputError, FileNotFoundError, HydraException) as err:
                raise _fail(f"{dim.key}={dim.spec}", _first_line(err)) from None


def _first_line(err: Exception) -> str:
    """The line of an error a user needs; Hydra's two lines for an unknown key as one."""
    text = str(err)
    if "To append to your config use +" in text:  # "Could not override 'lrr'."
        return f"{text.split(chr(39))[1]} is not a key of the config"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


# --- The study -------------------------------------------------------------------------


def study_name(
    space: Mapping[str, Dimension],
    fixed: Sequence[str],
    *,
    direction: str,
    sampler: Mapping[str, Any],
) -> str:
    """``search-<hash>`` of what shapes the search's results, so one command, one study.

    The hash covers the space, the fixed overrides (less those of keys that change no
    result, :data:`aesweep.fingerprint.NOT_A_RESULT`: adding resume=true still resumes the
    study), the direction and the sampler's settings, not the number of trials: rerunning
    with more trials continues the study.
    """
    shaping = sorted(o for o in fixed if shapes_result(o.partition("=")[0]))
    described = {
        "space": {key: distribution_to_json(dim.distribution) for key, dim in space.items()},
        "fixed": shaping,
        "direction": direction,
        "sampler": dict(sampler),
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    return f"search-{digest.hexdigest()[:10]}"


def counts_towards_budget(trial: FrozenTrial) -> bool:
    """A trial that ran to its end: COMPLETE, or FAIL because its job failed.

    Not counted: draws skipped as invalid (PRUNED), trials whose worker stopped (enqueued
    again, :class:`~aesweep.studies.StudyWorker`) and draws beyond the budget.
    """
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and FAILURE_ATTR in trial.user_attrs


# --- The trials ------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """What one launched job gave back: its value, or why it has none."""

    value: float | None
    failure: str = ""
    metric: str = ""  # the objective's name, as the job says (cluster/acc without held-out)


def describe_space(space: Mapping[str, Dimension]) -> dict[str, dict[str, Any]]:
    """What the record keeps of each dimension: the spec, numeric or not, log scale."""
    described = {}
    for key, dim in space.items():
        numeric = not isinstance(dim.distribution, CategoricalDistribution)
        described[key] = {
            "spec": dim.spec,
            "kind": "numeric" if numeric else "categorical",
            "log": bool(getattr(dim.distribution, "log", False)),
        }
    return described


def trial_overrides(
    space: Mapping[str, Dimension], fixed: Sequence[str], params: Mapping[str, Any]
) -> list[str]:
    """The overrides of the job that evaluates ``params``: the fixed ones, then the drawn."""
    return [*fixed, *(dim.override(params[key]) for key, dim in space.items() if key in params)]


def ask_valid(
    study: optuna.Study,
    space: Mapping[str, Dimension],
    fixed: Sequence[str],
    check: Check,
    *,
    claim: Callable[[optuna.Trial], None] = lambda trial: None,
    reseed: Reseed | None = None,
) -> tuple[optuna.Trial, list[str]]:
    """Ask the study for a trial whose config composes and validates.

    An invalid draw (``finetune=dec`` with ``cluster=gmm``, say) is told PRUNED with the
    reason in its user attribute :data:`SKIPPED_ATTR`, launches nothing and costs no
    budget; the sampler draws again. PRUNED, not FAIL: TPE ignores failed trials, and,
    its choice nearly fixed by the results so far, would draw the same invalid pair again
    and again; it counts pruned ones among the worst, and moves away from them.

    ``claim`` marks each trial as its worker's as soon as it is asked; ``reseed(n)`` gives
    the sampler for a study of ``n`` trials (a seeded search draws the same trials again).

    Raises
    ------
    InputError
        After :data:`MAX_SKIPPED` invalid draws in a row, with the last reason.
    """
    distributions = {key: dim.distribution for key, dim in space.items()}
    for _ in range(MAX_SKIPPED):
        if reseed is not None:
            study.sampler = reseed(len(study.get_trials(deepcopy=False)))
        trial = study.ask(distributions)
        claim(trial)
        overrides = trial_overrides(space, fixed, trial.params)
        try:
            check(overrides)
        except (InputError, FileNotFoundError, HydraException) as err:
            why = _first_line(err)
            trial.set_user_attr(SKIPPED_ATTR, why)
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d skipped, an invalid config: %s", trial.number, why)
            continue
        return trial, overrides
    raise InputError(f"search space: no valid config in {MAX_SKIPPED} draws; the last: {why}")


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if counts_towards_budget(t)]


def run_search(
    worker: StudyWorker,
    space: Mapping[str, Dimension],
    fixed: Sequence[str],
    *,
    n_trials: int,
    n_jobs: int,
    launch: Launch,
    check: Check,
    record: SearchRecord,
    sweep_dir: Path,
    reseed: Reseed | None = None,
) -> SearchRecord:
    """Run trials of ``worker``'s study, ``n_jobs`` at a time, until the study holds
    ``n_trials`` finished trials, those of every worker and every earlier run included.

    Other workers may run the same study meanwhile: each batch is asked as soon as the
    last one ends, a draw beyond the budget is not launched, and once nothing is left to
    ask this worker waits for the others' trials (any of which may have to run again).
    ``record`` is filled in from the whole study and written to ``sweep_dir`` after each
    batch; ``record.closes_parent`` says whether this worker told the study's last trial.
    """
    study = worker.study
    worker.reap()  # the trials of a killed search, or of a worker that stopped, run again
    done_before = len(_finished(study))
    log.info("%d of %d trials done before this run", done_before, n_trials)
    job_idx = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        free = n_trials - sum(map(counts_towards_budget, trials)) - running
        if free <= 0 and running == 0:
            break
        if free <= 0:  # the rest runs on other workers
            worker.idle()
            worker.reap()
            continue
        asked = _ask_within_budget(worker, space, fixed, check, min(n_jobs, free), n_trials, reseed)
        if not asked:
            continue
        with worker.running([trial for trial, _ in asked]):
            env = [f"++hydra.job.env_set.{TRIAL_ENV}={trial.number}" for trial, _ in asked]
            batch = [[*overrides, e] for (_, overrides), e in zip(asked, env, strict=True)]
            outcomes = launch(batch, job_idx)
        job_idx += len(asked)
        for (trial, _), outcome in zip(asked, outcomes, strict=True):
            record.objective = outcome.metric or record.objective  # as the jobs name it
            _tell(worker, trial, outcome)
        _fill(record, study, space, fixed)
        record.write(sweep_dir)
        _log_progress(record, {trial.number for trial, _ in asked})
    _fill(record, study, space, fixed)
    finished = _finished(study)
    last = max(finished, key=lambda t: (t.datetime_complete, t.number), default=None)
    # One worker reviews the study: the one that told its last trial (or, when the study
    # was complete before this command, this one).
    record.closes_parent = done_before >= n_trials or last is None or worker.is_mine(last)
    record.write(sweep_dir)
    return record


def _ask_within_budget(
    worker: StudyWorker,
    space: Mapping[str, Dimension],
    fixed: Sequence[str],
    check: Check,
    count: int,
    n_trials: int,
    reseed: Reseed | None,
) -> list[tuple[optuna.Trial, list[str]]]:
    """Up to ``count`` valid trials, less those beyond the budget: another worker may have
    asked the study's last trials in the same moment (the earlier-numbered trial wins)."""
    study = worker.study
    asked = []
    for _ in range(count):
        trial, overrides = ask_valid(study, space, fixed, check, claim=worker.claim, reseed=reseed)
        ahead = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number < trial.number
            and (t.state == TrialState.RUNNING or counts_towards_budget(t))
        ]
        if len(ahead) >= n_trials:
            surplus = {SURPLUS_ATTR: "other workers filled the study's budget"}
            worker.tell(trial, state=TrialState.FAIL, attrs=surplus)
            if RETRY_ATTR in trial.user_attrs:  # a stopped worker's trial: not dropped
                study.enqueue_trial(
                    trial.params, user_attrs={RETRY_ATTR: trial.user_attrs[RETRY_ATTR]}
                )
            break
        asked.append((trial, overrides))
    return asked


def _fill(
    record: SearchRecord, study: optuna.Study, space: Mapping[str, Dimension], fixed: Sequence[str]
) -> None:
    """The record's trials: every finished trial of the study, whichever worker ran it."""
    record.trials = [
        _record(trial, trial_overrides(space, fixed, trial.params)) for trial in _finished(study)
    ]


def _tell(worker: StudyWorker, trial: optuna.Trial, outcome: JobOutcome) -> None:
    """Tell the study a job's value; a NaN or a failed job is a FAIL with its reason."""
    value = outcome.value
    if value is None or not math.isfinite(value):
        failure = outcome.failure or f"the job returned {value}"
        worker.tell(trial, state=TrialState.FAIL, attrs={FAILURE_ATTR: failure})
    else:
        worker.tell(trial, value)


def _record(trial: FrozenTrial, overrides: list[str] | None = None) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        overrides=overrides,
        failure=trial.user_attrs.get(FAILURE_ATTR, ""),
    )


def _log_progress(record: SearchRecord, numbers: set[int]) -> None:
    """One line per trial just told, and the best so far."""
    for trial in record.trials:
        if trial.number in numbers:
            shown = (
                f"failed ({trial.failure or 'no reason recorded'})"
                if trial.value is None
                else f"{record.objective} {trial.value:.4f}"
            )
            params = " ".join(f"{key}={_short(value)}" for key, value in trial.params.items())
            log.info("trial %d: %s  (%s)", trial.number, shown, params)
    best = record.best()
    if best is not None:
        log.info("best so far: trial %d, %s %.4f", best.number, record.objective, best.value)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
