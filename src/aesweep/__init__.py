"""aesweep: sweep MNIST autoencoder experiments with Hydra and compare them in MLflow.

Importing it changes nothing of the process: the entry scripts and each job call
:func:`aesweep.console.prepare_process` first.
"""
