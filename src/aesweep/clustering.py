"""KMeans on features and the four scores of a clustering against the true digits."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from aesweep.errors import InputError


def fit_kmeans(
    features: np.ndarray,
    *,
    n_clusters: int = 10,
    init: str = "k-means++",
    n_init: int = 3,
    max_iter: int = 300,
    tol: float = 1e-4,
    random_state: int = 42,
) -> KMeans:
    """Fit the seed's KMeans on ``features`` of shape (n_samples, n_features)."""
    if len(features) < n_clusters:
        raise InputError(
            f"cluster.n_clusters={n_clusters} exceeds the {len(features)} samples to cluster"
        )
    kmeans = KMeans(
        n_clusters=n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
    )
    return kmeans.fit(features.reshape(len(features), -1))


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


def cluster_scores(labels_true: np.ndarray, labels_pred: np.ndarray) -> dict[str, float]:
    """Purity, Hungarian accuracy, NMI and ARI, keyed by their short names."""
    return {
        "purity": purity_score(labels_true, labels_pred),
        "acc": hungarian_accuracy(labels_true, labels_pred),
        "nmi": float(normalized_mutual_info_score(labels_true, labels_pred)),
        "ari": float(adjusted_rand_score(labels_true, labels_pred)),
    }
