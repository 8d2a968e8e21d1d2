"""A user's own networks, defined outside ``src/aesweep``: what conf/arch's ``_target_`` may
name (tests/user_conf/arch/*.yaml point at them)."""

from __future__ import annotations

import keras
from keras import layers


def small_dense(latent_dim: int, width: int = 32, hidden: str = "relu") -> keras.Model:
    """784 -> width -> latent -> width -> 784: a function that returns the autoencoder."""
    image = keras.Input((784,))
    encoder = keras.Sequential(
        [keras.Input((784,)), layers.Dense(width, hidden), layers.Dense(latent_dim)],
        name="encoder",
    )
    decoder = keras.Sequential(
        [keras.Input((latent_dim,)), layers.Dense(width, hidden), layers.Dense(784)],
        name="decoder",
    )
    return keras.Model(image, decoder(encoder(image)))


class Bottleneck(keras.Model):
    """A ``keras.Model`` class as the target: Hydra calls it with the config's arguments."""

    def __init__(self, latent_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = keras.Sequential([layers.Dense(latent_dim)], name="encoder")
        self.decoder = keras.Sequential([layers.Dense(784)], name="decoder")

    def call(self, x):
        return self.decoder(self.encoder(x))
