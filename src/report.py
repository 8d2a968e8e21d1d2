"""Rebuild a sweep's summary table from MLflow alone (no multirun/ folder needed).

python src/report.py                          # the latest sweep, as markdown
python src/report.py --sweep sweep-2026-11-28-00-10-28 --format csv
python src/report.py --tracking-uri http://127.0.0.1:5000 --experiment aesweep
"""

import argparse
import sys
from pathlib import Path

from aesweep.console import prepare_process

prepare_process()  # before MLflow loads: it reads the telemetry setting on import

# isort: split
from mlflow import MlflowClient

from aesweep import server
from aesweep.errors import InputError, TrackingError
from aesweep.review import find_parent, load_sweep
from aesweep.summary import to_csv, to_markdown
from aesweep.tracking import resolve_tracking_uri, ui_link


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", help="parent run id or name (default: the latest sweep)")
    parser.add_argument("--experiment", default="aesweep", help="MLflow experiment name")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: ./mlflow.db, the store train.py writes)",
    )
    parser.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri, Path.cwd())
    try:
        # A server that is down or says no is one line, as it is for train.py.
        server.prepare(uri)
        with server.translate_errors(uri, f"the reading of experiment {args.experiment!r}"):
            return _report(args, uri)
    except (InputError, TrackingError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _report(args: argparse.Namespace, uri: str) -> int:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        print(f"error: --experiment={args.experiment!r} not found at {uri}", file=sys.stderr)
        return 1
    parent = find_parent(client, experiment.experiment_id, args.sweep)
    if parent is None:
        which = f"--sweep={args.sweep!r}" if args.sweep else "a sweep"
        print(f"error: no {which} in experiment {args.experiment!r}", file=sys.stderr)
        return 1
    sweep = load_sweep(client, parent.info.run_id)
    columns, rows = sweep.table()
    render = to_csv if args.format == "csv" else to_markdown
    sys.stdout.write(render(columns, rows))
    if args.format == "markdown":
        link = ui_link(uri, experiment.experiment_id, parent.info.run_id)
        print(f"\n{parent.info.run_name}: {link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
