"""aesweep.kernels against Keras' own layers: same outputs and gradients on the same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_close_to_scale
from keras import layers

from aesweep import kernels, models

RNG = np.random.default_rng(0)
EPS = float(np.finfo(np.float32).eps)  # 2**-23, float32's relative spacing


# Outputs and gradients, to a fraction of each tensor's largest magnitude. A sum of n
# float32 terms is typically off by about sqrt(n)*eps of its terms, n*eps at worst; the
# longest sums here, a kernel's gradient over 16 inputs of 28 x 28 pixels, have n ~ 1e4:
# sqrt(n)*eps ~ 1.3e-5 (measured: up to 3e-5 over many draws), n*eps ~ 1.5e-3. A tap
# read from a wrong offset is off by 0.4 to 1.4 of the scale.
REL = 3e-4


def _outputs_and_gradients(model: keras.Model, x: np.ndarray, upstream: np.ndarray):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *model.trainable_variables])]


def _assert_same(fast: keras.Model, plain: keras.Model, x: np.ndarray, *, wrt_input=True):
    fast.set_weights(
        [RNG.normal(scale=0.3, size=w.shape).astype("float32") for w in plain.get_weights()]
    )
    plain.set_weights(fast.get_weights())
    upstream = RNG.normal(size=(len(x), *plain.output.shape[1:])).astype("float32")
    y_fast, g_fast = _outputs_and_gradients(fast, x, upstream)
    y_plain, g_plain = _outputs_and_gradients(plain, x, upstream)
    assert_close_to_scale(y_fast, y_plain, rel=REL)
    pairs = list(zip(g_fast, g_plain, strict=True))  # input first, then each weight
    for ours, theirs in pairs if wrt_input else pairs[1:]:
        assert_close_to_scale(ours, theirs, rel=REL)


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
    # An input's gradient sums the upstream of the (at most 25) windows it is the maximum
    # of, in another order: off by at most 25 eps of a sum of at most 25 upstream values.
    assert_close_to_scale(g_fast[0], g_plain[0], rel=25 * EPS, scale=25 * np.abs(upstream).max())


@pytest.mark.parametrize("latent_dim", [196, 12])  # 196 is read as the 14x14 image; 12 is projected
@pytest.mark.parametrize(
    ("hidden", "output"), [("relu", "linear"), ("sigmoid", "sigmoid"), ("relu", "relu")]
)
def test_cnn_decoder_equals_keras_layers(latent_dim, hidden, output):
    fast, plain = (
        models.cnn(latent_dim=latent_dim, hidden=hidden, output=output, fast_kernels=on).get_layer(
            "decoder"
        )
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
            4,
            up_kernel,
            strides=stride,
            padding="same",
            activation="relu",
            name=kernels.UPSAMPLE_LAYER,
        )(x)
        x = layers.Conv2D(1, out_kernel, padding="same", name=kernels.RECONSTRUCTION_LAYER)(x)
        return keras.Model(inputs, x)

    fast, plain = kernels.upsampling_decoder(decoder()), decoder()
    assert "call" in vars(fast)
    _assert_same(fast, plain, RNG.normal(size=(5, 36)).astype("float32"))


def test_whole_cnn_equals_keras_layers_on_a_batch():
    fast, plain = (models.cnn(latent_dim=196, fast_kernels=on) for on in (True, False))
    x = (RNG.random(size=(12, 28, 28, 1)) > 0.6).astype("float32")
    # Binary digits give equal maxima in a pooling window (identical patches), and Keras'
    # pooling and the separable one send the gradient to different ones of them: the
    # weights' gradients are the same (identical patches), the input's differ there.
    _assert_same(fast, plain, x, wrt_input=False)


def test_other_layer_settings_keep_keras_own_call():
    inputs = keras.Input((36,))
    x = layers.Reshape((6, 6, 1), name="dec_reshape")(inputs)
    x = layers.Conv2DTranspose(4, 4, strides=2, padding="valid", name=kernels.UPSAMPLE_LAYER)(x)
    x = layers.Conv2D(1, 4, padding="same", name=kernels.RECONSTRUCTION_LAYER)(x)
    assert "call" not in vars(kernels.upsampling_decoder(keras.Model(inputs, x)))
    strided = layers.MaxPooling2D(2)
    assert "call" not in vars(kernels.separable_max_pooling(strided))


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    shapes = [(30, 7), (7,)]
    start = [RNG.normal(size=s).astype("float32") for s in shapes]
    gradients = [[RNG.normal(size=s).astype("float32") for s in shapes] for _ in range(5)]
    learning_rate, steps = 0.01, len(gradients)
    trajectories = []
    for fuse in (False, True):
        variables = [keras.Variable(w) for w in start]
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build(variables)
        if fuse:
            assert "update_step" in vars(kernels.fused_adam(optimizer))  # the fused kernel runs
        for step in gradients:
            optimizer.apply_gradients(zip(step, variables, strict=True))
        trajectories.append(([v.numpy() for v in variables], optimizer.variables[2:]))  # m, v
    (weights, slots), (fused_weights, fused_slots) = trajectories
    # TensorFlow's kernel takes beta_1, beta_2 as float32 and forms 1 - beta_2 from them:
    # 0.999 is stored to within eps/2, 6e-5 of 1 - beta_2. So v, a positive running mean
    # of g**2 (its own size bounds its terms), may differ by 6e-5 of itself, and m (1 - 0.9
    # rounds to 5e-7 of itself) by a few eps of the gradients' size.
    for fused, keras_own in zip(fused_slots, slots, strict=True):
        assert_close_to_scale(fused.numpy(), keras_own.numpy(), rel=1e-4)
    # The weights differ by what the steps added, about lr each: the steps by up to 3e-5
    # of themselves (sqrt(v)), and storing a weight by eps*|w|, 4e-5 of a step for |w| ~ 3
    # (drawn from N(0, 1) here). A learning rate off by 0.1% is off by 1e-3 of lr*steps.
    for fused, keras_own in zip(fused_weights, weights, strict=True):
        assert_close_to_scale(fused, keras_own, rel=1e-4, scale=learning_rate * steps)
    assert not np.allclose(weights[0], start[0])  # the steps did move the weights


@pytest.mark.parametrize("name", kernels._ADAM_PRIVATE_API)
def test_without_keras_private_slots_fused_adam_warns_and_keeps_keras_update(name, monkeypatch):
    start = RNG.normal(size=(6, 3)).astype("float32")
    variables = [keras.Variable(start), keras.Variable(start)]
    tested, reference = (keras.optimizers.Adam(learning_rate=0.01) for _ in range(2))
    tested.build(variables[:1])
    reference.build(variables[1:])
    # A later Keras may drop or rename the private attribute: hide it while fused_adam
    # looks, then give it back, as Keras' own update_step reads it (in that later Keras,
    # under its new name).
    with monkeypatch.context() as hidden:
        if name in vars(tested):
            hidden.delitem(vars(tested), name)
        else:
            hidden.delattr(next(c for c in type(tested).__mro__ if name in vars(c)), name)
        assert not hasattr(tested, name)
        with pytest.warns(RuntimeWarning, match=name):
            assert kernels.fused_adam(tested) is tested
    assert "update_step" not in vars(tested)  # Keras' own method
    for _ in range(3):
        gradient = RNG.normal(size=(6, 3)).astype("float32")
        tested.apply_gradients([(gradient, variables[0])])
        reference.apply_gradients([(gradient, variables[1])])
    np.testing.assert_array_equal(variables[0].numpy(), variables[1].numpy())  # same code
    assert not np.allclose(variables[0].numpy(), start)


def test_with_a_gpu_keras_own_kernels_run(monkeypatch):
    # No GPU here: pretend TensorFlow sees one, to check that the CPU forms then stay off.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [kind])
    assert not kernels.enabled()
    autoencoder = models.cnn(latent_dim=196)
    assert "call" not in vars(autoencoder.get_layer("decoder"))
    assert "call" not in vars(autoencoder.get_layer("encoder").get_layer("enc_pool"))
