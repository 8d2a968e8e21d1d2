"""Augmented training (DEC-DA): the batches the network sees, and what it never sees moved.

Tiny data, in process: the transform itself, the ranges and the seeds, then pretraining
and fine-tuning with augmentation, checked to leave the held-out digits and DEC's target
on the clean digits.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import CONF_DIR, LEAN_PICTURED, TINY, compose_config, image_steps
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient
from user_nets import small_dense

from aesweep import augment, finetune, fingerprint
from aesweep.config import AugmentConfig, FinetuneConfig, to_experiment_config
from aesweep.data import load_mnist_sample, scale
from aesweep.errors import InputError
from aesweep.experiment import run_experiment
from aesweep.sweep import validate_jobs
from aesweep.training import make_eval_step, train_autoencoder

SHIFT = AugmentConfig(name="shift", width_shift=0.1, height_shift=0.1, rotation=10.0)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """200 embedded digits as unit-scaled images, (n, 28, 28, 1)."""
    x, _ = load_mnist_sample()
    chosen = np.random.default_rng(0).choice(len(x), 200, replace=False)
    return (x[chosen] / 255.0).reshape(-1, 28, 28, 1).astype("float32")


def _centre_of_mass(images: np.ndarray) -> np.ndarray:
    """(x, y) of each image's ink."""
    ink = images[..., 0]
    rows, cols = np.mgrid[: ink.shape[1], : ink.shape[2]]
    total = ink.sum(axis=(1, 2))
    return np.stack(
        [(ink * cols).sum(axis=(1, 2)) / total, (ink * rows).sum(axis=(1, 2)) / total], 1
    )


def test_a_shift_of_k_pixels_moves_the_centre_of_mass_by_k(digits):
    n = len(digits)
    for dx, dy in [(3.0, 0.0), (0.0, -2.0), (2.5, 1.5)]:
        moved = augment.transform(
            tf.constant(digits), tf.zeros(n), tf.fill([n], dx), tf.fill([n], dy)
        ).numpy()
        shift = _centre_of_mass(moved) - _centre_of_mass(digits)
        np.testing.assert_allclose(np.median(shift, axis=0), [dx, dy], atol=0.1)


def test_no_rotation_and_no_shift_give_the_clean_batch_back_exactly(digits):
    n = len(digits)
    same = augment.transform(tf.constant(digits), tf.zeros(n), tf.zeros(n), tf.zeros(n))
    np.testing.assert_array_equal(same.numpy(), digits)
    assert augment.make_augment(AugmentConfig()) is None  # augment=none: the seed's batches
    zero = AugmentConfig(name="shift", width_shift=0, height_shift=0, rotation=0)
    assert augment.make_augment(zero) is None


def test_draws_stay_in_their_ranges_and_the_same_seed_gives_the_same_batches(digits):
    angle, dx, dy = augment.draw(SHIFT, 5000, tf.constant([0, 1]), size=(28, 28))
    assert np.abs(angle.numpy()).max() <= math.radians(10) + 1e-6
    assert np.abs(dx.numpy()).max() <= 2.8 + 1e-5 and np.abs(dy.numpy()).max() <= 2.8 + 1e-5
    assert np.abs(dx.numpy()).max() > 2.5  # the whole range is drawn, not a corner of it
    flat = digits.reshape(len(digits), -1)
    step = augment.make_augment(SHIFT)
    first = step(tf.constant(flat), tf.constant([7, 3], tf.int64)).numpy()
    again = step(tf.constant(flat), tf.constant([7, 3], tf.int64)).numpy()
    other = step(tf.constant(flat), tf.constant([7, 4], tf.int64)).numpy()
    assert first.shape == flat.shape
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and not np.array_equal(first, flat)
    # moved, not blurred away: each digit keeps most of its ink
    assert np.median(first.sum(axis=1) / flat.sum(axis=1)) > 0.9
    # the cnn's image-shaped batches get the same digits, in their own shape
    images = step(tf.constant(digits), tf.constant([7, 3], tf.int64)).numpy()
    assert images.shape == digits.shape
    np.testing.assert_array_equal(images.reshape(len(digits), -1), first)


