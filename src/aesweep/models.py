"""The seed's autoencoders and the deep-clustering one, each a function an arch's
``_target_`` names (``conf/arch/*.yaml``); a user's network is one more such function.

``ffn``         784 -> 256 -> latent (hidden act.) -> 256 -> 784         (seed network 1)
``ffn_linear``  784 -> 256 -> 100 -> latent (linear) -> 256 -> 784       (seed network 2)
``cnn``         conv 5x5x10 -> maxpool 5x5/1 -> dense latent (linear) |
                [dense 196] -> reshape 14x14 -> convT 4x4x10/2 -> conv 4x4x1  (network 3)
``dec``         784 -> 500 -> 500 -> 2000 -> latent (linear) -> 2000 -> 500 -> 500 -> 784:
                the deep-clustering autoencoder of DEC, IDEC and N2D (Xie et al. 2016)

Each returns an uncompiled ``keras.Model`` from image to reconstruction whose layers
``encoder`` (image -> latent) and ``decoder`` (latent -> image) share its weights: the
contract :mod:`aesweep.features` checks of any arch. The latent layer keeps the seed's
own activation for each arch (the hidden one for ``ffn``, linear for the others);
``hidden`` sets every other hidden layer and ``output`` the decoder's last layer.

Keras is imported inside the builders: the config check imports this module to read
their signatures, and a sweep's own process need not load TensorFlow for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

DEC_WIDTHS = (500, 500, 2000)  # the deep-clustering encoder's hidden layers; the decoder mirrors
CNN_GRID = 14  # the cnn decoder starts from a 14x14 image


def ffn(latent_dim: int, hidden: str = "relu", output: str = "linear") -> keras.Model:
    """Seed network 1: 784 -> 256 -> latent (``hidden``) -> 256 -> 784."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(784,), name="pixels")
    x = layers.Dense(256, activation=hidden, name="enc_dense_256")(inputs)
    latent = layers.Dense(latent_dim, activation=hidden, name="latent")(x)
    return _autoencoder(
        "ffn", keras.Model(inputs, latent, name="encoder"), _ffn_decoder(latent_dim, hidden, output)
    )


def ffn_linear(latent_dim: int, hidden: str = "relu", output: str = "linear") -> keras.Model:
    """Seed network 2: 784 -> 256 -> 100 -> latent (linear) -> 256 -> 784."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(784,), name="pixels")
    x = layers.Dense(256, activation=hidden, name="enc_dense_256")(inputs)
    x = layers.Dense(100, activation=hidden, name="enc_dense_100")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    encoder = keras.Model(inputs, latent, name="encoder")
    return _autoencoder("ffn_linear", encoder, _ffn_decoder(latent_dim, hidden, output))


def dec(latent_dim: int, hidden: str = "relu", output: str = "linear") -> keras.Model:
    """The deep-clustering autoencoder: 784-500-500-2000-latent, mirrored."""
    import keras
    from keras import layers

    from aesweep import kernels  # TensorFlow: see the module's docstring

    inputs = keras.Input(shape=(784,), name="pixels")
    x = inputs
    for i, width in enumerate(DEC_WIDTHS):
        x = layers.Dense(width, activation=hidden, name=f"enc_dense_{i}_{width}")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    encoder = keras.Model(inputs, latent, name="encoder")
    decoder_in = keras.Input(shape=(latent_dim,), name="latent_in")
    x = decoder_in
    for i, width in enumerate(reversed(DEC_WIDTHS)):
        x = layers.Dense(width, activation=hidden, name=f"dec_dense_{i}_{width}")(x)
    outputs = layers.Dense(784, activation=output, name=kernels.RECONSTRUCTION_LAYER)(x)
    return _autoencoder("dec", encoder, keras.Model(decoder_in, outputs, name="decoder"))


def cnn(
    latent_dim: int,
    hidden: str = "relu",
    output: str = "linear",
    fast_kernels: bool | None = None,
) -> keras.Model:
    """Seed network 3, on 28x28x1 images.

    ``fast_kernels`` runs the pooling and the decoder with :mod:`aesweep.kernels`' CPU
    formulations (same outputs and gradients); None: wherever they apply (no GPU).
    """
    import keras
    from keras import layers

    from aesweep import kernels  # TensorFlow: see the module's docstring

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(10, 5, strides=1, padding="same", activation=hidden, name="enc_conv")(inputs)
    x = layers.MaxPooling2D(5, strides=1, padding="valid", name=kernels.POOL_LAYER)(x)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, activation="linear", name="latent")(x)
    encoder = keras.Model(inputs, latent, name="encoder")

    decoder_in = keras.Input(shape=(latent_dim,), name="latent_in")
    x = decoder_in
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
    decoder = keras.Model(decoder_in, outputs, name="decoder")
    if kernels.enabled() if fast_kernels is None else fast_kernels:
        kernels.separable_max_pooling(encoder.get_layer(kernels.POOL_LAYER))
        kernels.upsampling_decoder(decoder)
    return _autoencoder("cnn", encoder, decoder)


def _ffn_decoder(latent_dim: int, hidden: str, output: str) -> keras.Model:
    import keras
    from keras import layers

    from aesweep import kernels  # TensorFlow: see the module's docstring

    inputs = keras.Input(shape=(latent_dim,), name="latent_in")
    x = layers.Dense(256, activation=hidden, name="dec_dense_256")(inputs)
    outputs = layers.Dense(784, activation=output, name=kernels.RECONSTRUCTION_LAYER)(x)
    return keras.Model(inputs, outputs, name="decoder")


def _autoencoder(arch: str, encoder: keras.Model, decoder: keras.Model) -> keras.Model:
    """image -> ``decoder(encoder(image))``, the two halves as its layers of those names."""
    import keras

    inputs = keras.Input(shape=encoder.input_shape[1:], name="image")
    return keras.Model(inputs, decoder(encoder(inputs)), name=f"{arch}_autoencoder")
