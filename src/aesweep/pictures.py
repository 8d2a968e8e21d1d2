"""What one run shows: its pictures, and the arrays the sweep's figures read, chosen once
from the run's digits, features and clusters, then drawn and logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aesweep import clustering, embedding, figures
from aesweep.features import RECONSTRUCTED
from aesweep.names import MAP_ARTIFACT, PANEL_ARTIFACT

if TYPE_CHECKING:
    from aesweep.config import AugmentConfig, ExperimentConfig
    from aesweep.data import Digits
    from aesweep.features import Features
    from aesweep.tracking import NullRunLog, RunLog


#: the epochs at which training shows its reconstructions (the last one comes after training)
RECONSTRUCTION_EPOCHS = (1, 3, 10, 30, 100, 300)


def reconstruction_snapshots(
    run: RunLog | NullRunLog, model, digits: Digits, *, name: str, epochs: int
) -> Callable[[int], None]:
    """``at(epoch)``: log ``model``'s reconstructions of the first digits as image
    ``reconstructions`` at that step, at :data:`RECONSTRUCTION_EPOCHS` before the last, so
    that MLflow's step slider shows the decoder learn. One forward pass of ten digits and
    one small figure each: about a tenth of a second, a few times per run."""
    inputs = digits.x[:RECONSTRUCTED]

    def at(epoch: int) -> None:
        if run.enabled and epoch in RECONSTRUCTION_EPOCHS and epoch < epochs:
            decoded = np.asarray(model(inputs, training=False))
            title = f"{name}, epoch {epoch}"
            figure = figures.reconstructions(inputs, decoded, title=title)
            run.log_figure_meanwhile(figure, "reconstructions", step=epoch)

    return at


def training_pictures(
    run: RunLog | NullRunLog, cfg: ExperimentConfig, digits: Digits, *, name: str
) -> Callable[[object], Callable[[int], None]]:
    """``watch(model)`` for :func:`aesweep.features.compute_features`: once the network is
    built, the augmented digits it will see; after each epoch, its reconstructions."""

    def watch(model) -> Callable[[int], None]:
        log_augmented(run, cfg.augment, digits, name=name, seed=cfg.seed)
        return reconstruction_snapshots(run, model, digits, name=name, epochs=cfg.train.epochs)

    return watch


AUGMENTED_BATCHES = 3  # rows of the augmented_digits figure: three draws of the same digits


def log_augmented(
    run: RunLog | NullRunLog, config: AugmentConfig, digits: Digits, *, name: str, seed: int
) -> None:
    """Image ``augmented_digits``: the first training digits as three batches drew them, so
    that a user sees what ``augment``'s ranges mean (nothing when it augments nothing)."""
    from aesweep.augment import as_seen

    if not run.enabled or not config.enabled:
        return
    clean = digits.x[:RECONSTRUCTED]
    seen = [as_seen(config, clean, seed=seed + i) for i in range(AUGMENTED_BATCHES)]
    shown = (
        f"shift {config.width_shift:g} x {config.height_shift:g}, rotation {config.rotation:g} deg"
    )
    run.log_figure(figures.augmented(clean, seen, title=f"{name}: {shown}"), "augmented_digits")


@dataclass
class RunPictures:
    """The choices behind a run's pictures; :meth:`log` draws and logs them."""

    name: str  # the run's name, the pictures' title
    train: Digits
    features: Features
    labels_pred: np.ndarray  # the training digits' clusters
    members: list[np.ndarray]  # per cluster, the digits its row of the latent grid shows
    panel: np.ndarray  # one digit of each label: the same in every job of a sweep
    contingency: tuple[np.ndarray, np.ndarray, np.ndarray]  # table, digits, clusters matched
    latent_map: embedding.LatentMap | None  # None: not asked for, or nobody would see it

    @classmethod
    def choose(
        cls,
        name: str,
        train: Digits,
        features: Features,
        labels_pred: np.ndarray,
        *,
        n_clusters: int,
        latent_map: bool,
        random_state: int,
        threads: int | None = None,
    ) -> RunPictures:
        """Pick what the pictures show; ``latent_map``: compute the t-SNE map (seconds)."""
        return cls(
            name=name,
            train=train,
            features=features,
            labels_pred=labels_pred,
            members=figures.pick_cluster_members(labels_pred, n_clusters=n_clusters),
            panel=figures.first_of_each_label(train.labels),
            contingency=clustering.matched_contingency(train.labels, labels_pred),
            latent_map=embedding.tsne_map(
                features.train, random_state=random_state, n_threads=threads
            )
            if latent_map
            else None,
        )

    def log(self, run: RunLog | NullRunLog, *, images: bool = True) -> None:
        """The seed's pictures, reconstructions, the loss curve, the clusters against the
        digits, the latent map, and the panel's and map's arrays for the sweep's figures;
        ``images=False`` (``tracking.images``): the arrays alone."""
        if images:
            self._log_images(run)
        train, features = self.train, self.features
        run.log_arrays(
            PANEL_ARTIFACT,
            pixels=train.pixels[self.panel],
            latents=features.train[self.panel],
            labels=train.labels[self.panel],
        )
        if self.latent_map is not None:
            self._log_map(run, images=images)

    def _log_images(self, run: RunLog | NullRunLog) -> None:
        name, train, features = self.name, self.train, self.features
        run.log_figure(
            figures.latent_grid(train.pixels, features.train, self.members, title=name),
            "latent_grid",
        )
        run.log_figure(
            figures.sample_and_latent(
                train.pixels[0], features.train[0], label=int(train.labels[0])
            ),
            "sample_latent",
        )
        if features.decoded is not None:
            # at the last epoch: the step slider's end (0 for PCA, which has no epochs)
            run.log_figure(
                figures.reconstructions(train.x[:RECONSTRUCTED], features.decoded, title=name),
                "reconstructions",
                step=features.history.epochs if features.history is not None else 0,
            )
        if features.history is not None:
            h = features.history
            run.log_figure(figures.loss_curve(h.loss, h.val_loss, title=name), "loss_curve")
        table, digits, clusters = self.contingency
        run.log_figure(figures.confusion(table, digits, clusters, title=name), "confusion")

    def _log_map(self, run: RunLog | NullRunLog, *, images: bool) -> None:
        latent_map, labels = self.latent_map, self.train.labels
        shown = latent_map.index
        if images:
            table, digits, clusters = self.contingency
            matched = min(table.shape)  # the first columns: the clusters matched to a digit
            matching = dict(
                zip(clusters[:matched].tolist(), digits[:matched].tolist(), strict=True)
            )
            run.log_figure(
                figures.latent_map(
                    latent_map.coords,
                    labels[shown],
                    self.labels_pred[shown],
                    matching=matching,
                    n_samples=latent_map.n_samples,
                    method=latent_map.method,
                    title=f"{self.name}, training digits",
                ),
                "latent_map",
            )
        # The coordinates, so that the sweep's parent draws its jobs' maps without t-SNE.
        run.log_arrays(
            MAP_ARTIFACT,
            coords=latent_map.coords,
            labels_true=labels[shown],
            labels_pred=self.labels_pred[shown],
            index=shown,
        )
