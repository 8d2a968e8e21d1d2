import numpy as np
import pytest

from aesweep import embedding

FAST = {"max_iter": 250, "n_threads": 1}  # t-SNE's minimum: tiny inputs in well under a second


def _blobs(n_samples, n_features=100, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(3, n_features))
    return centres[np.arange(n_samples) % 3] + rng.normal(size=(n_samples, n_features))


def test_tsne_map_shape_and_seeded_reproducibility():
    features = _blobs(40)  # wider than PCA_DIMS: reduced first
    first = embedding.tsne_map(features, random_state=0, **FAST)
    assert first.coords.shape == (40, 2) and np.isfinite(first.coords).all()
    assert first.index.tolist() == list(range(40)) and not first.subsampled
    again = embedding.tsne_map(features, random_state=0, **FAST)
    np.testing.assert_array_equal(first.coords, again.coords)


def test_tsne_map_subsamples_above_the_cap():
    m = embedding.tsne_map(_blobs(60, n_features=8), random_state=0, max_points=25, **FAST)
    assert m.coords.shape == (25, 2) and m.n_samples == 60 and m.subsampled
    assert np.all(np.diff(m.index) > 0) and m.index.max() < 60
    # With PCA's initialisation the seed acts through the subsample (and t-SNE's own draws).
    other = embedding.tsne_map(_blobs(60, n_features=8), random_state=1, max_points=25, **FAST)
    assert not np.array_equal(m.index, other.index)


def test_subsample_is_seeded_sorted_and_keeps_all_rows_below_the_cap():
    a = embedding.subsample(5000, max_points=2000, random_state=0)
    assert len(a) == 2000 and len(np.unique(a)) == 2000 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, embedding.subsample(5000, max_points=2000, random_state=0))
    assert not np.array_equal(a, embedding.subsample(5000, max_points=2000, random_state=1))
    assert embedding.subsample(300, max_points=2000, random_state=0).tolist() == list(range(300))


def test_tsne_map_of_identical_latents_is_one_point():
    # sklearn's PCA initialisation divides by their zero spread: the process crashed.
    m = embedding.tsne_map(np.zeros((30, 16)), random_state=0, **FAST)
    np.testing.assert_array_equal(m.coords, np.zeros((30, 2)))


@pytest.mark.parametrize(
    ("features", "message"),
    [(np.ones((3, 5)), "at least 4"), (np.full((10, 5), np.nan), "NaN")],
)
def test_tsne_map_refuses_too_few_or_non_finite_features(features, message):
    with pytest.raises(ValueError, match=message):
        embedding.tsne_map(features, random_state=0, **FAST)
