"""Which digits a run saw, and the pixel reference: KMeans on the raw pixels of those digits.

The reference answers the seed's first question (does a latent cluster better than the
pixels of the same digits?) whatever the jobs train, cluster with or fine-tune: it is
built from the data selection alone, with the seed's KMeans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aesweep import clustering, data
from aesweep.config import ClusterConfig, ExperimentConfig


def data_selection(cfg: ExperimentConfig) -> dict[str, Any]:
    """What picks a run's digits: the data settings (not their scaling) and the seed."""
    path = cfg.data.path and str(Path(cfg.data.path).expanduser().resolve())
    return {
        "data.source": cfg.data.source.value,
        "data.path": path,
        "data.allow_pickle": cfg.data.allow_pickle,
        "data.n_samples": cfg.data.n_samples,
        "data.n_test": cfg.data.n_test,
        "seed": cfg.seed,
    }


def pixel_reference(selection: dict[str, Any], *, n_clusters: int) -> dict[str, float]:
    """The seed's KMeans (``n_clusters`` of them) on the pixels (/255) of the digits that
    ``selection`` (:func:`data_selection`) picks: ``cluster/...`` scores on the training
    digits, ``test/...`` on the held-out ones, which it assigns without refitting."""
    images, labels = data.load(
        selection["data.source"],
        selection["data.path"],
        allow_pickle=selection["data.allow_pickle"],
    )
    seed = selection["seed"]
    train_idx, test_idx = data.split(
        labels,
        n_samples=selection["data.n_samples"],
        n_test=selection["data.n_test"],
        random_state=seed,
    )
    train = data.prepare(images, labels, train_idx, scaling="unit")
    test = data.prepare(images, labels, test_idx, scaling="unit")
    config = ClusterConfig.seed_kmeans()
    config.n_clusters = n_clusters
    kmeans = clustering.make_clusterer(config, random_state=seed)
    # as_samples: the dtype arch=pixels clusters in, so that its job and this agree
    scores = clustering.split_scores(
        train.labels, kmeans.fit_predict(clustering.as_samples(train.x))
    )
    if len(test.labels):
        test_pred = kmeans.predict(clustering.as_samples(test.x))
        scores |= clustering.split_scores(test.labels, test_pred, split="test")
    return scores
