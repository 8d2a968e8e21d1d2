"""2-D maps of latent features (t-SNE), computed once here and drawn by :mod:`aesweep.figures`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

MAX_POINTS = 2000  # t-SNE's time grows faster than linearly; 2,000 points show the shape
PCA_DIMS = 50  # wider latents are reduced first: t-SNE's neighbour search is cheaper
MIN_POINTS = 4  # t-SNE needs a perplexity below a third of the other points
THREADED_POINTS = 1000  # below this, threads cost more in start-up than they save


@dataclass(frozen=True)
class LatentMap:
    """A 2-D embedding of (a subsample of) the rows of a feature matrix.

    Attributes
    ----------
    coords : ndarray of shape (n_points, 2)
    index : ndarray of shape (n_points,)
        The row of the embedded matrix that each point stands for, in increasing order.
    n_samples : int
        The rows of the embedded matrix; more than ``n_points`` when it was subsampled.
    method : str
        How the map was made, for a figure's title.
    """

    coords: np.ndarray
    index: np.ndarray
    n_samples: int
    method: str = "t-SNE"

    @property
    def subsampled(self) -> bool:
        return len(self.index) < self.n_samples


def subsample(n_samples: int, *, max_points: int, random_state: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n_samples`` rows, a seeded random draw.

    Returns
    -------
    ndarray of shape (min(n_samples, max_points),); all rows when they fit.
    """
    if max_points < 1:
        raise ValueError(f"max_points={max_points} must be at least 1")
    if n_samples <= max_points:
        return np.arange(n_samples)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_samples, size=max_points, replace=False))


def tsne_map(
    features: np.ndarray,
    *,
    random_state: int,
    max_points: int = MAX_POINTS,
    pca_dims: int = PCA_DIMS,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    n_threads: int | None = None,
) -> LatentMap:
    """Embed the rows of ``features`` in 2-D with t-SNE (PCA initialisation).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Latent vectors; any trailing shape is flattened.
    random_state : int
        Seeds the subsample, the PCA and t-SNE: a run's map is reproducible.
    max_points : int
        More rows than this are subsampled (see :func:`subsample`).
    pca_dims : int
        Features wider than this are reduced to it by PCA before t-SNE.
    perplexity : float
        Lowered to ``(n_points - 1) / 3`` for small inputs, which t-SNE requires.
    max_iter : int
        Gradient steps (at least 250, t-SNE's early exaggeration).
    n_threads : int or None
        OpenMP threads for t-SNE; None: all cores. One below :data:`THREADED_POINTS`
        points (200 points: 0.85 s on one thread, 3.5 s on two busy ones), and a job of a
        parallel sweep passes its share of the cores.

    Returns
    -------
    LatentMap with ``coords`` of shape (min(n_samples, max_points), 2).
    """
    features = np.asarray(features).reshape(len(features), -1)
    if len(features) < MIN_POINTS:
        raise ValueError(f"a t-SNE map needs at least {MIN_POINTS} samples, got {len(features)}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values: no t-SNE map")
    index = subsample(len(features), max_points=max_points, random_state=random_state)
    x = features[index].astype(np.float32)
    if np.ptp(x, axis=0).max() == 0:
        # All points alike (a dead latent): t-SNE's PCA initialisation divides by their
        # zero spread and its Barnes-Hut tree then crashes the process on the NaNs.
        return LatentMap(np.zeros((len(x), 2), np.float32), index, len(features))
    if x.shape[1] > pca_dims:
        n_components = min(pca_dims, len(x))
        x = PCA(n_components=n_components, random_state=random_state).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        init="pca",
        perplexity=min(perplexity, (len(x) - 1) / 3),
        max_iter=max_iter,
        random_state=random_state,
    )
    with threadpool_limits(limits=n_threads if len(x) >= THREADED_POINTS else 1):
        coords = tsne.fit_transform(x)
    return LatentMap(coords.astype(np.float32), index, len(features))
