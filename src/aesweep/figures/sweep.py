"""The figures of a sweep's parent run: every job's loss curves, scores against the pixel
reference, latent panel and maps."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from aesweep.figures import draw


def sweep_loss_curves(histories: dict[str, tuple[list[float], list[float]]]) -> Figure:
    """Every job's train (solid) and validation (dashed) loss per epoch, log scale.

    Parameters
    ----------
    histories : job title -> (train losses, validation losses), one value per epoch
    """
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for color, (title, (loss, val_loss)) in zip(
        draw.job_colors(len(histories)), histories.items(), strict=True
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
    references: dict[str, dict[str, float]],
    *,
    metrics: tuple[str, ...] = ("purity", "acc", "nmi", "ari"),
    split: str = "test",
) -> Figure:
    """Cluster scores per job as grouped bars, each with its pixel reference as a dash.

    Parameters
    ----------
    scores : job title -> {"test/acc": ..., ...}; a value with an ``sd`` attribute (a mean
        over seeds) gets an error bar of one standard deviation
    references : job title -> the scores of KMeans on the pixels of that job's digits
        (jobs of a sweep over seeds or data sizes have different references)
    """
    titles = list(scores)
    n = max(len(titles), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(7, 1.2 + len(metrics) * (0.5 + 0.22 * n)), 4.6))
    labelled = False
    for i, (color, title) in enumerate(zip(draw.job_colors(n), titles, strict=False)):
        values = [scores[title].get(f"{split}/{m}", np.nan) for m in metrics]
        centres = np.arange(len(metrics)) - 0.4 + (i + 0.5) * width
        # A mean over seed replicates carries its standard deviation (summary.Spread).
        spread = [getattr(scores[title].get(f"{split}/{m}"), "sd", np.nan) for m in metrics]
        ax.bar(centres, values, width, color=color, label=title)
        if np.isfinite(spread).any():
            ax.errorbar(centres, values, yerr=spread, fmt="none", ecolor="black", capsize=3)
        reference = [references.get(title, {}).get(f"{split}/{m}", np.nan) for m in metrics]
        if np.isfinite(reference).any():
            ax.hlines(
                reference,
                centres - width / 2,
                centres + width / 2,
                colors="black",
                linestyles="-",
                lw=1.5,
                label=None if labelled else "KMeans on pixels",
            )
            labelled = True
    ax.set_xticks(np.arange(len(metrics)), [f"{split} {m}" for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.set_title("Cluster scores per job (black dash: KMeans on the same pixels)", fontsize=10)
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
        rows, 1, figsize=(2.2 + n_digits * 0.75, 0.7 + rows * 0.85), squeeze=False
    )
    centres = draw.image_strip(axes[0, 0], originals, draw.ORIGINAL_CMAP)
    axes[0, 0].set_ylabel("digits", rotation=0, ha="right", va="center", fontsize=8)
    if labels is not None:
        axes[0, 0].xaxis.set_ticks_position("top")
        axes[0, 0].set_xticks(centres, [str(label) for label in labels], fontsize=8)
        axes[0, 0].tick_params(length=0)
    for i, (title, z) in enumerate(latents.items(), start=1):
        draw.image_strip(axes[i, 0], draw.latent_images(z), draw.LATENT_CMAP, n_slots=n_digits)
        axes[i, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    title = "Latent images of the same digits, per job"
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1, rect=draw.title_strip(fig, title))
    return fig


def sweep_latent_maps(
    maps: Mapping[str, tuple[np.ndarray, np.ndarray]], *, method: str = "t-SNE"
) -> Figure:
    """Each job's 2-D latent map in a small panel, coloured by the true digit.

    Parameters
    ----------
    maps : job title -> (coords of shape (n_points, 2), labels_true of shape (n_points,))
    """
    n = max(len(maps), 1)
    n_cols = min(n, 4)
    n_rows = math.ceil(n / n_cols)
    width, height = 1.3 + 2.7 * n_cols, 0.6 + 2.9 * n_rows
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, height), squeeze=False)
    all_labels = np.concatenate([labels for _, labels in maps.values()] or [np.empty(0)])
    colors = draw.label_colors(all_labels)  # one colour per digit in every panel
    for ax, (title, (coords, labels)) in zip(axes.flat, maps.items(), strict=False):
        draw.scatter_labels(
            ax, coords, labels, colors, size=draw.marker_size(len(coords), scale=0.5)
        )
        ax.set_title(textwrap.fill(title, 34), fontsize=7.5)
    for ax in axes.flat[len(maps) :]:
        ax.set_axis_off()
    if not maps:
        axes[0, 0].text(0.5, 0.5, "no job logged a map", ha="center", va="center")
    fig.legend(
        handles=draw.legend_handles({str(d): c for d, c in colors.items()}),
        title="digit",
        fontsize=8,
        title_fontsize=8,
        loc="center right",
    )
    heading = f"{method} maps of each job's training latents, coloured by digit"
    heading = textwrap.fill(heading, int(width * 11))  # two lines above a one-job sweep
    fig.suptitle(heading, fontsize=10)
    legend_strip = 1 - 1.0 / width  # keep the panels off the legend at the right
    heading_strip = (0.15 + 0.18 * (heading.count("\n") + 1)) / height
    fig.tight_layout(rect=(0, 0, legend_strip, 1 - heading_strip))
    return fig
