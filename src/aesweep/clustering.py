"""Clusterers of features, and the four scores of a clustering against the true digits.

Each clusterer is a scikit-learn estimator: KMeans, a Gaussian mixture, or either one
after a UMAP embedding (N2D, McConville et al. 2021) as a :class:`~sklearn.pipeline.Pipeline`.
``fit_predict`` clusters the training features; ``predict`` assigns new points to the
fitted clusters (through the fitted UMAP's ``transform`` in a pipeline).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline

from aesweep.config import KMEANS_CLUSTERERS, UMAP_CLUSTERERS, ClusterConfig


def make_clusterer(config: ClusterConfig, *, random_state: int | None) -> BaseEstimator:
    """The unfitted clusterer that ``config`` describes.

    Parameters
    ----------
    config : ClusterConfig
        A validated clusterer: its ``name`` and the keys that clusterer reads.
    random_state : int or None
        Seeds every part (UMAP's layout and transform, KMeans' or the mixture's
        initialisations); None leaves them unseeded, and UMAP then uses all cores.

    Returns
    -------
    estimator
        ``KMeans``, ``GaussianMixture`` or ``Pipeline([("umap", UMAP), ("cluster", either)])``,
        with ``fit_predict(X)`` and ``predict(X)`` on ``X`` of shape (n_samples, n_features),
        returning labels of shape (n_samples,) in ``0 .. n_clusters - 1``.
    """
    if config.name in KMEANS_CLUSTERERS:
        clusterer = KMeans(
            n_clusters=config.n_clusters,
            init=config.init,
            n_init=config.n_init,
            max_iter=config.max_iter,
            tol=config.tol,
            random_state=random_state,
        )
    else:
        clusterer = GaussianMixture(
            n_components=config.n_clusters,
            covariance_type=config.covariance_type.value,
            n_init=config.n_init,
            max_iter=config.max_iter,
            tol=config.tol,
            reg_covar=config.reg_covar,
            random_state=random_state,
        )
    if config.name not in UMAP_CLUSTERERS:
        return clusterer
    return Pipeline(
        [("umap", _make_umap(config, random_state=random_state)), ("cluster", clusterer)]
    )


def _make_umap(config: ClusterConfig, *, random_state: int | None) -> BaseEstimator:
    # umap-learn compiles numba functions when first imported and used (10-30 s): only a
    # run that embeds pays for it. Its package also imports TensorFlow for ParametricUMAP,
    # which aesweep never uses (10-20 s more where nothing else loaded it): an import
    # blocked in sys.modules fails, which umap catches, and is unblocked afterwards.
    blocked = "umap" not in sys.modules and "umap.parametric_umap" not in sys.modules
    if blocked:
        sys.modules["umap.parametric_umap"] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)  # "Tensorflow not installed"
            from umap import UMAP
    finally:
        if blocked:
            del sys.modules["umap.parametric_umap"]

    # Seeded, UMAP runs on one thread whatever n_jobs says (and warns if told otherwise).
    seeding = (
        {"n_jobs": -1}
        if random_state is None
        else {"random_state": random_state, "transform_seed": random_state, "n_jobs": 1}
    )
    return UMAP(
        n_components=config.umap_n_components,
        n_neighbors=config.umap.n_neighbors,
        min_dist=config.umap.min_dist,
        metric=config.umap.metric.value,
        **seeding,
    )


def as_samples(features: np.ndarray) -> np.ndarray:
    """``features`` as a float64 matrix of shape (n_samples, n_features), also when empty.

    One dtype for fit and predict, whatever made the features (Keras: float32, PCA:
    float64), and float64 spares a mixture's covariances float32's rounding.
    """
    n_features = int(np.prod(features.shape[1:]))
    return np.asarray(features, dtype=np.float64).reshape(len(features), n_features)


def purity_score(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Fraction of samples that carry their cluster's majority label."""
    table = contingency_matrix(labels_true, labels_pred)
    return float(table.max(axis=0).sum() / table.sum())


def hungarian_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of clusters to labels.

    Unlike purity, two clusters cannot both claim the same digit.
    """
    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def matched_contingency(
    labels_true: np.ndarray, labels_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The label x cluster count table, its clusters ordered by the Hungarian matching.

    The j-th column holds the cluster matched to the j-th row's label, so the matched
    counts lie on the diagonal and ``np.trace(table) / table.sum()`` is
    :func:`hungarian_accuracy`. Rows are the labels in increasing order; unmatched
    clusters (more clusters than labels) follow in id order, and unmatched labels (fewer
    clusters than labels) move to the bottom rows.

    Returns
    -------
    table : ndarray of shape (n_labels, n_clusters)
        ``table[i, j]`` counts the samples of label ``labels[i]`` in cluster
        ``clusters[j]``.
    labels : ndarray of shape (n_labels,)
        The true label of each row.
    clusters : ndarray of shape (n_clusters,)
        The cluster id of each column.
    """
    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    rows = np.concatenate([rows, np.setdiff1d(np.arange(table.shape[0]), rows)])
    cols = np.concatenate([cols, np.setdiff1d(np.arange(table.shape[1]), cols)])
    return (
        table[np.ix_(rows, cols)],
        np.unique(labels_true)[rows],
        np.unique(labels_pred)[cols],
    )


def cluster_scores(labels_true: np.ndarray, labels_pred: np.ndarray) -> dict[str, float]:
    """Purity, Hungarian accuracy, NMI and ARI, keyed by their short names."""
    return {
        "purity": purity_score(labels_true, labels_pred),
        "acc": hungarian_accuracy(labels_true, labels_pred),
        "nmi": float(normalized_mutual_info_score(labels_true, labels_pred)),
        "ari": float(adjusted_rand_score(labels_true, labels_pred)),
    }


def scores_line(scores: dict[str, float]) -> str:
    """``cluster/acc 0.812  cluster/nmi 0.734 ...``, as the log shows a run's scores."""
    return "  ".join(f"{k} {v:.3f}" for k, v in scores.items())


def split_scores(
    labels_true: np.ndarray, labels_pred: np.ndarray, *, split: str = "cluster"
) -> dict[str, float]:
    """:func:`cluster_scores` as a run's metrics: ``cluster/acc`` for the training digits'
    clusters, ``test/acc`` (``split="test"``) for the held-out digits'."""
    return {f"{split}/{k}": v for k, v in cluster_scores(labels_true, labels_pred).items()}


def score_features(
    config: ClusterConfig,
    *,
    random_state: int,
    train: np.ndarray,
    test: np.ndarray,
    labels: np.ndarray,
    test_labels: np.ndarray,
) -> tuple[dict[str, float], np.ndarray, BaseEstimator]:
    """The ``config`` clusterer fitted on the ``train`` features, scored there against
    ``labels`` and on the held-out ``test`` features, which it assigns to the fitted
    clusters without refitting.

    Returns the scores (:func:`split_scores`: ``cluster/...``, ``test/...``), the training
    digits' cluster labels and the fitted clusterer.
    """
    x_train = as_samples(train)
    config.check_n_samples(len(x_train))
    clusterer = make_clusterer(config, random_state=random_state)
    # fit_predict, not predict: a UMAP's labels are those of its fitted embedding
    labels_pred = clusterer.fit_predict(x_train)
    scores = split_scores(labels, labels_pred)
    if len(test_labels):
        test_pred = clusterer.predict(as_samples(test))
        scores |= split_scores(test_labels, test_pred, split="test")
    return scores, labels_pred, clusterer
