import dataclasses

import numpy as np
import pytest
from conftest import compose_config
from hydra.errors import ConfigCompositionException, MissingConfigException
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from aesweep import data
from aesweep.clustering import (
    as_samples,
    cluster_scores,
    hungarian_accuracy,
    make_clusterer,
    purity_score,
)
from aesweep.config import ClusterConfig, ClusterName, to_experiment_config
from aesweep.errors import InputError

SCORES = {"purity", "acc", "nmi", "ari"}


def option(name: str, *overrides: str) -> ClusterConfig:
    """The clusterer of ``conf/cluster/<name>.yaml``, composed and checked as a run's."""
    return to_experiment_config(compose_config([f"cluster={name}", *overrides])).cluster


def blobs(n_per_blob: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in 3-D: (3 * n_per_blob, 3) points and labels."""
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.normal(c, 0.1, size=(n_per_blob, 3)) for c in (0, 5, 10)])
    return points.astype(np.float32), np.repeat([0, 1, 2], n_per_blob)


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


def test_the_default_clusterer_is_the_seeds_kmeans():
    assert option("kmeans") == to_experiment_config(compose_config()).cluster
    assert option("kmeans") == ClusterConfig.seed_kmeans()
    kmeans = make_clusterer(ClusterConfig.seed_kmeans(), random_state=7)
    assert isinstance(kmeans, KMeans)
    assert kmeans.get_params() == KMeans().get_params() | {
        "n_clusters": 10,
        "init": "k-means++",
        "n_init": 3,
        "max_iter": 300,
        "tol": 1e-4,
        "random_state": 7,
    }


def test_gmm_is_a_full_covariance_mixture_seeded_by_the_seed():
    gmm = make_clusterer(option("gmm"), random_state=7)
    assert isinstance(gmm, GaussianMixture)
    assert (gmm.n_components, gmm.covariance_type, gmm.random_state) == (10, "full", 7)


@pytest.mark.parametrize("name", ["kmeans", "gmm"])
def test_clusterer_separates_blobs_assigns_held_out_points_and_is_reproducible(name):
    config = dataclasses.replace(option(name), n_clusters=3)
    x_train, y_train = blobs(20, seed=0)
    x_test, y_test = blobs(5, seed=1)
    runs = []
    for _ in range(2):
        clusterer = make_clusterer(config, random_state=3)
        labels_pred = clusterer.fit_predict(as_samples(x_train))
        runs.append((labels_pred, clusterer.predict(as_samples(x_test))))
    (labels_pred, test_pred), (again, test_again) = runs
    assert (labels_pred == again).all() and (test_pred == test_again).all()
    assert cluster_scores(y_train, labels_pred) == pytest.approx(dict.fromkeys(SCORES, 1.0))
    assert cluster_scores(y_test, test_pred) == pytest.approx(dict.fromkeys(SCORES, 1.0))


@pytest.fixture(scope="module")
def few_digits() -> tuple[data.Digits, data.Digits]:
    """300 training and 100 held-out real digits, pixels / 255."""
    images, labels = data.load_mnist_sample()
    train_idx, test_idx = data.split(labels, n_samples=300, n_test=100, random_state=0)
    return tuple(data.prepare(images, labels, idx, scaling="unit") for idx in (train_idx, test_idx))


# Both in one worker, so that numba compiles UMAP's functions once (10-30 s).
@pytest.mark.slow
@pytest.mark.xdist_group("umap")
@pytest.mark.parametrize("name", ["umap_kmeans", "umap_gmm"])
def test_umap_clusterer_embeds_clusters_and_transforms_held_out_digits(name, few_digits):
    train, test = few_digits
    config = option(name)
    runs = []
    for _ in range(2):
        clusterer = make_clusterer(config, random_state=5)
        labels_pred = clusterer.fit_predict(as_samples(train.x))
        runs.append((labels_pred, clusterer.predict(as_samples(test.x))))
    umap, final = clusterer.named_steps["umap"], clusterer.named_steps["cluster"]
    # N2D's UMAP, and the seed in every part
    assert (umap.n_components, umap.n_neighbors, umap.min_dist, umap.metric) == (
        10,
        20,
        0.0,
        "euclidean",
    )
    assert (umap.random_state, umap.transform_seed, final.random_state) == (5, 5, 5)
    assert umap.embedding_.shape == (300, 10)
    (labels_pred, test_pred), (again, test_again) = runs
    assert (labels_pred == again).all() and (test_pred == test_again).all()
    # Far from chance (about 0.18 here): the embedding keeps digits apart, held-out ones too.
    scores, test_scores = (
        cluster_scores(train.labels, labels_pred),
        cluster_scores(test.labels, test_pred),
    )
    assert set(scores) == set(test_scores) == SCORES
    assert scores["acc"] > 0.4 and test_scores["acc"] > 0.4


def test_umap_n_components_null_means_n_clusters():
    config = option("umap_gmm", "cluster.n_clusters=4")
    assert config.umap.n_components is None and config.umap_n_components == 4
    assert option("umap_gmm", "cluster.umap.n_components=2").umap_n_components == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Keys that the clusterer would ignore are refused, naming key and value.
        (
            ["cluster=kmeans", "cluster.umap.n_neighbors=5"],
            r"cluster.umap.n_neighbors=5 is read only by cluster=umap_kmeans\|umap_gmm, "
            "not cluster=kmeans",
        ),
        (
            ["cluster=gmm", "cluster.init=random"],
            r"cluster.init='random' is read only by cluster=kmeans\|umap_kmeans, not cluster=gmm",
        ),
        (
            ["cluster=umap_kmeans", "cluster.covariance_type=diag"],
            r"cluster.covariance_type='diag' is read only by cluster=gmm\|umap_gmm",
        ),
        # Another name without its keys: kmeans' init would be ignored by a mixture.
        (["cluster=kmeans", "cluster.name=gmm"], "cluster.init='k-means..' is read only by"),
        (
            ["cluster=umap_gmm", "cluster.umap.n_neighbors=null"],
            "cluster.umap.n_neighbors=None: cluster=umap_gmm needs a value",
        ),
        (["cluster=umap_gmm", "cluster.umap.n_neighbors=0"], "cluster.umap.n_neighbors=0 must"),
        (["cluster=umap_kmeans", "cluster.umap.n_components=0"], "n_components=0 must be > 0"),
        (["cluster=umap_kmeans", "cluster.umap.min_dist=2"], "min_dist=2.0 must be in"),
        (["cluster=gmm", "cluster.reg_covar=-1"], "cluster.reg_covar=-1.0 must be >= 0"),
        (["cluster=gmm", "cluster.n_init=0"], "cluster.n_init=0 must be > 0"),
        (["cluster=kmeans", "cluster.init=kmeans++"], "cluster.init='kmeans..' must be"),
    ],
)
def test_bad_clusterer_settings_name_key_and_value(overrides, message):
    with pytest.raises(InputError, match=message):
        to_experiment_config(compose_config(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["cluster=umap_gmm", "cluster.umap.metric=hamming"],  # not one UMAP metric offered
        ["cluster=gmm", "cluster.covariance_type=ful"],
        ["cluster=umap_kmeans", "cluster.umap.n_neighbour=5"],  # a typo
        ["cluster.name=dbscan"],
    ],
)
def test_unknown_clusterer_keys_and_values_fail_while_composing(overrides):
    with pytest.raises(ConfigCompositionException):
        compose_config(overrides)


def test_an_unknown_clusterer_fails_while_composing():
    with pytest.raises(MissingConfigException, match="cluster/dbscan"):
        compose_config(["cluster=dbscan"])


@pytest.mark.parametrize(
    ("name", "n_samples", "message"),
    [
        ("kmeans", 9, "cluster.n_clusters=10 exceeds the 9 samples to cluster"),
        ("gmm", 9, "cluster.n_clusters=10 exceeds the 9 samples to cluster"),
        ("umap_gmm", 9, "cluster.n_clusters=10 exceeds the 9 samples to cluster"),
        # UMAP's spectral initialisation needs more points than dimensions
        ("umap_kmeans", 10, r"n_components=None \(10 dimensions\) must be below the 10 samples"),
        ("umap_kmeans", 20, "cluster.umap.n_neighbors=20 must be below the 20 samples"),
    ],
)
def test_too_few_samples_for_the_clusterer_name_key_and_value(name, n_samples, message):
    with pytest.raises(InputError, match=message):
        option(name).check_n_samples(n_samples)
    option(name).check_n_samples(21)  # enough


def test_score_features_fits_on_training_features_and_predicts_held_out_ones():
    from aesweep.clustering import score_features

    x_train, y_train = blobs(20, seed=0)
    x_test, y_test = blobs(5, seed=1)
    exp = to_experiment_config(compose_config(["cluster=gmm", "cluster.n_clusters=3"]))
    assert exp.cluster.name == ClusterName.gmm

    def score(x):
        return score_features(
            exp.cluster, random_state=0, train=x, test=x_test, labels=y_train, test_labels=y_test
        )

    scores, labels_pred, _ = score(x_train)
    assert scores == pytest.approx(
        {f"{split}/{k}": 1.0 for split in ("cluster", "test") for k in SCORES}
    )
    assert labels_pred.shape == (60,)
    with pytest.raises(InputError, match="cluster.n_clusters=3 exceeds the 2 samples"):
        score(x_train[:2])
