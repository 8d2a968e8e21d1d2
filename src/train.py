"""Hydra entry point: compose the config, run one experiment, return the sweep objective.

python src/train.py                                # the seed's ffn on the embedded digits
python src/train.py -m arch=ffn,cnn lr=0.01,0.005  # one MLflow run per combination
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from aesweep.config import register_configs  # noqa: E402
from aesweep.experiment import run_experiment  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    return run_experiment(
        cfg,
        root=Path(hydra.utils.get_original_cwd()),
        output_dir=Path(hydra_cfg.runtime.output_dir),
        overrides=list(hydra_cfg.overrides.task),
    )


if __name__ == "__main__":
    main()
