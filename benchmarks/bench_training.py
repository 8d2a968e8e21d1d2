"""Time aesweep against the seed's plain Keras script, side by side in one run.

    uv run python benchmarks/bench_training.py              # everything (about 10 minutes)
    uv run python benchmarks/bench_training.py --skip-sweep --skip-full-data

Reports, for ffn, cnn and dec on the seed's 3000 digits (batch 300; dec 256): seconds per
epoch of plain Keras ``fit``, of aesweep's training path with MLflow logging on and off and
without the held-out loss (the plain script's work), the ratios and the tracking
overhead (median over interleaved repeats, warm-up epochs left out); the wall
time of the design-card sweep against the plain scripts run one after another; and, on
the full data set, seconds per epoch and peak memory of one ffn run per training size.
It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from aesweep.console import prepare_process  # noqa: E402

prepare_process()  # first: it keeps TensorFlow's native start-up lines out

# isort: split
import keras  # noqa: E402
import plain_keras  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from aesweep import models  # noqa: E402
from aesweep.tracking import RunLog, Tracker  # noqa: E402
from aesweep.training import train_autoencoder  # noqa: E402

SEED_LR = {"ffn": 0.01, "cnn": 0.005, "dec": 0.001}
LATENT_DIM = {"ffn": 100, "cnn": 196, "dec": 10}


def aesweep_epochs(arch: str, epochs: int, x, x_val, run: RunLog | None) -> list[float]:
    keras.utils.set_random_seed(0)
    model = getattr(models, arch)(latent_dim=LATENT_DIM[arch])
    history = train_autoencoder(
        model,
        x,
        x_val,
        learning_rate=SEED_LR[arch],
        epochs=epochs,
        batch_size=plain_keras.BATCH_SIZE[arch],
        progress_every=10**9,
        on_epoch_end=run.log_epoch if run else None,
    )
    return history.epoch_seconds


def epoch_times(args, store: str) -> list[dict]:
    rows = []
    for arch in args.archs:
        x, _ = plain_keras.digits(arch)
        x_val, _ = plain_keras.digits(arch, held_out=True)
        times = {"plain": [], "on": [], "off": [], "same_work": []}
        for _ in range(args.repeats):  # interleaved, so drift hits all four alike
            times["plain"] += plain_keras.train(arch, SEED_LR[arch], args.epochs, x)[1][
                args.warmup :
            ]
            tracker = Tracker.connect(enabled=True, uri=store, experiment="bench", root=ROOT)
            with tracker.run(run_name=f"bench-{arch}", tags={}) as run:
                times["on"] += aesweep_epochs(arch, args.epochs, x, x_val, run)[args.warmup :]
            times["off"] += aesweep_epochs(arch, args.epochs, x, x_val, None)[args.warmup :]
            # The plain script computes no held-out loss: the same work, MLflow still on.
            with tracker.run(run_name=f"bench-{arch}-no-val", tags={}) as run:
                times["same_work"] += aesweep_epochs(arch, args.epochs, x, None, run)[args.warmup :]
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "arch": arch,
                **med,
                "ratio": med["on"] / med["plain"],
                "same_work_ratio": med["same_work"] / med["plain"],
                "overhead": med["on"] / med["off"] - 1,
            }
        )
        print(f"{arch}: plain {med['plain']:.3f}  aesweep {med['on']:.3f} s/epoch", flush=True)
    return rows


def _run(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one command.

    The peak is the child's own ``VmHWM``, read while it runs: the ``ru_maxrss`` that
    ``wait4`` reports also counts the pages the child shared with this process before its
    exec (about 0.8 GB of TensorFlow here). Growth in the last 0.2 s would be missed.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # stderr to a file, not a pipe: nobody reads a pipe while we wait, and a full one blocks.
    with tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _peak_rss(process.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        if process.returncode:
            stderr.seek(0)
            raise RuntimeError(f"{cmd} failed: {stderr.read()[-2000:]}")
    return wall, peak


def _peak_rss(pid: int) -> int:
    """The high-water resident memory of process ``pid`` so far (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return int(kib) * 1024


def sweep_walls(args, work: Path) -> dict:
    plain = 0.0
    for arch in ("ffn", "cnn"):
        for lr in ("0.01", "0.005"):
            plain += _run(
                [
                    sys.executable,
                    str(ROOT / "benchmarks" / "plain_keras.py"),
                    arch,
                    lr,
                    str(args.sweep_epochs),
                ],
                work,
            )[0]
    print(f"plain scripts, 4 runs: {plain:.0f} s", flush=True)
    common = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "arch=ffn,cnn",
        "lr=0.01,0.005",
        f"train.epochs={args.sweep_epochs}",
        f"tracking.uri=sqlite:///{work / 'sweep.db'}",
    ]
    parallel = _run(
        [
            *common,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "train.threads=1",
            f"hydra.sweep.dir={work / 'parallel'}",
        ],
        work,
    )[0]
    print(f"aesweep sweep, joblib 2x1 thread: {parallel:.0f} s", flush=True)
    sequential = math.nan
    if not args.skip_sequential:
        sequential = _run([*common, f"hydra.sweep.dir={work / 'sequential'}"], work)[0]
        print(f"aesweep sweep, sequential: {sequential:.0f} s", flush=True)
    return {
        "epochs": args.sweep_epochs,
        "plain": plain,
        "parallel": parallel,
        "sequential": sequential,
    }


