"""What a figure shows, chosen apart from how it is drawn: cluster members, one digit per
label, a search's best so far."""

from __future__ import annotations

import numpy as np


def pick_cluster_members(
    labels_pred: np.ndarray, *, n_clusters: int, per_cluster: int = 10
) -> list[np.ndarray]:
    """The first ``per_cluster`` member indices of each cluster (fewer if it is small)."""
    return [np.flatnonzero(labels_pred == k)[:per_cluster] for k in range(n_clusters)]


def first_of_each_label(labels: np.ndarray) -> np.ndarray:
    """Index of the first sample of each distinct label, in label order."""
    _, first = np.unique(labels, return_index=True)
    return first


def best_so_far(values: np.ndarray, *, maximize: bool = True) -> np.ndarray:
    """The running best of ``values`` (NaN for failed trials is skipped; NaN until a value).

    Parameters
    ----------
    values : ndarray of shape (n_trials,), in trial order
    """
    best, out = np.nan, np.empty(len(values))
    for i, value in enumerate(values):
        if np.isfinite(value) and (np.isnan(best) or (value > best) == maximize):
            best = value
        out[i] = best
    return out
