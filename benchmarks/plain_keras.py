"""The seed's experiment written as plain Keras, the baseline aesweep is timed against.

    python benchmarks/plain_keras.py ffn 0.01 500     # arch, learning rate, epochs

Layer for layer the seed's networks (SEED.md), ``compile(Adam, "mse")`` and
``fit(batch_size=300)`` on the same 3000 digits, KMeans on the latents. Nothing of
aesweep's training path is used, only its loader, so both read identical digits.
"""

import sys
import time

import aesweep  # noqa: F401  first: it keeps TensorFlow's native start-up lines out

# isort: split
import keras
import numpy as np
from keras import layers
from sklearn.cluster import KMeans

from aesweep import data

BATCH_SIZE = {"ffn": 300, "cnn": 300, "dec": 256}  # the seed's; DEC's


def build(arch: str) -> tuple[keras.Model, keras.Model]:
    """The seed's autoencoder and encoder, exactly as its script built them (``dec``: the
    deep-clustering autoencoder as DEC's and N2D's code builds it)."""
    if arch == "dec":
        inputs = keras.Input(shape=(784,))
        x = inputs
        for width in (500, 500, 2000):
            x = layers.Dense(width, activation="relu")(x)
        latent = layers.Dense(10)(x)
        x = latent
        for width in (2000, 500, 500):
            x = layers.Dense(width, activation="relu")(x)
        outputs = layers.Dense(784)(x)
    elif arch == "ffn":
        inputs = keras.Input(shape=(784,))
        x = layers.Dense(256, activation="relu")(inputs)
        latent = layers.Dense(100, activation="relu")(x)
        x = layers.Dense(256, activation="relu")(latent)
        outputs = layers.Dense(784, activation="linear")(x)
    else:
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(10, 5, strides=1, padding="same", activation="relu")(inputs)
        x = layers.MaxPooling2D(5, strides=1, padding="valid")(x)
        latent = layers.Dense(196, activation="linear")(layers.Flatten()(x))
        x = layers.Reshape((14, 14, 1))(latent)
        x = layers.Conv2DTranspose(10, 4, strides=2, padding="same", activation="relu")(x)
        outputs = layers.Conv2D(1, 4, padding="same", activation="linear")(x)
    return keras.Model(inputs, outputs), keras.Model(inputs, latent)


def digits(
    arch: str, n_samples: int = 3000, *, held_out: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The seed's 3000 training digits (or the 1000 held out), scaled for ``arch`` as it did."""
    images, labels = data.load_mnist_sample()
    train_idx, test_idx = data.split(labels, n_samples=n_samples, n_test=1000, random_state=0)
    prepared = data.prepare(
        images,
        labels,
        test_idx if held_out else train_idx,
        scaling="zscore" if arch == "ffn" else "unit",
        shape=(28, 28, 1) if arch == "cnn" else (784,),
    )
    return prepared.x, prepared.labels


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train(arch: str, lr: float, epochs: int, x: np.ndarray) -> tuple[keras.Model, list[float]]:
    """The seed's training: Adam on MSE, batch 300 (dec: 256); returns the encoder and epoch
    times."""
    keras.utils.set_random_seed(0)
    autoencoder, encoder = build(arch)
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    timer = EpochTimer()
    autoencoder.fit(x, x, epochs=epochs, batch_size=BATCH_SIZE[arch], verbose=0, callbacks=[timer])
    return encoder, timer.seconds


def main(arch: str, lr: float, epochs: int) -> None:
    x, labels = digits(arch)
    encoder, _ = train(arch, lr, epochs, x)
    latent = encoder.predict(x, verbose=0)
    kmeans = KMeans(n_clusters=10, n_init=3, random_state=42).fit(latent)
    print(f"{arch} lr={lr}: {len(set(kmeans.labels_))} clusters, labels {np.bincount(labels)}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
