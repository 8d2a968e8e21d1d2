"""aesweep's Hydra sweeper over Optuna: ``hydra/sweeper=aesweep_optuna`` (see aesweep.search)."""
