"""Hydra entry point: compose the config, run one experiment, return the sweep objective.

python src/train.py                                # the seed's ffn on the embedded digits
python src/train.py -m arch=ffn,cnn lr=0.01,0.005  # one MLflow run per combination
"""

import logging
import math
import signal
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from aesweep.config import register_configs, to_experiment_config
from aesweep.errors import InputError, TrackingError, TrainingDiverged
from aesweep.sweep import parent_run_id

log = logging.getLogger("aesweep")
register_configs()


def _interrupt(signum, frame):
    # SIGTERM (a scheduler, `kill`) then unwinds like Ctrl-C: runs end KILLED, not RUNNING.
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    try:
        to_experiment_config(cfg)  # a bad value fails here, before TensorFlow and MLflow load
        from aesweep.experiment import run_experiment

        return run_experiment(
            cfg,
            root=Path(hydra.utils.get_original_cwd()),
            output_dir=Path(hydra_cfg.runtime.output_dir),
            overrides=list(hydra_cfg.overrides.task),
            parent_run_id=parent_run_id(),
        )
    except (InputError, FileNotFoundError, TrainingDiverged, TrackingError) as err:
        # A bad input, a diverging loss or a tracking server that is gone or refuses needs
        # its line, not a traceback; the job's MLflow run (if one started and its server
        # answers) already ended FAILED with the reason.
        log.error("%s: %s", type(err).__name__, err)
        if hydra_cfg.mode == RunMode.RUN:
            raise SystemExit(1) from None
        return math.nan
    except Exception as err:
        if hydra_cfg.mode == RunMode.RUN:
            raise
        # The job's MLflow run is already FAILED with the reason; the sweep goes on and
        # its summary lists this job.
        log.exception("job failed: %s: %s", type(err).__name__, err)
        return math.nan


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main()
