"""aesweep: sweep MNIST autoencoder experiments with Hydra and compare them in MLflow."""

from aesweep.console import quiet_native_logs

# Before any aesweep module can import TensorFlow, in every process that runs a job (the
# command line, and joblib's or submitit's workers, which import aesweep afresh).
quiet_native_logs()
