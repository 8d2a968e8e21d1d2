"""What augmentation costs: seconds per epoch with and without it, side by side in one run.

    uv run python benchmarks/bench_augment.py            # dec and cnn, about 2 minutes
    uv run python benchmarks/bench_augment.py --epochs 20

For ``arch=dec`` and ``arch=cnn`` on the embedded 3000 digits (batch 256 and 300), aesweep's
training step with ``augment=none`` and with ``augment=shift`` (DEC-DA's ranges), epochs
interleaved (clean, augmented, clean, ...) so that the machine's load falls on both alike;
the median epoch of each, the first (tracing) epoch left out, and their ratio. It also
times plain Keras ``fit`` of the same network as the baseline. It measures and prints;
it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from aesweep.console import prepare_process  # noqa: E402

prepare_process()

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aesweep import models  # noqa: E402
from aesweep.augment import make_augment  # noqa: E402
from aesweep.config import AugmentConfig  # noqa: E402
from aesweep.data import load_mnist_sample  # noqa: E402
from aesweep.training import compile_autoencoder, make_epoch_step  # noqa: E402

SHIFT = AugmentConfig(name="shift", width_shift=0.1, height_shift=0.1, rotation=10.0)
NETWORKS = {
    "dec": (lambda: models.dec(latent_dim=10), (784,), 256),
    "cnn": (lambda: models.cnn(latent_dim=196), (28, 28, 1), 300),
}


def bench(name: str, epochs: int, x: np.ndarray) -> str:
    build, shape, batch_size = NETWORKS[name]
    data = x.reshape(-1, *shape)
    steps, seconds = {}, {"plain Keras fit": [], "none": [], "shift": []}
    for label, augment in [("none", None), ("shift", make_augment(SHIFT))]:
        keras.utils.set_random_seed(0)
        model = build()
        compile_autoencoder(model, learning_rate=1e-3)
        steps[label] = make_epoch_step(model, data, batch_size=batch_size, augment=augment)
    keras.utils.set_random_seed(0)
    plain = build()
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    rng = np.random.default_rng(0)
    for epoch in range(epochs + 1):  # epoch 0 traces the graphs: not counted
        for label, step in steps.items():
            start = time.perf_counter()
            float(step(tf.constant(rng.permutation(len(data))), (0, epoch)))
            if epoch:
                seconds[label].append(time.perf_counter() - start)
        start = time.perf_counter()
        plain.fit(data, data, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        if epoch:
            seconds["plain Keras fit"].append(time.perf_counter() - start)
    median = {label: statistics.median(values) for label, values in seconds.items()}
    return (
        f"| {name} | {median['plain Keras fit']:.3f} | {median['none']:.3f} | "
        f"{median['shift']:.3f} | {median['shift'] / median['none']:.2f}x | "
        f"{median['shift'] / median['plain Keras fit']:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs of each")
    args = parser.parse_args()
    x, _ = load_mnist_sample()
    chosen = np.random.default_rng(0).choice(len(x), 3000, replace=False)
    x = (x[chosen] / 255.0).astype("float32")
    columns = ["arch", "plain Keras fit (s/epoch)", "augment=none", "augment=shift"]
    print("| " + " | ".join([*columns, "shift / none", "shift / plain Keras"]) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in NETWORKS:
        print(bench(name, args.epochs, x), flush=True)


if __name__ == "__main__":
    main()
