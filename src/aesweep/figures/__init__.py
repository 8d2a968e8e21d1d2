"""Pictures, by audience: one run's (:mod:`.run`), a sweep's parent's (:mod:`.sweep`), a
search's (:mod:`.search`); what they show is chosen in :mod:`.select`, and drawn with the
helpers of :mod:`.draw`. Each function returns a matplotlib Figure and shows nothing."""

import matplotlib

matplotlib.use("Agg")  # figures are saved and logged, never shown

import matplotlib.pyplot as plt  # noqa: E402

from aesweep.figures.draw import LATENT_CMAP, ORIGINAL_CMAP, latent_images  # noqa: E402
from aesweep.figures.run import (  # noqa: E402
    augmented,
    confusion,
    latent_grid,
    latent_map,
    loss_curve,
    reconstructions,
    sample_and_latent,
)
from aesweep.figures.search import search_history, search_params  # noqa: E402
from aesweep.figures.select import best_so_far, first_of_each_label, pick_cluster_members  # noqa: E402
from aesweep.figures.sweep import (  # noqa: E402
    sweep_latent_maps,
    sweep_latent_panel,
    sweep_loss_curves,
    sweep_metric_bars,
)

__all__ = [
    "augmented",
    "plt",
    "ORIGINAL_CMAP",
    "LATENT_CMAP",
    "latent_images",
    "pick_cluster_members",
    "first_of_each_label",
    "best_so_far",
    "latent_grid",
    "sample_and_latent",
    "reconstructions",
    "loss_curve",
    "latent_map",
    "confusion",
    "sweep_loss_curves",
    "sweep_metric_bars",
    "sweep_latent_panel",
    "sweep_latent_maps",
    "search_history",
    "search_params",
]
