"""One search, two ways to run two trials at a time; and what a shared study costs per trial.

    uv run python benchmarks/search_workers.py                      # both parts, about 5 minutes
    uv run python benchmarks/search_workers.py --postgres postgresql+psycopg2://u:p@host/db
    uv run python benchmarks/search_workers.py --skip-search        # the storages only

1. The same 12-trial search (random draws of arch in ffn, cnn, dec and of lr; the
   preset's 20 epochs on the embedded 3000 digits) as one process with
   ``hydra.sweeper.n_jobs=2`` under the joblib launcher (batches of two: a batch waits for
   its slower trial) and as two worker processes of one thread each on one journal-file
   study (each asks as soon as it is free). Wall time of each, and each trial's seconds
   from its start to its tell (in a batch: when the whole batch is done).
2. The storage's cost per trial: ask, claim (three user attributes and a heartbeat) and
   tell, as a worker does them, on SQLite, the journal file and, with ``--postgres``, a
   PostgreSQL database, median of 50.

It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import optuna  # noqa: E402
from optuna.distributions import CategoricalDistribution, FloatDistribution  # noqa: E402

from aesweep.studies import join_study  # noqa: E402

N_TRIALS = 12
SEARCH = [
    "-m",
    "hparams_search=optuna",
    "hydra.sweeper.params=null",
    "arch=choice(ffn,cnn,dec)",
    "lr=tag(log,interval(0.001,0.01))",
    "cluster=kmeans",
    "finetune=none",
    "tracking.log_model=false",
    f"hydra.sweeper.n_trials={N_TRIALS}",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.study_name=bench",
]


def train(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "train.py"), *args],
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def trial_seconds(storage: str) -> list[tuple[int, str, float]]:
    study = optuna.load_study(study_name="bench", storage=storage)
    return [
        (t.number, t.params["arch"], (t.datetime_complete - t.datetime_start).total_seconds())
        for t in study.trials
        if t.state.name == "COMPLETE"
    ]


def run_search(folder: Path, workers: int) -> tuple[float, list[tuple[int, str, float]]]:
    folder.mkdir(parents=True)
    if workers == 1:
        storage = f"sqlite:///{folder / 'optuna.db'}"
        extra = [
            "hydra/launcher=joblib",
            "hydra.sweeper.n_jobs=2",
            f"hydra.sweeper.storage={storage}",
        ]
    else:
        storage = str(folder / "optuna.log")
        extra = ["train.threads=1", f"hydra.sweeper.storage={storage}"]
    start = time.monotonic()
    logs = [folder / f"worker{i}.log" for i in range(workers)]
    processes = [train([*SEARCH, *extra], folder, log) for log in logs]
    codes = [process.wait() for process in processes]
    wall = time.monotonic() - start
    if any(codes):
        tails = "\n".join(log.read_text()[-3000:] for log in logs)
        raise SystemExit(f"the search in {folder} exited {codes}:\n{tails}")
    if workers > 1:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(storage)
        )
    return wall, trial_seconds(storage)


def storage_cost(storage, label: str, repeats: int = 50) -> str:
    """Median milliseconds of one trial's round trips: ask, claim, tell."""
    sampler = optuna.samplers.RandomSampler(seed=0)
    worker = join_study(
        storage,
        study_name=f"cost-{time.time_ns()}",
        direction="maximize",
        sampler=sampler,
        heartbeat_interval=10,
        grace_period=None,
    )
    space = {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "arch": CategoricalDistribution(["a", "b"]),
    }
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        trial = worker.study.ask(space)
        worker.claim(trial)
        worker.reap()  # what a worker does before each batch
        worker.tell(trial, 0.5)
        seconds.append(time.perf_counter() - start)
    return f"| {label} | {1000 * statistics.median(seconds):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (SQLAlchemy's) for part 2")
    parser.add_argument("--skip-search", action="store_true", help="part 2 only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aesweep-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_search:
            results = {}
            for label, workers in [("one process, n_jobs=2 (batches)", 1), ("two workers", 2)]:
                results[label] = run_search(work / f"w{workers}", workers)
                print(f"{label}: {results[label][0]:.0f} s", flush=True)
            print(f"\n{N_TRIALS} trials, two at a time, on this machine's cores:\n")
            print("| run | wall (s) | trials: arch seconds, in trial order |")
            print("|---|---:|---|")
            for label, (wall, trials) in results.items():
                listed = ", ".join(f"{arch} {sec:.0f}" for _, arch, sec in sorted(trials))
                print(f"| {label} | {wall:.0f} | {listed} |")
            busy = {label: sum(s for *_, s in trials) for label, (_, trials) in results.items()}
            for label, (wall, _) in results.items():
                print(f"\n{label}: trial seconds {busy[label]:.0f} in {wall:.0f} s of wall")
        print("\n| storage | ms per trial (ask, claim, reap, tell) |\n|---|---:|")
        print(storage_cost(f"sqlite:///{work / 'cost.db'}", "SQLite"), flush=True)
        print(storage_cost(str(work / "cost.log"), "journal file"), flush=True)
        if args.postgres:
            print(storage_cost(args.postgres, "PostgreSQL (loopback)"), flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
