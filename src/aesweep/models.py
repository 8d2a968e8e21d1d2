"""The autoencoders, built with the Functional API as named encoder and decoder.

``ffn``         784 -> 256 -> latent (hidden act.) -> 256 -> 784         (seed network 1)
``ffn_linear``  784 -> 256 -> 100 -> latent (linear) -> 256 -> 784       (seed network 2)
``cnn``         conv 5x5x10 -> maxpool 5x5/1 -> dense latent (linear) |
                [dense 196] -> reshape 14x14 -> convT 4x4x10/2 -> conv 4x4x1  (network 3)
``dec``         784 -> 500 -> 500 -> 2000 -> latent (linear) -> 2000 -> 500 -> 500 -> 784:
                the deep-clustering autoencoder of DEC, IDEC and N2D (Xie et al. 2016)

The latent layer keeps the seed's own activation for each arch (the hidden one for
``ffn``, linear for the others); ``hidden`` sets every other hidden layer and ``output``
the decoder's last layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from aesweep import kernels

NEURAL_ARCHS = ("ffn", "ffn_linear", "cnn", "dec")
DEC_WIDTHS = (500, 500, 2000)  # the deep-clustering encoder's hidden layers; the decoder mirrors
CNN_GRID = 14  # the cnn decoder starts from a 14x14 image


@dataclass(frozen=True)
class Autoencoder:
    """The trainable ``model`` and its two halves, which share its weights."""

    model: keras.Model
    encoder: keras.Model
    decoder: keras.Model


def build_autoencoder(
    arch: str,
    *,
    latent_dim: int,
    hidden: str = "relu",
    output: str = "linear",
    fast_kernels: bool | None = None,
) -> Autoencoder:
    """Build one of :data:`NEURAL_ARCHS` (uncompiled; weights drawn from Keras' seed).

    ``fast_kernels`` runs the cnn's pooling and decoder with :mod:`aesweep.kernels`' CPU
    formulations (same outputs and gradients); None: wherever they apply (no GPU).
    """
    builders = {
        "ffn": _ffn_encoder,
        "ffn_linear": _ffn_linear_encoder,
        "cnn": _cnn_encoder,
        "dec": _dec_encoder,
    }
    if arch not in builders:
        raise ValueError(f"arch={arch!r} is not a neural arch; expected one of {NEURAL_ARCHS}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim={latent_dim!r} must be >= 1")
    encoder = builders[arch](latent_dim, hidden)
    if arch == "cnn":
        decoder = _cnn_decoder(latent_dim, hidden, output)
        if kernels.enabled() if fast_kernels is None else fast_kernels:
            kernels.separable_max_pooling(encoder.get_layer(kernels.POOL_LAYER))
            kernels.upsampling_decoder(decoder)
    elif arch == "dec":
        decoder = _dec_decoder(latent_dim, hidden, output)
    else:
        decoder = _ffn_decoder(latent_dim, hidden, output)
    inputs = keras.Input(shape=encoder.input_shape[1:], name="image")
    model = keras.Model(inputs, decoder(encoder(inputs)), name=f"{arch}_autoencoder")
    return Autoencoder(model=model, encoder=encoder, decoder=decoder)


def _ffn_encoder(latent_dim: int, hidden: str) -> keras.Model:
    inputs = keras.Input(shape=(784,), name="pixels")
    x = layers.Dense(256, activation=hidden, name="enc_dense_256")(inputs)
    latent = layers.Dense(latent_dim, activation=hidden, name="latent")(x)
    return keras.Model(inputs, latent, name="encoder")


def _ffn_linear_encoder(latent_dim: int, hidden: str) -> keras.Model:
    inputs = keras.Input(shape=(784,), name="pixels")
    x = layers.Dense(256, activation=hidden, name="enc_dense_256")(inputs)
    x = layers.Dense(100, activation=hidden, name="enc_dense_100")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    return keras.Model(inputs, latent, name="encoder")


def _ffn_decoder(latent_dim: int, hidden: str, output: str) -> keras.Model:
    inputs = keras.Input(shape=(latent_dim,), name="latent_in")
    x = layers.Dense(256, activation=hidden, name="dec_dense_256")(inputs)
    outputs = layers.Dense(784, activation=output, name=kernels.RECONSTRUCTION_LAYER)(x)
    return keras.Model(inputs, outputs, name="decoder")


def _dec_encoder(latent_dim: int, hidden: str) -> keras.Model:
    inputs = keras.Input(shape=(784,), name="pixels")
    x = inputs
    for i, width in enumerate(DEC_WIDTHS):
        x = layers.Dense(width, activation=hidden, name=f"enc_dense_{i}_{width}")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    return keras.Model(inputs, latent, name="encoder")


def _dec_decoder(latent_dim: int, hidden: str, output: str) -> keras.Model:
    inputs = keras.Input(shape=(latent_dim,), name="latent_in")
    x = inputs
    for i, width in enumerate(reversed(DEC_WIDTHS)):
        x = layers.Dense(width, activation=hidden, name=f"dec_dense_{i}_{width}")(x)
    outputs = layers.Dense(784, activation=output, name=kernels.RECONSTRUCTION_LAYER)(x)
    return keras.Model(inputs, outputs, name="decoder")


def _cnn_encoder(latent_dim: int, hidden: str) -> keras.Model:
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(10, 5, strides=1, padding="same", activation=hidden, name="enc_conv")(inputs)
    x = layers.MaxPooling2D(5, strides=1, padding="valid", name=kernels.POOL_LAYER)(x)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    return keras.Model(inputs, latent, name="encoder")


def _cnn_decoder(latent_dim: int, hidden: str, output: str) -> keras.Model:
    inputs = keras.Input(shape=(latent_dim,), name="latent_in")
    x = inputs
    if latent_dim != CNN_GRID * CNN_GRID:
        # The seed's decoder reads the latent as a 14x14 image; other sizes are projected.
        x = layers.Dense(CNN_GRID * CNN_GRID, activation="linear", name=kernels.PROJECT_LAYER)(x)
    x = layers.Reshape((CNN_GRID, CNN_GRID, 1), name="dec_reshape")(x)
    x = layers.Conv2DTranspose(
        10, 4, strides=2, padding="same", activation=hidden, name=kernels.UPSAMPLE_LAYER
    )(x)
    outputs = layers.Conv2D(
        1, 4, padding="same", activation=output, name=kernels.RECONSTRUCTION_LAYER
    )(x)
    return keras.Model(inputs, outputs, name="decoder")
