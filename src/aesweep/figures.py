"""Pictures of one run; each function returns a matplotlib Figure and shows nothing."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # figures are saved and logged, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

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


def _strip(ax, images: np.ndarray, cmap: str, *, n_slots: int | None = None) -> np.ndarray:
    """Draw ``images`` side by side in one axes, each scaled to its own range as ``imshow``
    does, in unit squares with a blank gap. Returns the x of each square's centre.

    One axes per row instead of one per image: matplotlib spends about 20 ms on each
    axes, which made a run's pictures cost seconds. Unit squares keep the columns of
    rows with different image sizes (digits, latents) aligned.
    """
    n_slots = max(n_slots or len(images), 1)
    gap = 0.12
    colormap = plt.get_cmap(cmap).with_extremes(bad="white")  # latent cells past latent_dim
    for j, image in enumerate(images[:n_slots]):
        left = j * (1 + gap)
        ax.imshow(image, cmap=colormap, extent=(left, left + 1, 0, 1), interpolation="nearest")
    ax.set_xlim(0, n_slots * (1 + gap) - gap)
    ax.set_ylim(0, 1)
    ax.set_aspect("auto")  # the figure sizes make the squares about square
    _blank(ax)
    return np.arange(n_slots) * (1 + gap) + 0.5


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
            _strip(ax, pics[idx], cmap, n_slots=per_row)
            ax.set_ylabel(f"{k}-{kind}", rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3, h_pad=0.15, rect=_title_strip(fig, title))
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
    fig, axes = plt.subplots(2, 1, figsize=(n * 0.9 + 0.9, 2.2), squeeze=False)
    for row, (pics, name) in enumerate([(originals, "input"), (decoded, "decoded")]):
        _strip(axes[row, 0], np.reshape(pics, (n, 28, 28)), ORIGINAL_CMAP)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
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


def _label_colors(labels) -> dict:
    """One colour per distinct label, in label order (tab10 up to ten labels)."""
    distinct = np.unique(labels).tolist()
    return dict(zip(distinct, _job_colors(len(distinct)), strict=True))


def _marker_size(n_points: int, *, scale: float = 1.0) -> float:
    """Dots large for a few points, small where 2,000 would otherwise merge into blots."""
    return scale * float(np.clip(6000 / max(n_points, 1), 3, 20))


def _scatter_labels(ax, coords: np.ndarray, labels: np.ndarray, colors: Mapping, *, size: float):
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


def _legend_handles(entries: Mapping[str, object]) -> list[Line2D]:
    """Round markers of each colour, named by the keys of ``entries``."""
    return [
        Line2D([], [], ls="", marker="o", markersize=6, color=color, label=text)
        for text, color in entries.items()
    ]


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
    digit_colors = _label_colors(labels_true)
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
        cluster_colors = _label_colors(labels_pred)
        names = {k: str(k) for k in clusters}
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 5.2))
    size = _marker_size(n_points)
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
        _scatter_labels(ax, coords, labels, colors, size=size)
        ax.set_title(f"coloured by {kind.split()[0]}", fontsize=9)
        ax.legend(
            handles=_legend_handles(legend),
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
    for i, (color, title) in enumerate(zip(_job_colors(n), titles, strict=False)):
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
    centres = _strip(axes[0, 0], originals, ORIGINAL_CMAP)
    axes[0, 0].set_ylabel("digits", rotation=0, ha="right", va="center", fontsize=8)
    if labels is not None:
        axes[0, 0].xaxis.set_ticks_position("top")
        axes[0, 0].set_xticks(centres, [str(label) for label in labels], fontsize=8)
        axes[0, 0].tick_params(length=0)
    for i, (title, z) in enumerate(latents.items(), start=1):
        _strip(axes[i, 0], latent_images(z), LATENT_CMAP, n_slots=n_digits)
        axes[i, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    title = "Latent images of the same digits, per job"
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.1, rect=_title_strip(fig, title))
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
    colors = _label_colors(all_labels)  # one colour per digit in every panel
    for ax, (title, (coords, labels)) in zip(axes.flat, maps.items(), strict=False):
        _scatter_labels(ax, coords, labels, colors, size=_marker_size(len(coords), scale=0.5))
        ax.set_title(textwrap.fill(title, 34), fontsize=7.5)
    for ax in axes.flat[len(maps) :]:
        ax.set_axis_off()
    if not maps:
        axes[0, 0].text(0.5, 0.5, "no job logged a map", ha="center", va="center")
    fig.legend(
        handles=_legend_handles({str(d): c for d, c in colors.items()}),
        title="digit",
        fontsize=8,
        title_fontsize=8,
        loc="center right",
    )
    heading = f"{method} maps of each job's training latents, coloured by digit"
    heading = textwrap.fill(heading, int(width * 11))  # two lines above a one-job sweep
    fig.suptitle(heading, fontsize=10)
    legend_strip = 1 - 1.0 / width  # keep the panels off the legend at the right
    title_strip = (0.15 + 0.18 * (heading.count("\n") + 1)) / height
    fig.tight_layout(rect=(0, 0, legend_strip, 1 - title_strip))
    return fig


# --- Pictures of a search (logged to its parent run) -----------------------------------


def best_so_far(values: np.ndarray, *, maximize: bool = True) -> np.ndarray:
    """The running best of ``values`` (NaN for failed trials is skipped; NaN until a value).

    Parameters
    ----------
    values : ndarray of shape (n_trials,), in trial order
    """
    best, out = np.nan, np.empty(len(values))
    for i, value in enumerate(values):
        if np.isfinite(value) and (np.isnan(best) or (value > best) == maximize):
            best = value
        out[i] = best
    return out


def search_history(
    numbers: np.ndarray, values: np.ndarray, *, objective: str, maximize: bool = True
) -> Figure:
    """Each trial's objective (dots) and the best so far (a step line) against the trial.

    Parameters
    ----------
    numbers : ndarray of shape (n_trials,), Optuna trial numbers, increasing
    values : ndarray of shape (n_trials,), the objective; NaN for a failed trial
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    finite = np.isfinite(values)
    ax.scatter(numbers[finite], values[finite], s=18, color="0.55", label="trial", zorder=2)
    best = best_so_far(values, maximize=maximize)
    ax.step(numbers, best, where="post", color="tab:blue", lw=2, label="best so far", zorder=3)
    if (~finite).any():  # failed trials along the bottom edge
        ax.scatter(
            numbers[~finite],
            np.full((~finite).sum(), np.nanmin(values) if finite.any() else 0.0),
            marker="x",
            color="tab:red",
            label="failed",
            zorder=3,
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if finite.any():
        at = int(np.flatnonzero(best == best[-1])[0])
        heading = f"Best {objective} so far: {best[-1]:.3f} (trial {numbers[at]})"
    else:
        heading = f"No trial has a {objective} yet"
    ax.set_title(heading, fontsize=10)
    fig.tight_layout()
    return fig


def search_params(
    params: Mapping[str, list],
    values: np.ndarray,
    numbers: np.ndarray,
    *,
    objective: str,
    log_scale: Mapping[str, bool] | None = None,
    categorical: Mapping[str, bool] | None = None,
    maximize: bool = True,
) -> Figure:
    """The objective against each searched key, one panel per key, coloured by trial.

    Parameters
    ----------
    params : key -> the value of each trial (None where a trial has no value for it)
    values : ndarray of shape (n_trials,), the objective (NaN for a failed trial)
    numbers : ndarray of shape (n_trials,), Optuna trial numbers
    log_scale : key -> whether the key was searched on a log scale
    categorical : key -> whether its values are categories (a strip per category)
    """
    log_scale, categorical = log_scale or {}, categorical or {}
    n = max(len(params), 1)
    n_cols = min(n, 3)
    n_rows = math.ceil(n / n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(1 + 3.4 * n_cols, 0.6 + 3 * n_rows),
        squeeze=False,
        layout="constrained",  # room for the shared colour bar
    )
    finite = np.isfinite(values)
    best = None
    if finite.any():
        best = int(np.nanargmax(values) if maximize else np.nanargmin(values))
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(values))
    norm = plt.Normalize(numbers.min(initial=0), max(numbers.max(initial=1), 1))
    for ax, (key, column) in zip(axes.flat, params.items(), strict=False):
        keep = finite & np.array([v is not None for v in column], dtype=bool)
        if categorical.get(key, False):
            labels = sorted({str(v) for v in column if v is not None}, key=_natural)
            where = {label: i for i, label in enumerate(labels)}
            x = np.array([where.get(str(v), np.nan) for v in column], dtype=float) + jitter
            ax.set_xticks(range(len(labels)), labels, fontsize=8)
            if len(labels) > 3:  # long option names such as umap_kmeans would overlap
                ax.tick_params(axis="x", labelrotation=25)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            x = np.array([np.nan if v is None else float(v) for v in column])
            if log_scale.get(key, False):
                ax.set_xscale("log")
        points = ax.scatter(
            x[keep], values[keep], c=numbers[keep], cmap="viridis", norm=norm, s=20, zorder=2
        )
        if best is not None and keep[best]:
            ax.scatter(x[best], values[best], marker="*", s=160, color="tab:red", zorder=3)
        ax.set_xlabel(key, fontsize=9)
        ax.set_ylabel(objective, fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(params) :]:
        ax.set_axis_off()
    if params:
        fig.colorbar(points, ax=axes.ravel().tolist(), label="trial", shrink=0.8)
    fig.suptitle(f"{objective} against each searched key (red star: the best trial)", fontsize=10)
    return fig


def _natural(label: str) -> tuple:
    """Sort numbers as numbers, before words: 10 < 32 < 128 < dec."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