def full_data(args, work: Path) -> list[dict]:
    rows = []
    for n in args.full_sizes:
        store = work / f"full{n}.db"
        wall, peak = _run(
            [
                sys.executable,
                str(ROOT / "src" / "train.py"),
                "arch=ffn",
                "data=file",
                f"data.path={args.full_data}",
                f"data.n_samples={n}",
                "data.n_test=10000",
                f"train.epochs={args.full_epochs}",
                f"tracking.uri=sqlite:///{store}",
                "tracking.log_model=false",
                f"hydra.run.dir={work / f'full{n}'}",
            ],
            work,
        )
        client = MlflowClient(f"sqlite:///{store}")
        run = client.search_runs([client.get_experiment_by_name("aesweep").experiment_id])[0]
        rows.append(
            {"n": n, "s_per_epoch": run.data.metrics["time/s_per_epoch"], "peak_gb": peak / 1e9}
        )
        print(
            f"full data n={n}: {rows[-1]['s_per_epoch']:.2f} s/epoch, peak {peak / 1e9:.2f} GB",
            flush=True,
        )
    return rows


def report(epochs, sweep, full) -> str:
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, TensorFlow/Keras {keras.__version__}",
        "",
    ]
    if epochs:
        lines += [
            "| arch | plain Keras s/epoch | aesweep s/epoch (MLflow on) | ratio | "
            "aesweep without val/loss | ratio | aesweep, MLflow off | tracking overhead |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['arch']} | {r['plain']:.3f} | {r['on']:.3f} | {r['ratio']:.2f}x | "
            f"{r['same_work']:.3f} | {r['same_work_ratio']:.2f}x | "
            f"{r['off']:.3f} | {100 * r['overhead']:+.1f}% |"
            for r in epochs
        ]
    if sweep:
        lines += [
            "",
            f"Design-card sweep (4 jobs, {sweep['epochs']} epochs each), wall time:",
            "",
            "| plain scripts one after another | aesweep, joblib 2 jobs x 1 thread | ratio | "
            "aesweep, sequential | ratio |",
            "|---:|---:|---:|---:|---:|",
            f"| {sweep['plain']:.0f} s | {sweep['parallel']:.0f} s | "
            f"{sweep['parallel'] / sweep['plain']:.2f}x | "
            + (
                "not timed | |"
                if math.isnan(sweep["sequential"])
                else f"{sweep['sequential']:.0f} s | {sweep['sequential'] / sweep['plain']:.2f}x |"
            ),
        ]
    if full:
        lines += [
            "",
            "Full data, ffn (10,000 held out):",
            "",
            "| training digits | s/epoch | s/epoch per 10k digits | peak memory |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['n']} | {r['s_per_epoch']:.2f} | {1e4 * r['s_per_epoch'] / r['n']:.3f} | "
            f"{r['peak_gb']:.2f} GB |"
            for r in full
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs per timed fit")
    parser.add_argument("--warmup", type=int, default=2, help="first epochs left out")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument(
        "--archs", nargs="+", default=["ffn", "cnn", "dec"], choices=["ffn", "cnn", "dec"]
    )
    parser.add_argument("--sweep-epochs", type=int, default=50)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument(
        "--skip-sequential", action="store_true", help="time the sweep with joblib only"
    )
    parser.add_argument(
        "--full-data",
        default=str(ROOT.parent / "shared" / "data" / "mnist.npz"),
        help="a Keras-layout mnist.npz (default: ../shared/data/mnist.npz)",
    )
    parser.add_argument("--full-sizes", type=int, nargs="+", default=[15000, 30000, 60000])
    parser.add_argument("--full-epochs", type=int, default=4)
    parser.add_argument("--skip-full-data", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        epochs = epoch_times(args, f"sqlite:///{work / 'bench.db'}")
        sweep = None if args.skip_sweep else sweep_walls(args, work)
        full = None
        if not args.skip_full_data and Path(args.full_data).is_file():
            full = full_data(args, work)
        print("\n" + report(epochs, sweep, full))


if __name__ == "__main__":
    main()
