"""How aesweep draws: its colour maps, image strips, label colours, scatter and legend helpers."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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


def title_strip(fig: Figure, title: str) -> tuple[float, float, float, float]:
    """Put ``title`` above the grid; the rect that ``tight_layout`` leaves to the images."""
    if not title:
        return (0, 0, 1, 1)
    fig.suptitle(title, fontsize=10)
    return (0, 0, 1, 1 - 0.3 / fig.get_figheight())  # a 0.3 inch strip for the title


def blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


STRIP_GAP = 0.12  # the blank between two images of a strip, as a fraction of an image


def image_strip(ax, images: np.ndarray, cmap: str, *, n_slots: int | None = None) -> np.ndarray:
    """Draw ``images`` side by side in one axes, each scaled to its own range as ``imshow``
    does, in unit squares with a blank gap. Returns the x of each square's centre.

    One axes per row, and one picture per row: matplotlib spends about 20 ms on each axes
    and a few on each picture it draws, which made a run's pictures cost seconds. Each
    image is scaled to [0, 1] by its own finite minimum and maximum (all 0 where the two
    are equal, as matplotlib's ``Normalize`` has it), its columns repeated so that both
    the images and the gaps fill whole columns of the strip, and the gaps left NaN (drawn
    blank). Unit squares keep the columns of rows with different image sizes (digits,
    latents) aligned.
    """
    n_slots = max(n_slots or len(images), 1)
    images = np.asarray(images[:n_slots], dtype=np.float64)
    colormap = plt.get_cmap(cmap).with_extremes(bad="white")  # latent cells past latent_dim
    width = n_slots * (1 + STRIP_GAP) - STRIP_GAP
    if len(images):
        height, columns = images.shape[1:3]
        # columns per source column: a whole number of them for the gap too (0.12 = 3/25)
        repeat = 25 // math.gcd(columns, 25)
        square, gap = columns * repeat, round(columns * repeat * STRIP_GAP)
        strip = np.full((height, n_slots * (square + gap) - gap), np.nan)
        for j, image in enumerate(images):
            strip[:, j * (square + gap) : j * (square + gap) + square] = np.repeat(
                _unit_range(image), repeat, axis=1
            )
        ax.imshow(
            strip,
            cmap=colormap,
            vmin=0,
            vmax=1,
            extent=(0, width, 0, 1),
            interpolation="nearest",
        )
    ax.set_xlim(0, width)
    ax.set_ylim(0, 1)
    ax.set_aspect("auto")  # the figure sizes make the squares about square
    blank(ax)
    return np.arange(n_slots) * (1 + STRIP_GAP) + 0.5


def _unit_range(image: np.ndarray) -> np.ndarray:
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return image
    low, high = finite.min(), finite.max()
    return (image - low) / (high - low) if high > low else np.where(np.isnan(image), image, 0.0)


def label_colors(labels) -> dict:
    """One colour per distinct label, in label order (tab10 up to ten labels)."""
    distinct = np.unique(labels).tolist()
    return dict(zip(distinct, job_colors(len(distinct)), strict=True))


def marker_size(n_points: int, *, scale: float = 1.0) -> float:
    """Dots large for a few points, small where 2,000 would otherwise merge into blots."""
    return scale * float(np.clip(6000 / max(n_points, 1), 3, 20))


def scatter_labels(ax, coords: np.ndarray, labels: np.ndarray, colors: Mapping, *, size: float):
    """All points in one call, in a fixed shuffled order: drawn label by label, the last
    label would cover the others wherever they overlap."""
    order = np.random.default_rng(0).permutation(len(coords))
    ax.scatter(
        coords[order, 0],
        coords[order, 1],
        c=[colors[label] for label in labels[order].tolist()],
        s=size,
        linewidths=0,
        alpha=0.85,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")  # t-SNE distances are isotropic


def legend_handles(entries: Mapping[str, object]) -> list[Line2D]:
    """Round markers of each colour, named by the keys of ``entries``."""
    return [
        Line2D([], [], ls="", marker="o", markersize=6, color=color, label=text)
        for text, color in entries.items()
    ]


def job_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]
