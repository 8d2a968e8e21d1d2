"""Hydra entry point: compose the config, run one experiment, return the sweep objective.

python src/train.py                                # the seed's ffn on the embedded digits
python src/train.py -m arch=ffn,cnn lr=0.01,0.005  # one MLflow run per combination
"""

import logging
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from aesweep.config import InputError, register_configs  # noqa: E402
from aesweep.experiment import run_experiment  # noqa: E402
from aesweep.sweep import parent_run_id  # noqa: E402

log = logging.getLogger("aesweep")
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    try:
        return run_experiment(
            cfg,
            root=Path(hydra.utils.get_original_cwd()),
            output_dir=Path(hydra_cfg.runtime.output_dir),
            overrides=list(hydra_cfg.overrides.task),
            parent_run_id=parent_run_id(),
        )
    except (InputError, FileNotFoundError) as err:
        log.error("%s", err)
        if hydra_cfg.mode == RunMode.RUN:
            raise SystemExit(1) from None  # a bad input needs its line, not a traceback
        return math.nan
    except Exception as err:
        if hydra_cfg.mode == RunMode.RUN:
            raise
        # The job's MLflow run is already FAILED with the reason; the sweep goes on and
        # its summary lists this job.
        log.exception("job failed: %s: %s", type(err).__name__, err)
        return math.nan


if __name__ == "__main__":
    main()
