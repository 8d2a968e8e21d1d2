"""A run's fine-tuning step: DEC/IDEC (:mod:`aesweep.finetune`) or self-labelling
(:mod:`aesweep.selflabel`) of its trained encoder, and the scores of what comes out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator

from aesweep.augment import Augment
from aesweep.clustering import split_scores
from aesweep.config import FinetuneConfig, FinetuneName
from aesweep.data import Digits
from aesweep.features import RECONSTRUCTED, Features
from aesweep.finetune import FineTuned, Update, fine_tune
from aesweep.selflabel import self_label
from aesweep.training import encode


def fine_tune_features(
    features: Features,
    clusterer: BaseEstimator,
    labels: np.ndarray,
    train: Digits,
    test: Digits,
    config: FinetuneConfig,
    *,
    n_clusters: int,
    random_state: int,
    on_update: Callable[[Update], None] | None = None,
    augment: Augment | None = None,
) -> tuple[Features, dict[str, float], np.ndarray, FineTuned]:
    """DEC or IDEC of ``features``' autoencoder from the KMeans ``clusterer``'s centres, or
    self-labelling towards the ``clusterer``'s training ``labels``: the fine-tuned latents,
    their scores (labels are argmax q, for the held-out digits too), the training labels,
    and the fine-tuning (its ``model`` maps an image to q)."""
    if config.name == FinetuneName.selflabel:
        tuned = self_label(
            features.autoencoder,
            labels,
            train.x,
            config,
            n_clusters=n_clusters,
            random_state=random_state,
            on_update=on_update,
            augment=augment,
        )
    else:
        tuned = fine_tune(
            features.autoencoder,
            clusterer.cluster_centers_,
            train.x,
            config,
            random_state=random_state,
            on_update=on_update,
            augment=augment,
        )
    # The training digits' z and q are those of the last check of the stopping rule.
    labels_pred = tuned.train_q.argmax(axis=1)
    test_z, test_q = tuned.latents_and_assignments(test.x)
    scores = split_scores(train.labels, labels_pred)
    if len(test.labels):
        scores |= split_scores(test.labels, test_q.argmax(axis=1), split="test")
    finetuned = dataclasses.replace(
        features,
        train=tuned.train_latents,
        test=test_z,
        # IDEC trained the decoder along: show its reconstructions now; DEC dropped it.
        decoded=encode(features.autoencoder, train.x[:RECONSTRUCTED])
        if config.name == FinetuneName.idec
        else features.decoded,
    )
    return finetuned, scores, labels_pred, tuned
