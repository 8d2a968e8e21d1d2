import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from aesweep import data
from aesweep.errors import InputError


def _digits(n=60, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    return images, labels


def test_embedded_sample_is_real_mnist():
    images, labels = data.load_mnist_sample()
    assert images.shape == (5000, 28, 28)
    assert images.min() == 0 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10


def test_split_is_disjoint_stratified_and_seeded_not_the_first_n():
    _, labels = data.load_mnist_sample()  # sorted by label: "the first N" would be all zeros
    train, test = data.split(labels, n_samples=3000, n_test=1000, random_state=0)
    assert len(train) == 3000 and len(test) == 1000
    assert not set(train) & set(test)
    assert np.bincount(labels[train]).tolist() == [300] * 10
    assert np.bincount(labels[test]).tolist() == [100] * 10
    again, _ = data.split(labels, n_samples=3000, n_test=1000, random_state=0)
    other, _ = data.split(labels, n_samples=3000, n_test=1000, random_state=1)
    assert (train == again).all() and not (train == other).all()


def test_split_rejects_more_digits_than_available():
    with pytest.raises(
        ValueError, match=r"data.n_samples=4500 \+ data.n_test=1000 exceeds the 5000"
    ):
        data.split(np.arange(5000) % 10, n_samples=4500, n_test=1000, random_state=0)


def test_zscore_standardises_each_image_on_its_own():
    images, _ = _digits(5)
    scaled = data.scale(images.astype(np.float32), "zscore").reshape(5, -1)
    assert np.allclose(scaled.mean(axis=1), 0, atol=1e-5)
    assert np.allclose(scaled.std(axis=1), 1, atol=1e-4)
    blank = data.scale(np.zeros((1, 28, 28), np.float32), "zscore")
    assert np.isfinite(blank).all()
    # data.n_test=0: no held-out digits to scale (arch=pca with n_test=0 failed here)
    for scaling in ("zscore", "unit", "none"):
        assert data.scale(np.zeros((0, 28, 28), np.float32), scaling).shape == (0, 28, 28)


def test_prepare_shapes_for_each_arch():
    images, labels = _digits(20)
    idx = np.arange(10)
    flat = data.prepare(images.astype(np.float32), labels, idx, scaling="zscore")
    grid = data.prepare(images.astype(np.float32), labels, idx, scaling="unit", shape=(28, 28, 1))
    assert flat.x.shape == (10, 784) and grid.x.shape == (10, 28, 28, 1)
    assert grid.x.max() <= 1.0 and flat.pixels.shape == (10, 28, 28)


@pytest.mark.parametrize("flat", [False, True])
def test_npz_in_keras_layout(tmp_path, flat):
    images, labels = _digits()
    x = images.reshape(len(images), -1) if flat else images
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:40], y_train=labels[:40], x_test=x[40:], y_test=labels[40:])
    loaded, loaded_labels = data.load_file(path)
    assert loaded.shape == (60, 28, 28)
    assert (loaded == images).all() and (loaded_labels == labels).all()


def test_seed_style_openml_pickle_with_string_targets(tmp_path):
    images, labels = _digits()
    bunch = SimpleNamespace(data=images.reshape(60, -1).astype(float), target=labels.astype(str))
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(bunch))
    with pytest.raises(ValueError, match="data.allow_pickle=true"):
        data.load_file(path)
    loaded, loaded_labels = data.load_file(path, allow_pickle=True)
    assert loaded.shape == (60, 28, 28) and (loaded_labels == labels).all()


def test_seed_style_pickle_with_dataframes(tmp_path):
    pd = pytest.importorskip("pandas")
    images, labels = _digits()
    bunch = {"data": pd.DataFrame(images.reshape(60, -1)), "target": pd.Series(labels.astype(str))}
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(bunch))
    loaded, loaded_labels = data.load_file(path, allow_pickle=True)
    assert loaded.shape == (60, 28, 28) and (loaded_labels == labels).all()


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.npz", b"not a zip file", "is not a readable .npz"),
        ("keys.npz", {"images": np.zeros((3, 28, 28))}, "expected x_train, y_train"),
        (
            "shape.npz",
            {"x_train": np.zeros((3, 32, 32)), "y_train": np.zeros(3)},
            r"shape \(3, 32, 32\)",
        ),
        (
            "count.npz",
            {"x_train": np.zeros((3, 28, 28)), "y_train": np.zeros(4)},
            "3 images but 4 labels",
        ),
        ("nan.npz", {"x_train": np.full((3, 28, 28), np.nan), "y_train": np.zeros(3)}, "NaN"),
        ("broken.pkl", b"\x80\x04garbage", "is not a readable pickle"),
        ("digits.csv", b"1,2,3", "expected a .npz or a .pkl"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    with pytest.raises(ValueError, match=message) as info:
        data.load_file(path, allow_pickle=True)
    assert "\n" not in str(info.value)


def test_missing_file_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path='.*nowhere.npz': no such file"):
        data.load_file(tmp_path / "nowhere.npz")


def test_keras_download_failure_names_the_alternatives(monkeypatch, tmp_path):
    # The real loader, offline, on a machine without a cached mnist.npz. Keras binds both
    # the cache dir (KERAS_HOME, read once into config._KERAS_DIR) and urlretrieve
    # (``from urllib.request import ...`` in file_utils) when first imported, and another
    # test file may import it first: so patch the names Keras reads at call time, not
    # KERAS_HOME and urllib.request.
    import urllib.error

    from keras.src.backend import config
    from keras.src.utils import file_utils

    downloads = []

    def refuse(url, filename, *args, **kwargs):
        downloads.append(filename)
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    with pytest.raises(InputError, match="data=mnist_sample"):
        data.load_keras_mnist()
    # The failure is the refused download into the empty cache, not a real network's.
    assert len(downloads) == 1 and Path(downloads[0]).is_relative_to(tmp_path)
