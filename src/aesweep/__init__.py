"""aesweep: sweep MNIST autoencoder experiments with Hydra and compare them in MLflow."""

import os

from aesweep.console import quiet_native_logs

# Before any aesweep module can import TensorFlow, in every process that runs a job (the
# command line, and joblib's or submitit's workers, which import aesweep afresh).
quiet_native_logs()

# A job talks to no one but its tracking store: MLflow 3 would otherwise send usage
# telemetry from every run (set MLFLOW_DISABLE_TELEMETRY=false to allow it).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