def test_what_moves_in_is_each_digits_own_background_z_scored_too(digits):
    raw = digits.reshape(len(digits), -1) * 255
    z_scored = scale(raw.reshape(-1, 28, 28), "zscore").reshape(len(raw), -1)
    background = z_scored.min(axis=1)  # a blank pixel's value: -mean/std, per digit
    moved = augment.make_augment(SHIFT)(tf.constant(z_scored), tf.constant([0, 0])).numpy()
    corners = moved.reshape(-1, 28, 28)[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    np.testing.assert_allclose(corners, np.repeat(background[:, None], 4, axis=1), atol=1e-5)


def test_pretraining_augments_the_training_digits_and_never_the_held_out_ones(digits):
    flat = digits.reshape(len(digits), -1)
    x_train, x_val = flat[:150], flat[150:]
    losses = {}
    for name, config in [("clean", None), ("shift", augment.make_augment(SHIFT))]:
        keras.utils.set_random_seed(0)
        model = small_dense(latent_dim=4)
        history = train_autoencoder(
            model, x_train, x_val, learning_rate=1e-3, epochs=2, batch_size=50, augment=config
        )
        # the reported val/loss is the model's loss on the clean held-out digits
        assert history.val_loss[-1] == pytest.approx(float(make_eval_step(model, x_val)()))
        losses[name] = history.loss
    assert losses["clean"] != losses["shift"]  # the training batches did differ


def test_fine_tuning_augments_its_steps_and_computes_p_on_the_clean_digits(digits):
    x = digits.reshape(len(digits), -1)
    keras.utils.set_random_seed(0)
    model = small_dense(latent_dim=4)
    train_autoencoder(model, x, None, learning_rate=1e-3, epochs=1, batch_size=50)
    z = model.get_layer("encoder")(x).numpy()
    centres = z[np.random.default_rng(0).choice(len(z), 10, replace=False)]
    config = FinetuneConfig(
        name="idec", alpha=1.0, update_interval=5, tol=0.0, max_steps=10, batch_size=50,
        optimizer="adam", lr=1e-3, gamma=0.1,
    )  # fmt: skip
    tuned = finetune.fine_tune(
        model, centres, x, config, random_state=0, augment=augment.make_augment(SHIFT)
    )
    # The q that P is made of, at the last check, is that of the clean training digits.
    _, clean_q = finetune.latents_and_assignments(tuned.probe, x)
    np.testing.assert_allclose(tuned.train_q, clean_q, rtol=1e-5, atol=1e-6)
    assert tuned.steps == 10


BAD = [
    ("augment.rotation=-5", "augment.rotation=-5.0 must be >= 0"),
    ("augment.width_shift=0.5", "augment.width_shift=0.5 must be below 0.5"),
    ("augment.height_shift=0.7", "augment.height_shift=0.7 must be below 0.5"),
    ("augment.rotation=180", "augment.rotation=180.0 must be below 180 degrees"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[o for o, _ in BAD])
def test_a_bad_range_fails_with_one_line(override, message):
    with pytest.raises(InputError) as caught:
        to_experiment_config(compose_config(["augment=shift", override]))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_augmenting_a_network_that_trains_nothing_is_refused():
    with pytest.raises(InputError, match="augment=shift augments training digits: arch=pca"):
        to_experiment_config(compose_config(["arch=pca", "augment=shift"]))


# --- The experiment presets, and an augmented run's records -------------------------------

PRESETS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.fixture(scope="module")
def keras_npz(tmp_path_factory) -> Path:
    """A Keras-layout .npz of 1,000 embedded digits: what data.path names in the full-MNIST
    presets."""
    x, labels = load_mnist_sample()
    chosen = np.random.default_rng(0).choice(len(x), 1000, replace=False)
    x, labels = x[chosen].reshape(-1, 28, 28), labels[chosen]
    path = tmp_path_factory.mktemp("npz") / "mnist.npz"
    np.savez(path, x_train=x[:800], y_train=labels[:800], x_test=x[800:], y_test=labels[800:])
    return path


@pytest.mark.xdist_group("umap")  # the process that compiled UMAP's numba code already
@pytest.mark.parametrize("preset", PRESETS)
def test_each_experiment_preset_composes_and_its_first_job_runs_shrunk(
    preset, keras_npz, workdir, monkeypatch
):
    monkeypatch.chdir(workdir)
    # tracking=off: what a preset sets is checked here, what a run records elsewhere
    shrunk = [f"experiment={preset}", *TINY, "tracking=off"]
    if "mnist" in preset:
        shrunk.append(f"data.path={keras_npz}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose("config", overrides=shrunk, return_hydra_config=True)
        validate_jobs(config)  # every job of its sweep, as a multirun checks them
        params = config.hydra.sweeper.get("params") or {}
        first = [f"{key}={str(value).split(',')[0]}" for key, value in params.items()]
        job = compose("config", overrides=[*shrunk, *first])
    value = run_experiment(job, root=workdir, overrides=first)
    assert math.isfinite(float(value)), preset
    assert len(PRESETS) >= 6  # one per results table of docs/results.md


def test_an_augmented_run_records_its_ranges_and_shows_the_digits_as_seen(workdir):
    store = f"sqlite:///{workdir}/mlflow.db"
    runs = {}
    for choice in ("none", "shift"):
        overrides = ["arch=dec", f"augment={choice}"]
        cfg = compose_config([*TINY, *LEAN_PICTURED, f"tracking.uri={store}", *overrides])
        run_experiment(cfg, root=workdir, overrides=overrides)
    client = MlflowClient(store)
    [experiment] = [e for e in client.search_experiments() if e.name == "aesweep"]
    for run in client.search_runs([experiment.experiment_id]):
        runs[run.data.params["augment.name"]] = run
    shift, none = runs["shift"], runs["none"]
    assert shift.data.params["augment.rotation"] == "10.0"
    assert shift.data.params["augment.width_shift"] == "0.1"
    assert "augmented_digits" in image_steps(client, shift.info.run_id)
    assert "augmented_digits" not in image_steps(client, none.info.run_id)
    # the ranges shape the network: in its training fingerprint, so the augmented run
    # trained its own network instead of reusing the clean one's
    assert fingerprint.shapes_training("augment.rotation")
    assert "aesweep.model_from" not in shift.data.tags
