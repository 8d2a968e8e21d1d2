import numpy as np
import pytest

from aesweep.clustering import cluster_scores, fit_kmeans, hungarian_accuracy, purity_score


def test_purity_and_accuracy_differ_when_two_clusters_share_a_majority():
    # Clusters 0 and 1 are both mostly digit 0: purity counts both majorities,
    # the one-to-one matching gives one of them to digit 1.
    labels_true = np.array([0, 0, 0, 1, 0, 0, 1, 1, 2, 2])
    labels_pred = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    # majorities: cluster0 -> 0 (3 of 4), cluster1 -> 0 (2 of 3), cluster2 -> 2 (2 of 3)
    assert purity_score(labels_true, labels_pred) == pytest.approx(7 / 10)
    # best one-to-one matching: c0->0 (3), c1->1 (1), c2->2 (2)
    assert hungarian_accuracy(labels_true, labels_pred) == pytest.approx(6 / 10)


def test_scores_are_perfect_for_a_relabelled_partition():
    labels_true = np.array([0, 0, 1, 1, 2, 2])
    labels_pred = np.array([2, 2, 0, 0, 1, 1])
    assert cluster_scores(labels_true, labels_pred) == pytest.approx(
        {"purity": 1.0, "acc": 1.0, "nmi": 1.0, "ari": 1.0}
    )


def test_accuracy_counts_unmatched_clusters_as_errors():
    # Four clusters for two labels: two clusters stay unmatched.
    labels_true = np.array([0, 0, 1, 1])
    labels_pred = np.array([0, 1, 2, 3])
    assert purity_score(labels_true, labels_pred) == 1.0
    assert hungarian_accuracy(labels_true, labels_pred) == 0.5


def test_kmeans_is_reproducible_and_separates_blobs():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.1, size=(20, 3)) for c in (0, 5, 10)])
    truth = np.repeat([0, 1, 2], 20)
    a = fit_kmeans(blobs, n_clusters=3, random_state=1).labels_
    b = fit_kmeans(blobs, n_clusters=3, random_state=1).labels_
    assert (a == b).all()
    assert hungarian_accuracy(truth, a) == 1.0


def test_kmeans_rejects_more_clusters_than_samples():
    with pytest.raises(ValueError, match="cluster.n_clusters=10"):
        fit_kmeans(np.zeros((5, 2)), n_clusters=10)
