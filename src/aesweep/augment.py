"""Random shifts and rotations of training digits, drawn per batch inside the compiled step.

DEC-DA (Guo et al., ACML 2018) trains on digits moved by up to 10 % of the width and the
height and turned by up to 10 degrees, what Keras' deprecated ``ImageDataGenerator(
width_shift_range=0.1, height_shift_range=0.1, rotation_range=10)`` drew. Here each digit
of a batch gets its own shift and angle, drawn with TensorFlow's stateless random ops from
the run's seed and the batch's position, and one projective transform (bilinear, zeros
outside: the op behind Keras' ``RandomRotation`` and ``RandomTranslation``) moves the whole
batch: no Python per image, the same batches for the same seed, and the same code on
Keras' own layers and on aesweep's CPU formulations of them (it runs before the model).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from aesweep.config import AugmentConfig

#: ``augment(batch, seed) -> batch``: ``seed`` is a shape-[2] int tensor
Augment = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def draw(config: AugmentConfig, n: int | tf.Tensor, seed: tf.Tensor, *, size: tuple[int, int]):
    """Per digit: an angle (radians) and a shift (dx, dy) in pixels, uniform in the ranges."""
    height, width = size
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    def uniform(seed_row: tf.Tensor, half_range: float) -> tf.Tensor:
        return tf.random.stateless_uniform(
            [n], seed=seed_row, minval=-half_range, maxval=half_range
        )

    angle = uniform(seeds[0], math.radians(config.rotation))
    dx = uniform(seeds[1], config.width_shift * width)
    dy = uniform(seeds[2], config.height_shift * height)
    return angle, dx, dy


def transform(images: tf.Tensor, angle: tf.Tensor, dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """``images`` (n, h, w, c) each turned by ``angle`` about its centre, then moved by
    (``dx``, ``dy``) pixels (right, down); bilinear, zeros where nothing is moved in.

    The op maps each output pixel to the input point it samples: the inverse motion,
    ``R(-angle) (p - centre - shift) + centre``.
    """
    height, width = images.shape[1], images.shape[2]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    zeros = tf.zeros_like(angle)
    matrices = tf.stack(
        [
            cos,
            sin,
            cx - cos * (cx + dx) - sin * (cy + dy),
            -sin,
            cos,
            cy + sin * (cx + dx) - cos * (cy + dy),
            zeros,
            zeros,
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrices,
        output_shape=tf.constant([height, width], tf.int32),
        fill_value=tf.constant(0.0, images.dtype),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def make_augment(config: AugmentConfig, image_shape: tuple[int, int] = (28, 28)) -> Augment | None:
    """The function that augments a batch of digits (flat, ``(n, h*w)``, or images,
    ``(n, h, w, 1)``) as ``config`` says; None when it changes nothing."""
    if not config.enabled:
        return None

    def augment(batch: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        images = tf.reshape(batch, (-1, *image_shape, 1))
        angle, dx, dy = draw(config, tf.shape(images)[0], seed, size=image_shape)
        # What moves in from outside is each digit's own background: 0 on unit-scaled
        # pixels, -mean/std after data.scaling=zscore (bilinear sampling is linear).
        background = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
        moved = transform(images - background, angle, dx, dy) + background
        return tf.reshape(moved, tf.shape(batch))

    return augment


def batch_seed(seed: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """The seed of batch ``index`` of a call seeded ``seed``: distinct per batch."""
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(index, tf.int64)
    )


def as_seen(config: AugmentConfig, digits: np.ndarray, *, seed: int) -> np.ndarray:
    """``digits`` as one training batch would show them to the network (the figure's)."""
    augment = make_augment(config)
    if augment is None:
        return digits
    return augment(tf.constant(digits), tf.constant([seed, 0], tf.int64)).numpy()
