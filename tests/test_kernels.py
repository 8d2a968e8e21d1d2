"""aesweep.kernels against Keras' own layers: same outputs and gradients on the same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from aesweep import kernels
from aesweep.models import build_autoencoder

RNG = np.random.default_rng(0)


def _outputs_and_gradients(model: keras.Model, x: np.ndarray, upstream: np.ndarray):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *model.trainable_variables])]


def _assert_same(fast: keras.Model, plain: keras.Model, x: np.ndarray, *, rtol=1e-4, atol=1e-5):
    fast.set_weights(
        [RNG.normal(scale=0.3, size=w.shape).astype("float32") for w in plain.get_weights()]
    )
    plain.set_weights(fast.get_weights())
    upstream = RNG.normal(size=(len(x), *plain.output.shape[1:])).astype("float32")
    y_fast, g_fast = _outputs_and_gradients(fast, x, upstream)
    y_plain, g_plain = _outputs_and_gradients(plain, x, upstream)
    np.testing.assert_allclose(y_fast, y_plain, rtol=rtol, atol=atol)
    for ours, theirs in zip(g_fast, g_plain, strict=True):  # input first, then each weight
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * np.abs(theirs).max())


def test_separable_max_pooling_equals_keras_max_pooling():
    # After a ReLU many windows are all zeros; ties must not change the gradient that
    # reaches the weights, so compare through a ReLU as in the cnn.
    inputs = keras.Input((28, 28, 10))
    pools = [
        layers.MaxPooling2D(5, 1, "valid"),
        kernels.separable_max_pooling(layers.MaxPooling2D(5, 1, "valid")),
    ]
    assert type(pools[1]) is layers.MaxPooling2D  # saved as Keras' own layer
    fast, plain = (keras.Model(inputs, pool(layers.ReLU()(inputs))) for pool in pools[::-1])
    x = RNG.normal(size=(8, 28, 28, 10)).astype("float32")
    upstream = RNG.normal(size=(8, 24, 24, 10)).astype("float32")
    (y_fast, g_fast), (y_plain, g_plain) = (
        _outputs_and_gradients(m, x, upstream) for m in (fast, plain)
    )
    np.testing.assert_array_equal(y_fast, y_plain)
    np.testing.assert_allclose(g_fast[0], g_plain[0], rtol=1e-5, atol=1e-6)  # summation order


@pytest.mark.parametrize("latent_dim", [196, 12])  # 196 is read as the 14x14 image; 12 is projected
@pytest.mark.parametrize(
    ("hidden", "output"), [("relu", "linear"), ("sigmoid", "sigmoid"), ("relu", "relu")]
)
def test_cnn_decoder_equals_keras_layers(latent_dim, hidden, output):
    fast, plain = (
        build_autoencoder(
            "cnn", latent_dim=latent_dim, hidden=hidden, output=output, fast_kernels=on
        ).decoder
        for on in (True, False)
    )
    assert "call" in vars(fast) and "call" not in vars(plain)
    assert [type(layer) for layer in fast.layers] == [type(layer) for layer in plain.layers]
    _assert_same(fast, plain, RNG.normal(size=(16, latent_dim)).astype("float32"))


@pytest.mark.parametrize(
    ("up_kernel", "stride", "out_kernel"), [(3, 2, 3), (5, 2, 5), (4, 2, 3), (6, 3, 5)]
)
def test_phase_decoder_matches_other_kernel_sizes_and_strides(up_kernel, stride, out_kernel):
    def decoder():
        inputs = keras.Input((36,))
        x = layers.Reshape((6, 6, 1), name="dec_reshape")(inputs)
        x = layers.Conv2DTranspose(
            4, up_kernel, strides=stride, padding="same", activation="relu", name="dec_convT"
        )(x)
        x = layers.Conv2D(1, out_kernel, padding="same", name="reconstruction")(x)
        return keras.Model(inputs, x)

    fast, plain = kernels.upsampling_decoder(decoder()), decoder()
    assert "call" in vars(fast)
    _assert_same(fast, plain, RNG.normal(size=(5, 36)).astype("float32"))


def test_whole_cnn_equals_keras_layers_on_a_batch():
    fast, plain = (
        build_autoencoder("cnn", latent_dim=196, fast_kernels=on).model for on in (True, False)
    )
    x = (RNG.random(size=(12, 28, 28, 1)) > 0.6).astype("float32")
    _assert_same(fast, plain, x)


def test_other_layer_settings_keep_keras_own_call():
    inputs = keras.Input((36,))
    x = layers.Reshape((6, 6, 1), name="dec_reshape")(inputs)
    x = layers.Conv2DTranspose(4, 4, strides=2, padding="valid", name="dec_convT")(x)
    x = layers.Conv2D(1, 4, padding="same", name="reconstruction")(x)
    assert "call" not in vars(kernels.upsampling_decoder(keras.Model(inputs, x)))
    strided = layers.MaxPooling2D(2)
    assert "call" not in vars(kernels.separable_max_pooling(strided))


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    shapes = [(30, 7), (7,)]
    start = [RNG.normal(size=s).astype("float32") for s in shapes]
    gradients = [[RNG.normal(size=s).astype("float32") for s in shapes] for _ in range(5)]
    trajectories = []
    for fuse in (False, True):
        variables = [keras.Variable(w) for w in start]
        optimizer = keras.optimizers.Adam(learning_rate=0.01)
        optimizer.build(variables)
        if fuse:
            kernels.fused_adam(optimizer)
        for step in gradients:
            optimizer.apply_gradients(zip(step, variables, strict=True))
        trajectories.append(
            [v.numpy() for v in [*variables, *optimizer.variables[2:]]]
        )  # weights, m, v
    for fused, keras_own in zip(*trajectories[::-1], strict=True):
        np.testing.assert_allclose(fused, keras_own, rtol=1e-4, atol=1e-6)  # rounding order
    assert not np.allclose(trajectories[0][0], start[0])  # the steps did move the weights


def test_with_a_gpu_keras_own_kernels_run(monkeypatch):
    # No GPU here: pretend TensorFlow sees one, to check that the CPU forms then stay off.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [kind])
    assert not kernels.enabled()
    autoencoder = build_autoencoder("cnn", latent_dim=196)
    assert "call" not in vars(autoencoder.decoder)
    assert "call" not in vars(autoencoder.encoder.get_layer("enc_pool"))
