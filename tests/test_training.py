"""aesweep's training path against plain Keras on the same weights and inputs."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from aesweep.errors import TrainingDiverged
from aesweep.models import build_autoencoder
from aesweep.training import compile_autoencoder, make_epoch_step, train_autoencoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import plain_keras  # noqa: E402  the seed's networks in plain Keras

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("arch", ["ffn", "cnn"])
def test_one_epoch_equals_keras_fit_on_the_same_weights(arch):
    x = RNG.normal(size=(250, 784)).astype("float32")
    x = x if arch == "ffn" else (x.reshape(-1, 28, 28, 1) > 0.5).astype("float32")
    plain, _ = plain_keras.build(arch)
    ours = build_autoencoder(arch, latent_dim=100 if arch == "ffn" else 196).model
    ours.set_weights(plain.get_weights())
    plain.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    compile_autoencoder(ours, learning_rate=0.001)  # with the fused Adam kernel on a CPU
    fitted = plain.fit(x, x, batch_size=100, epochs=1, shuffle=False, verbose=0)
    step = make_epoch_step(ours, x, batch_size=100)  # 3 batches, the last one of 50
    loss = float(step(tf.range(len(x))))
    assert loss == pytest.approx(fitted.history["loss"][0], rel=1e-5)
    for w_ours, w_plain in zip(ours.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(w_ours, w_plain, rtol=1e-4, atol=1e-6)


def test_training_reduces_the_loss_and_reports_each_epoch():
    x = RNG.normal(size=(120, 784)).astype("float32")
    seen = []
    model = build_autoencoder("ffn", latent_dim=16).model
    history = train_autoencoder(
        model,
        x[:90],
        x[90:],
        learning_rate=0.001,
        epochs=4,
        batch_size=30,
        on_epoch_end=lambda epoch, losses: seen.append((epoch, sorted(losses))),
    )
    assert seen == [(e, ["loss", "val_loss"]) for e in (1, 2, 3, 4)]
    assert history.loss[-1] < history.loss[0] and len(history.val_loss) == 4
    assert history.seconds_per_epoch > 0


def test_a_diverging_loss_stops_training_at_that_epoch():
    x = RNG.normal(size=(60, 784)).astype("float32")
    model = build_autoencoder("ffn", latent_dim=8).model
    with pytest.raises(TrainingDiverged) as info:
        train_autoencoder(model, x, None, learning_rate=1e12, epochs=50, batch_size=30)
    assert 1 <= info.value.epoch < 50


def test_a_loss_that_explodes_without_reaching_inf_also_counts_as_diverged():
    x = RNG.normal(size=(300, 784)).astype("float32")
    model = build_autoencoder("ffn", latent_dim=100).model
    with pytest.raises(TrainingDiverged, match="all-zeros output"):
        train_autoencoder(model, x, None, learning_rate=10.0, epochs=30, batch_size=100)
