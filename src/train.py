"""Hydra entry point: compose the config, run one experiment, return the sweep objective.

python src/train.py                                # the seed's ffn on the embedded digits
python src/train.py -m arch=ffn,cnn lr=0.01,0.005  # one MLflow run per combination
"""

import logging
import math
import signal
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from aesweep.config import check_job, register_configs, to_experiment_config
from aesweep.console import prepare_process
from aesweep.errors import InputError, TrackingError, TrainingDiverged, one_line
from aesweep.names import FAILURE_FILE
from aesweep.summary import JobValue
from aesweep.sweep import parent_run_id

log = logging.getLogger("aesweep")
prepare_process()  # before anything imports TensorFlow or MLflow
register_configs()


def _interrupt(signum, frame):
    # SIGTERM (a scheduler, `kill`) then unwinds like Ctrl-C: runs end KILLED, not RUNNING.
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _end_runs_on_sigterm() -> None:
    """SIGTERM as Ctrl-C in this process: in the command's, and in each launcher's worker
    (joblib's, submitit's), which runs ``main`` without running this file as a script."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    prepare_process()  # again in a launcher's worker, which did not run this file's top
    _end_runs_on_sigterm()
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        # A bad value or data file fails here, before TensorFlow and MLflow load (a sweep
        # checked all its jobs so before the first).
        if hydra_cfg.mode == RunMode.RUN:
            check_job(cfg)
        else:
            to_experiment_config(cfg)
        from aesweep.experiment import run_experiment

        return run_experiment(
            cfg,
            root=Path(hydra.utils.get_original_cwd()),
            output_dir=output_dir,
            overrides=list(hydra_cfg.overrides.task),
            parent_run_id=parent_run_id(),
        )
    except (InputError, FileNotFoundError, TrainingDiverged, TrackingError) as err:
        # A bad input, a diverging loss or a tracking server that is gone or refuses needs
        # its line, not a traceback; the job's MLflow run (if one started and its server
        # answers) already ended FAILED with the reason.
        line = one_line(err)
        log.error("%s", line)
        if hydra_cfg.mode == RunMode.RUN:
            raise SystemExit(1) from None
    except Exception as err:
        if hydra_cfg.mode == RunMode.RUN:
            raise
        # The job's MLflow run is already FAILED with the reason; the sweep goes on and
        # its summary lists this job.
        line = one_line(err)
        log.exception("job failed: %s", line)
    # A sweep's job: the sweep goes on. The reason goes back to the sweeper with the NaN,
    # and into the job's folder, where the sweep's table finds a job that has no run.
    (output_dir / FAILURE_FILE).write_text(line + "\n")
    return JobValue(math.nan, failure=line)


if __name__ == "__main__":
    _end_runs_on_sigterm()  # the sweep's own process: its parent run ends KILLED, not RUNNING
    try:
        main()
    except KeyboardInterrupt as err:
        # The runs already ended KILLED; one line instead of a traceback.
        print(f"interrupted{f' ({err})' if str(err) else ''}: runs ended KILLED", file=sys.stderr)
        sys.exit(130)
