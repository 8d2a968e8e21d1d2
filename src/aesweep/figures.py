"""Pictures of one run; each function returns a matplotlib Figure and shows nothing."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures are saved and logged, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ORIGINAL_CMAP = "bone"  # the seed's colour maps
LATENT_CMAP = "Greys"


def latent_images(latents: np.ndarray) -> np.ndarray:
    """Lay latent vectors out as images on the smallest square grid that holds them.

    Parameters
    ----------
    latents : ndarray of shape (n_samples, latent_dim)

    Returns
    -------
    ndarray of shape (n_samples, side, side), where ``side = ceil(sqrt(latent_dim))``;
    cells beyond ``latent_dim`` are NaN so that they draw blank.
    """
    latents = latents.reshape(len(latents), -1)
    side = math.isqrt(latents.shape[1] - 1) + 1
    padded = np.full((len(latents), side * side), np.nan, dtype=np.float32)
    padded[:, : latents.shape[1]] = latents
    return padded.reshape(-1, side, side)


def pick_cluster_members(
    labels_pred: np.ndarray, *, n_clusters: int, per_cluster: int = 10
) -> list[np.ndarray]:
    """The first ``per_cluster`` member indices of each cluster (fewer if it is small)."""
    return [np.flatnonzero(labels_pred == k)[:per_cluster] for k in range(n_clusters)]


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def latent_grid(
    originals: np.ndarray,
    latents: np.ndarray,
    members: list[np.ndarray],
    *,
    title: str = "",
) -> Figure:
    """The seed's picture: per cluster, member digits above the same digits' latents.

    Parameters
    ----------
    originals : ndarray of shape (n_samples, 28, 28)
    latents : ndarray of shape (n_samples, latent_dim)
    members : list of index arrays, one per cluster (see :func:`pick_cluster_members`)
    """
    images = latent_images(latents)
    per_row = max((len(m) for m in members), default=1) or 1
    fig, axes = plt.subplots(
        2 * len(members), per_row, figsize=(per_row * 0.8 + 0.9, len(members) * 1.6), squeeze=False
    )
    for k, idx in enumerate(members):
        for row, (pics, cmap, kind) in enumerate(
            [(originals, ORIGINAL_CMAP, "original"), (images, LATENT_CMAP, "latent")]
        ):
            row_axes = axes[2 * k + row]
            row_axes[0].set_ylabel(f"{k}-{kind}", rotation=0, ha="right", va="center", fontsize=8)
            for j, ax in enumerate(row_axes):
                _blank(ax)
                if j < len(idx):
                    ax.imshow(pics[idx[j]], cmap=cmap)
    top = 1.0
    if title:
        fig.suptitle(title, fontsize=10)
        top = 1 - 0.3 / fig.get_figheight()  # leave the title its own strip
    fig.tight_layout(pad=0.3, h_pad=0.15, w_pad=0.1, rect=(0, 0, 1, top))
    return fig


def sample_and_latent(original: np.ndarray, latent: np.ndarray, *, label: int) -> Figure:
    """One digit (28x28) next to its latent vector drawn as an image."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.7))
    left.imshow(original, cmap=ORIGINAL_CMAP)
    left.set_title(f"original (digit {label})", fontsize=9)
    right.imshow(latent_images(latent[np.newaxis])[0], cmap=LATENT_CMAP)
    right.set_title(f"latent ({latent.size} values)", fontsize=9)
    for ax in (left, right):
        _blank(ax)
    fig.tight_layout()
    return fig


def reconstructions(originals: np.ndarray, decoded: np.ndarray, *, title: str = "") -> Figure:
    """Inputs (top row) above the autoencoder's outputs (bottom row), as 28x28 images."""
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.9 + 0.9, 2.2), squeeze=False)
    for row, (pics, name) in enumerate([(originals, "input"), (decoded, "decoded")]):
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        for j in range(n):
            _blank(axes[row, j])
            axes[row, j].imshow(pics[j].reshape(28, 28), cmap=ORIGINAL_CMAP)
    top = 1.0
    if title:
        fig.suptitle(title, fontsize=10)
        top = 1 - 0.3 / fig.get_figheight()
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, top))
    return fig


def loss_curve(loss: list[float], val_loss: list[float], *, title: str = "") -> Figure:
    """Training and validation MSE per epoch, on a log scale."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, label="train/loss")
    if val_loss:
        ax.plot(epochs[: len(val_loss)], val_loss, label="val/loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    if all(v > 0 for v in [*loss, *val_loss] if np.isfinite(v)):
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
