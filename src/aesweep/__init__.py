"""aesweep: sweep MNIST autoencoder experiments with Hydra and compare them in MLflow."""
