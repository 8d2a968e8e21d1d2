"""The figures of one run: the seed's latent grid, a digit and its latent, reconstructions,
the loss curve, the latent map, the confusion of clusters and digits."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from aesweep.figures.draw import (
    LATENT_CMAP,
    ORIGINAL_CMAP,
    blank,
    image_strip,
    label_colors,
    latent_images,
    legend_handles,
    marker_size,
    scatter_labels,
    title_strip,
)


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
        2 * len(members), 1, figsize=(per_row * 0.8 + 0.9, len(members) * 1.6), squeeze=False
    )
    for k, idx in enumerate(members):
        for row, (pics, cmap, kind) in enumerate(
            [(originals, ORIGINAL_CMAP, "original"), (images, LATENT_CMAP, "latent")]
        ):
            ax = axes[2 * k + row, 0]
            image_strip(ax, pics[idx], cmap, n_slots=per_row)
            ax.set_ylabel(f"{k}-{kind}", rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3, h_pad=0.15, rect=title_strip(fig, title))
    return fig


def sample_and_latent(original: np.ndarray, latent: np.ndarray, *, label: int) -> Figure:
    """One digit (28x28) next to its latent vector drawn as an image."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.7))
    left.imshow(original, cmap=ORIGINAL_CMAP)
    left.set_title(f"original (digit {label})", fontsize=9)
    right.imshow(latent_images(latent[np.newaxis])[0], cmap=LATENT_CMAP)
    right.set_title(f"latent ({latent.size} values)", fontsize=9)
    for ax in (left, right):
        blank(ax)
    fig.tight_layout()
    return fig


def reconstructions(originals: np.ndarray, decoded: np.ndarray, *, title: str = "") -> Figure:
    """Inputs (top row) above the autoencoder's outputs (bottom row), as 28x28 images."""
    n = len(originals)
    fig, axes = plt.subplots(2, 1, figsize=(n * 0.9 + 0.9, 2.2), squeeze=False)
    for row, (pics, name) in enumerate([(originals, "input"), (decoded, "decoded")]):
        image_strip(axes[row, 0], np.reshape(pics, (n, 28, 28)), ORIGINAL_CMAP)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3, rect=title_strip(fig, title))
    return fig


def augmented(clean: np.ndarray, seen: list[np.ndarray], *, title: str = "") -> Figure:
    """Training digits (top row) above the same digits as batches showed them to the
    network, one row per batch drawn."""
    n = len(clean)
    rows = [(clean, "digit"), *((pics, f"batch {i + 1}") for i, pics in enumerate(seen))]
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.9 + 0.9, 1.1 * len(rows)), squeeze=False)
    for row, (pics, name) in enumerate(rows):
        image_strip(axes[row, 0], np.reshape(pics, (n, 28, 28)), ORIGINAL_CMAP)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3, rect=title_strip(fig, title))
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


def latent_map(
    coords: np.ndarray,
    labels_true: np.ndarray,
    labels_pred: np.ndarray,
    *,
    matching: Mapping[int, int] | None = None,
    n_samples: int | None = None,
    method: str = "t-SNE",
    title: str = "",
) -> Figure:
    """A 2-D map of latents twice: coloured by the true digit and by the found cluster.

    Parameters
    ----------
    coords : ndarray of shape (n_points, 2)
        The embedded latents (see :func:`aesweep.embedding.tsne_map`).
    labels_true, labels_pred : ndarray of shape (n_points,)
        Each point's digit and cluster.
    matching : cluster -> the digit it is matched to (Hungarian), optional
        A matched cluster takes its digit's colour, so that the two panels agree where
        the clustering does; unmatched clusters get colours of their own.
    n_samples : int, optional
        How many latents the points were drawn from, when they are a subsample.
    """
    n_points = len(coords)
    digit_colors = label_colors(labels_true)
    clusters = np.unique(labels_pred).tolist()
    matching = dict(matching or {})
    if matching:
        # Unmatched clusters (more clusters than digits): colours no digit wears.
        palette = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]
        used = {to_hex(c) for c in digit_colors.values()}
        spare = iter([c for c in palette if to_hex(c) not in used] * (1 + len(clusters) // 10))
        cluster_colors = {
            k: digit_colors[matching[k]] if matching.get(k) in digit_colors else next(spare)
            for k in clusters
        }
        names = {k: f"{k} \u2192 {matching[k]}" if k in matching else f"{k}" for k in clusters}
    else:
        cluster_colors = label_colors(labels_pred)
        names = {k: str(k) for k in clusters}
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 5.2))
    size = marker_size(n_points)
    panels = [
        (labels_true, digit_colors, {str(d): c for d, c in digit_colors.items()}, "digit"),
        (
            labels_pred,
            cluster_colors,
            {names[k]: cluster_colors[k] for k in clusters},
            "cluster \u2192 digit" if matching else "cluster",
        ),
    ]
    for ax, (labels, colors, legend, kind) in zip(axes, panels, strict=True):
        scatter_labels(ax, coords, labels, colors, size=size)
        ax.set_title(f"coloured by {kind.split()[0]}", fontsize=9)
        ax.legend(
            handles=legend_handles(legend),
            title=kind,
            fontsize=8,
            title_fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            borderaxespad=0,
        )
    what = f"{method} map of {n_points:,} latents"
    if n_samples is not None and n_samples > n_points:
        what = f"{method} map of {n_points:,} of {n_samples:,} latents (a seeded random subsample)"
    fig.suptitle(f"{title}: {what}" if title else what, fontsize=10)
    fig.tight_layout()
    return fig


def confusion(
    table: np.ndarray, labels: np.ndarray, clusters: np.ndarray, *, title: str = ""
) -> Figure:
    """Digits against clusters as counts, the matched clusters on the diagonal (boxed).

    Parameters
    ----------
    table : ndarray of shape (n_labels, n_clusters)
        Counts, columns in matched order (see :func:`aesweep.clustering.matched_contingency`).
    labels : ndarray of shape (n_labels,)
        The digit of each row.
    clusters : ndarray of shape (n_clusters,)
        The cluster id of each column.
    """
    n_rows, n_cols = table.shape
    fig, ax = plt.subplots(figsize=(1.4 + 0.55 * n_cols, 1.5 + 0.5 * n_rows))
    ax.imshow(table, cmap="Blues", vmin=0, interpolation="nearest")
    fontsize = 8 if table.max(initial=0) < 1000 else 6.5
    dark = 0.6 * table.max(initial=0)
    for (i, j), count in np.ndenumerate(table):
        color = "white" if count > dark else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=fontsize, color=color)
    for j in range(min(n_rows, n_cols)):
        ax.add_patch(Rectangle((j - 0.5, j - 0.5), 1, 1, fill=False, ec="black", lw=1.2))
    ax.set_xticks(np.arange(n_cols), [str(k) for k in clusters.tolist()], fontsize=8)
    ax.set_yticks(np.arange(n_rows), [str(d) for d in labels.tolist()], fontsize=8)
    ax.set_xlabel("cluster (id), in matched order", fontsize=9)
    ax.set_ylabel("digit", fontsize=9)
    accuracy = np.trace(table) / max(table.sum(), 1)
    heading = f"Hungarian accuracy {accuracy:.3f} (boxed: matched pairs)"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    fig.tight_layout()
    return fig
