"""What makes two runs the same run: the fingerprints behind ``resume`` and ``reuse_model``.

A result is shaped by the config values in force, the code that builds, trains and
clusters, the library versions that run that code, and the digits themselves. Each
fingerprint hashes all four, so that an edited ``models.py``, a TensorFlow upgrade or a
data file whose contents changed trains again instead of handing back an old network.

- the **config fingerprint** (``resume=true``): every value in force but
  :data:`NOT_A_RESULT`, all of aesweep's result code, and the versions of everything it
  calls;
- the **training fingerprint** (``reuse_model=true``): only what shapes the trained
  autoencoder (the arch, activations, lr, latent size, data, training, augmentation and
  seed), the
  code that builds and trains it, and TensorFlow's, Keras' and NumPy's versions.

Imports nothing of the package but its names; cheap enough for every job.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: keys (a name, or a group with all its keys) that change where or how a job runs or is
#: recorded, never its result: both fingerprints and a search's study name leave them out
NOT_A_RESULT = (
    "resume",
    "reuse_model",
    "tracking",  # where it is recorded, and which records are made
    "train.threads",  # how many cores run it
    "train.progress_every",  # how often it prints
    "data.allow_pickle",  # whether a pickle may be read: the digits are the digest's
    "data.path",  # where the digits lie: their digest says what they are
)
#: the groups and keys that shape a trained autoencoder (the training fingerprint)
TRAINING_KEYS = ("arch", "activation", "lr", "latent_dim", "data", "train", "augment", "seed")
#: in ``train`` but not training: the step budget of fine-tuning, which comes after
NOT_TRAINING = ("train.finetune_max_steps",)

CODE_DIR = Path(__file__).parent  # aesweep's modules
#: the modules whose code shapes a trained autoencoder, then those that shape a run's result
TRAINING_CODE = ("data.py", "features.py", "models.py", "training.py", "kernels.py", "augment.py")
RESULT_CODE = (
    *TRAINING_CODE,
    *("clustering.py", "finetune.py", "embedding.py", "pictures.py", "experiment.py", "records.py"),
)
TRAINING_PACKAGES = ("tensorflow", "keras", "numpy")
RESULT_PACKAGES = (*TRAINING_PACKAGES, "scikit-learn", "umap-learn", "scipy")


def in_keys(key: str, keys: Iterable[str]) -> bool:
    """True if ``key`` is one of ``keys`` or inside one of them (``train.epochs`` in
    ``train``); a leading ``+`` or ``~`` of an override is ignored."""
    key = key.lstrip("+~")
    return any(key == k or key.startswith(f"{k}.") for k in keys)


def shapes_result(key: str) -> bool:
    """False for a key of :data:`NOT_A_RESULT`."""
    return not in_keys(key, NOT_A_RESULT)


def shapes_training(key: str) -> bool:
    """True for a key of :data:`TRAINING_KEYS` that shapes a result."""
    return in_keys(key, TRAINING_KEYS) and shapes_result(key) and not in_keys(key, NOT_TRAINING)


def data_digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes, types and every byte (MLflow's dataset digest reads
    only the first 10,000 values: two files alike there would pass for one)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes() if array.size == 0 else memoryview(array).cast("B"))
    return digest.hexdigest()


def code_digests(files: Sequence[str], code_dir: Path | None = None) -> dict[str, str]:
    """SHA-256 of each of aesweep's ``files``, by name."""
    code_dir = CODE_DIR if code_dir is None else code_dir
    return {name: hashlib.sha256((code_dir / name).read_bytes()).hexdigest() for name in files}


def versions(packages: Sequence[str]) -> dict[str, str]:
    """The installed version of each package ("not installed" for one that is not)."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


@dataclass(frozen=True)
class Fingerprint:
    """A hash and what it was made of (logged with the run, as :data:`FINGERPRINTS_ARTIFACT`)."""

    hash: str
    inputs: dict[str, Any]


def replicates(params: Mapping[str, Any], overrides: Sequence[str]) -> str:
    """What a run shares with its seed replicates (MLflow's *Group by* pools them): the
    overrides but the seed's, readable, and a hash of every other value that shapes the
    result (``params`` of the config with its seed fixed), so that two sweeps with the same
    overrides but other defaults stay apart."""
    kept = {k: str(v) for k, v in sorted(params.items()) if shapes_result(k) and k != "seed"}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]
    shown = [o for o in overrides if not o.lstrip("+~").startswith("seed=")]
    return f"{' '.join(shown) or '(defaults)'} #{digest}"


def source_files(*objects: object) -> dict[str, Path]:
    """The source file of each object (an arch's ``_target_``: a user's network is code that
    shapes the result as much as ``models.py``), by the object's dotted name."""
    found = {}
    for obj in objects:
        path = inspect.getsourcefile(obj) if callable(obj) else None
        if path is not None:
            found[f"{obj.__module__}.{obj.__qualname__}"] = Path(path)
    return found


def _fingerprint(
    params: dict[str, Any], files, packages, data: str, code_dir, also: Mapping[str, Path]
) -> Fingerprint:
    code = code_digests(files, code_dir)
    code |= {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in also.items()}
    inputs = {
        "params": {k: str(v) for k, v in sorted(params.items())},
        "code": code,
        "versions": versions(packages),
        "data": data,
    }
    text = json.dumps(inputs, sort_keys=True)
    return Fingerprint(hashlib.sha256(text.encode()).hexdigest()[:16], inputs)


def config_fingerprint(
    params: Mapping[str, Any],
    *,
    data: str,
    code_dir: Path | None = None,
    also: Mapping[str, Path] = {},  # noqa: B006 - read, never changed
) -> Fingerprint:
    """What ``resume=true`` matches a FINISHED run by: everything that shapes its result.

    ``params`` is the resolved config, flattened; ``data`` is :func:`data_digest` of the
    run's digits; ``also``: more code files (:func:`source_files`).
    """
    kept = {k: v for k, v in params.items() if shapes_result(k)}
    return _fingerprint(kept, RESULT_CODE, RESULT_PACKAGES, data, code_dir, also)


def of_run(
    params: Mapping[str, Any], *arrays: np.ndarray, code: Sequence[object] = ()
) -> dict[str, Fingerprint]:
    """A run's ``"config"`` and ``"training"`` fingerprints, from its params, its digits
    (``arrays``) and the objects (an arch's ``_target_``) whose source files also count."""
    digest = data_digest(*arrays)
    also = source_files(*code)
    return {
        "config": config_fingerprint(params, data=digest, also=also),
        "training": training_fingerprint(params, data=digest, also=also),
    }


def training_fingerprint(
    params: Mapping[str, Any],
    *,
    data: str,
    code_dir: Path | None = None,
    also: Mapping[str, Path] = {},  # noqa: B006 - read, never changed
) -> Fingerprint:
    """What ``reuse_model=true`` matches a logged autoencoder by: what shapes its training."""
    kept = {k: v for k, v in params.items() if shapes_training(k)}
    return _fingerprint(kept, TRAINING_CODE, TRAINING_PACKAGES, data, code_dir, also)
