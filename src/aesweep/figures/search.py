"""The figures of a search's parent run: the best so far per trial, and each searched key's
effect."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from aesweep.figures.select import best_so_far


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
