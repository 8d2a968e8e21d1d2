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


def first_of_each_label(labels: np.ndarray) -> np.ndarray:
    """Index of the first sample of each distinct label, in label order."""
    _, first = np.unique(labels, return_index=True)
    return first


def _title_strip(fig: Figure, title: str) -> tuple[float, float, float, float]:
    """Put ``title`` above the grid; the rect that ``tight_layout`` leaves to the images."""
    if not title:
        return (0, 0, 1, 1)
    fig.suptitle(title, fontsize=10)
    return (0, 0, 1, 1 - 0.3 / fig.get_figheight())  # a 0.3 inch strip for the title


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
    fig.tight_layout(pad=0.3, h_pad=0.15, w_pad=0.1, rect=_title_strip(fig, title))
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
    fig.tight_layout(pad=0.3, rect=_title_strip(fig, title))
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


# --- Pictures of a whole sweep (logged to its parent run) -----------------------------


def _job_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def sweep_loss_curves(histories: dict[str, tuple[list[float], list[float]]]) -> Figure:
    """Every job's train (solid) and validation (dashed) loss per epoch, log scale.

    Parameters
    ----------
    histories : job title -> (train losses, validation losses), one value per epoch
    """
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for color, (title, (loss, val_loss)) in zip(
        _job_colors(len(histories)), histories.items(), strict=True
    ):
        ax.plot(np.arange(1, len(loss) + 1), loss, color=color, label=title)
        if val_loss:
            ax.plot(np.arange(1, len(val_loss) + 1), val_loss, color=color, ls="--", lw=1)
    values = [v for loss, val in histories.values() for v in [*loss, *val] if np.isfinite(v)]
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (solid: train, dashed: validation)")
    ax.grid(True, which="both", alpha=0.3)
    if histories:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_title("Loss per epoch, all jobs", fontsize=10)
    fig.tight_layout()
    return fig


def sweep_metric_bars(
    scores: dict[str, dict[str, float]],
    reference: dict[str, float],
    *,
    metrics: tuple[str, ...] = ("purity", "acc", "nmi", "ari"),
    split: str = "test",
) -> Figure:
    """Cluster scores per job as grouped bars, with the pixel reference as a line per group.

    Parameters
    ----------
    scores : job title -> {"test/acc": ..., ...}
    reference : the pixel baseline's scores, same keys
    """
    titles = list(scores)
    n = max(len(titles), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(7, 1.2 + len(metrics) * (0.5 + 0.22 * n)), 4.6))
    for i, (color, title) in enumerate(zip(_job_colors(n), titles, strict=False)):
        values = [scores[title].get(f"{split}/{m}", np.nan) for m in metrics]
        ax.bar(
            np.arange(len(metrics)) - 0.4 + (i + 0.5) * width,
            values,
            width,
            color=color,
            label=title,
        )
    for j, metric in enumerate(metrics):
        value = reference.get(f"{split}/{metric}")
        if value is not None and np.isfinite(value):
            ax.hlines(
                value,
                j - 0.45,
                j + 0.45,
                colors="black",
                linestyles="--",
                lw=1.5,
                label="KMeans on pixels" if j == 0 else None,
            )
    ax.set_xticks(np.arange(len(metrics)), [f"{split} {m}" for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_title("Cluster scores per job (dashed: pixel reference)", fontsize=10)
    fig.tight_layout()
    return fig


def sweep_latent_panel(
    originals: np.ndarray, latents: dict[str, np.ndarray], *, labels: np.ndarray | None = None
) -> Figure:
    """The same digits (top row) and each job's latent image of them, one row per job.

    Parameters
    ----------
    originals : ndarray of shape (n_digits, 28, 28)
    latents : job title -> ndarray of shape (n_digits, latent_dim)
    """
    n_digits = len(originals)
    rows = 1 + len(latents)
    fig, axes = plt.subplots(
        rows, n_digits, figsize=(2.2 + n_digits * 0.75, 0.7 + rows * 0.85), squeeze=False
    )
    axes[0, 0].set_ylabel("digits", rotation=0, ha="right", va="center", fontsize=8)
    for j in range(n_digits):
        _blank(axes[0, j])
        axes[0, j].imshow(originals[j], cmap=ORIGINAL_CMAP)
        if labels is not None:
            axes[0, j].set_title(str(labels[j]), fontsize=8)
    for i, (title, z) in enumerate(latents.items(), start=1):
        images = latent_images(z)
        axes[i, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        for j in range(n_digits):
            _blank(axes[i, j])
            if j < len(images):
                axes[i, j].imshow(images[j], cmap=LATENT_CMAP)
    title = "Latent images of the same digits, per job"
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1, rect=_title_strip(fig, title))
    return fig
