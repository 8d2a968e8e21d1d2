"""Send the metrics a job could not send to its tracking server, and end its run.

A job whose server stopped answering leaves them in its folder, and prints this command:

python src/send_metrics.py multirun/2026-11-29/10-00-00/3/unsent_metrics.json
python src/send_metrics.py multirun/*/*/*/unsent_metrics.json    # every job of a sweep
python src/send_metrics.py unsent_metrics.json --tracking-uri http://mlflow.internal:5000
"""

import argparse
import sys
from pathlib import Path

from aesweep.console import prepare_process

prepare_process()  # before MLflow loads: it reads the telemetry setting on import

# isort: split
from aesweep.errors import TrackingError
from aesweep.server import send_unsent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="a job's unsent_metrics.json")
    parser.add_argument(
        "--tracking-uri", help="send to this server (default: the one named in each file)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed = 0
    for path in args.paths:
        try:
            run_id, count = send_unsent(path, tracking_uri=args.tracking_uri)
        except (TrackingError, FileNotFoundError) as err:
            print(f"{path}: {type(err).__name__}: {err}", file=sys.stderr)
            failed += 1
        else:
            print(f"{path}: sent {count} metric values to run {run_id}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
