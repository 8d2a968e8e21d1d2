"""aesweep's training path against plain Keras on the same weights and inputs."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from aesweep import models
from aesweep.errors import TrainingDiverged
from aesweep.training import compile_autoencoder, make_epoch_step, train_autoencoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import plain_keras  # noqa: E402  the seed's networks in plain Keras
from conftest import assert_close_to_scale  # noqa: E402

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("arch", ["ffn", "cnn"])
def test_one_epoch_equals_keras_fit_on_the_same_weights(arch):
    x = RNG.normal(size=(250, 784)).astype("float32")
    x = x if arch == "ffn" else (x.reshape(-1, 28, 28, 1) > 0.5).astype("float32")
    plain, _ = plain_keras.build(arch)
    ours = getattr(models, arch)(latent_dim=100 if arch == "ffn" else 196)
    start = plain.get_weights()
    ours.set_weights(start)
    plain.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    compile_autoencoder(ours, learning_rate=0.001)  # with the fused Adam kernel on a CPU
    fitted = plain.fit(x, x, batch_size=100, epochs=1, shuffle=False, verbose=0)
    step = make_epoch_step(ours, x, batch_size=100)  # 3 batches, the last one of 50
    loss = float(step(tf.range(len(x))))
    # A mean of squares: its terms are positive, so the loss itself is their size. Its own
    # rounding is ~1e-6 of it; batches 2 and 3 see weights that differ by the steps below
    # (measured: up to 1e-5 in all). Averaging the batches' losses unweighted is off by
    # 3e-3, a learning rate 1% off by 2e-4 to 1e-2.
    assert_close_to_scale(loss, fitted.history["loss"][0], rel=1e-4)
    # Adam steps each weight by lr * m/sqrt(v), its gradient over its own gradients' size:
    # a weight whose gradient is near its tensor's rounding level takes a step of up to lr
    # set by that rounding, and ReLU kinks pass such differences on. So no tolerance per
    # weight below lr*steps holds: compare each tensor's whole move instead (measured over
    # 150 random cnn starts: differences up to 5e-3 of it, median 3e-5). A learning rate
    # 10% off is 0.1 to 0.2 of it, a missed batch 0.2, reordered batches 0.8.
    for w_ours, w_plain, w_start in zip(
        ours.get_weights(), plain.get_weights(), start, strict=True
    ):
        assert np.linalg.norm(w_ours - w_plain) <= 2e-2 * np.linalg.norm(w_plain - w_start)


def test_training_reduces_the_loss_and_reports_each_epoch():
    x = RNG.normal(size=(120, 784)).astype("float32")
    seen = []
    model = models.ffn(latent_dim=16)
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
    model = models.ffn(latent_dim=8)
    with pytest.raises(TrainingDiverged) as info:
        train_autoencoder(model, x, None, learning_rate=1e12, epochs=50, batch_size=30)
    assert 1 <= info.value.epoch < 50


def test_a_loss_that_explodes_without_reaching_inf_also_counts_as_diverged():
    x = RNG.normal(size=(300, 784)).astype("float32")
    model = models.ffn(latent_dim=100)
    with pytest.raises(TrainingDiverged, match="all-zeros output"):
        train_autoencoder(model, x, None, learning_rate=10.0, epochs=30, batch_size=100)
