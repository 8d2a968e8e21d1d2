import io

import numpy as np
import PIL.Image
import pytest
from conftest import image_path

from aesweep import clustering, figures
from aesweep.figures.draw import STRIP_GAP
from aesweep.tracking import Tracker
from aesweep.tracking.runlog import FIGURE_DPI


def test_latent_images_use_the_smallest_square_grid():
    images = figures.latent_images(np.arange(2 * 10, dtype=float).reshape(2, 10))
    assert images.shape == (2, 4, 4)
    assert images[0, 0, 0] == 0 and np.isnan(images[0, 3, 3])
    assert figures.latent_images(np.zeros((1, 196))).shape == (1, 14, 14)


def test_first_of_each_label():
    assert figures.first_of_each_label(np.array([3, 1, 3, 0, 1])).tolist() == [3, 1, 0]


def _images(ax) -> list[np.ndarray]:
    """The images a strip (``draw.image_strip``) shows in ``ax``, as drawn: one picture, a
    unit square per image, each image's columns repeated and scaled to [0, 1]."""
    [picture] = ax.get_images()
    strip = np.asarray(picture.get_array(), dtype=np.float64)
    left, right, _, _ = picture.get_extent()
    n_slots = round((right - left + STRIP_GAP) / (1 + STRIP_GAP))
    per_unit = strip.shape[1] / (right - left)
    found = []
    for j in range(n_slots):
        start = round(j * (1 + STRIP_GAP) * per_unit)
        square = strip[:, start : start + round(per_unit)]
        image = square[:, :: square.shape[1] // strip.shape[0]]  # the images are square
        if not np.isnan(image).all():  # not an empty slot of a shorter row
            found.append(image)
    return found


def _as_drawn(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to [0, 1] by its own range, as imshow's default Normalize does."""
    return (image - np.nanmin(image)) / (np.nanmax(image) - np.nanmin(image))


def test_a_runs_figures_show_its_digits_latents_and_curves():
    rng = np.random.default_rng(0)
    originals, latents = rng.random((30, 28, 28)), rng.random((30, 100))
    members = figures.pick_cluster_members(np.arange(30) % 3, n_clusters=3)
    grid = figures.latent_grid(originals, latents, members, title="ffn")
    # per cluster, a row of its member digits above a row of the same digits' latents
    assert [ax.get_ylabel() for ax in grid.axes] == [
        f"{k}-{kind}" for k in range(3) for kind in ("original", "latent")
    ]
    first, first_latent = _images(grid.axes[0]), _images(grid.axes[1])
    assert len(first) == len(first_latent) == len(members[0])
    np.testing.assert_allclose(first[0], _as_drawn(originals[members[0][0]]), atol=1e-12)
    assert first_latent[0].shape == (10, 10)  # 100 latent values as a 10x10 image
    assert grid.get_suptitle() == "ffn"

    pair = figures.sample_and_latent(originals[0], latents[0], label=7)
    assert [ax.get_title() for ax in pair.axes] == ["original (digit 7)", "latent (100 values)"]

    decoded = rng.random((10, 784))
    recon = figures.reconstructions(originals[:10], decoded)
    assert [ax.get_ylabel() for ax in recon.axes] == ["input", "decoded"]
    drawn = _as_drawn(decoded[3].reshape(28, 28))
    np.testing.assert_allclose(_images(recon.axes[1])[3], drawn, atol=1e-12)

    curve = figures.loss_curve([1.0, 0.5, 0.25], [1.1, 0.6, 0.3], title="cnn")
    [ax] = curve.axes
    lines = {line.get_label(): line.get_ydata().tolist() for line in ax.get_lines()}
    assert lines == {"train/loss": [1.0, 0.5, 0.25], "val/loss": [1.1, 0.6, 0.3]}
    assert ax.get_yscale() == "log" and ax.get_title() == "cnn"
    figures.plt.close("all")


@pytest.mark.parametrize("n_jobs", [1, 2, 16])
def test_sweep_figures_draw_every_job(n_jobs, tmp_path):
    rng = np.random.default_rng(n_jobs)
    titles = [f"cnn lr={0.001 * (i + 1):g} latent_dim={i + 4}" for i in range(n_jobs)]
    histories = {t: (list(rng.random(20) + 0.1), list(rng.random(20) + 0.1)) for t in titles}
    scores = {
        t: {f"test/{m}": rng.random() for m in ("purity", "acc", "nmi", "ari")} for t in titles
    }
    references = {t: {f"test/{m}": 0.5 for m in ("purity", "acc", "nmi", "ari")} for t in titles}
    latents = {t: rng.random((10, i + 4)) for i, t in enumerate(titles)}
    maps = {t: (rng.normal(size=(50, 2)), rng.integers(0, 10, 50)) for t in titles}

    loss = figures.sweep_loss_curves(histories)
    lines = loss.axes[0].get_lines()
    assert len(lines) == 2 * n_jobs  # train and validation per job
    assert lines[0].get_ydata().tolist() == histories[titles[0]][0]
    assert [t.get_text() for t in loss.axes[0].get_legend().get_texts()] == titles

    bars = figures.sweep_metric_bars(scores, references)
    ax = bars.axes[0]
    assert len(ax.patches) == 4 * n_jobs  # four scores per job
    heights = [patch.get_height() for patch in ax.patches[:4]]
    assert heights == [scores[titles[0]][f"test/{m}"] for m in ("purity", "acc", "nmi", "ari")]
    [dashes] = [c for c in ax.collections if c.get_label() == "KMeans on pixels"]
    assert np.allclose([seg[0][1] for seg in dashes.get_segments()], 0.5)  # the references

    panel = figures.sweep_latent_panel(rng.random((10, 28, 28)), latents, labels=np.arange(10))
    assert [ax.get_ylabel() for ax in panel.axes] == ["digits", *titles]
    assert all(len(_images(ax)) == 10 for ax in panel.axes)

    maps_figure = figures.sweep_latent_maps(maps)
    drawn = [ax for ax in maps_figure.axes if ax.axison]
    assert [ax.get_title().replace("\n", " ") for ax in drawn] == titles
    for name, fig in {"loss": loss, "bars": bars, "panel": panel, "maps": maps_figure}.items():
        fig.savefig(tmp_path / f"{name}.png")
        width, height = fig.get_size_inches()
        assert 3 < width < 30 and 2 < height < 30
    figures.plt.close("all")


def test_matched_contingency_puts_the_matched_counts_on_the_diagonal():
    # Best matching: digit 0 -> cluster 7 (2), 1 -> 3 (2), 2 -> 5 (3): 7 of 9 samples.
    labels_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    labels_pred = np.array([7, 7, 3, 3, 3, 5, 5, 5, 7])
    table, labels, clusters = clustering.matched_contingency(labels_true, labels_pred)
    assert table.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert labels.tolist() == [0, 1, 2] and clusters.tolist() == [7, 3, 5]
    assert np.trace(table) / table.sum() == clustering.hungarian_accuracy(labels_true, labels_pred)


@pytest.mark.parametrize("n_clusters", [2, 5])
def test_matched_contingency_with_fewer_or_more_clusters_than_digits(n_clusters):
    rng = np.random.default_rng(n_clusters)
    labels_true, labels_pred = rng.integers(0, 3, 60), rng.integers(0, n_clusters, 60)
    table, labels, clusters = clustering.matched_contingency(labels_true, labels_pred)
    assert table.shape == (3, n_clusters) and table.sum() == 60
    assert sorted(labels.tolist()) == [0, 1, 2]
    assert sorted(clusters.tolist()) == list(range(n_clusters))
    assert np.isclose(np.trace(table) / 60, clustering.hungarian_accuracy(labels_true, labels_pred))


def _fig_size_is_sane(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png")
    width, height = fig.get_size_inches()
    assert 3 < width < 30 and 2 < height < 30
    figures.plt.close(fig)


def test_latent_map_and_confusion_draw(tmp_path):
    rng = np.random.default_rng(0)
    labels_true, labels_pred = np.arange(40) % 10, rng.integers(0, 12, 40)
    table, labels, clusters = clustering.matched_contingency(labels_true, labels_pred)
    matching = dict(zip(clusters[:10].tolist(), labels[:10].tolist(), strict=True))
    coords = rng.normal(size=(40, 2))
    fig = figures.latent_map(coords, labels_true, labels_pred, n_samples=3000, title="ffn")
    assert "40 of 3,000" in fig.get_suptitle()  # a subsample says so
    _fig_size_is_sane(fig, tmp_path, "map")
    # Matched clusters wear their digit's colour; the two unmatched ones colours of their own.
    fig = figures.latent_map(coords, labels_true, labels_pred, matching=matching)
    cluster_legend = fig.axes[1].get_legend()
    assert len(cluster_legend.get_texts()) == len(np.unique(labels_pred))
    assert len({h.get_color() for h in cluster_legend.legend_handles}) == 12
    _fig_size_is_sane(fig, tmp_path, "map_matched")
    fig = figures.confusion(table, labels, clusters, title="ffn")
    assert f"{np.trace(table) / 40:.3f}" in fig.axes[0].get_title()
    _fig_size_is_sane(fig, tmp_path, "confusion")


def test_a_logged_picture_holds_the_pixels_savefig_writes(workdir, monkeypatch):
    """log_figure hands MLflow the canvas's pixels instead of a PNG round trip."""

    def figure():
        return figures.loss_curve([1.0, 0.5, 0.3], [1.1, 0.6, 0.4], title="ffn")

    png = io.BytesIO()
    figure().savefig(png, format="png", dpi=FIGURE_DPI)
    written = np.asarray(PIL.Image.open(png).convert("RGB"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    tracker = Tracker.connect(enabled=True, uri=uri, experiment="pictures", root=workdir)
    with tracker.run(run_name="pictures", tags={}) as run:
        run.log_figure(figure(), "loss_curve")
    logged = image_path(tracker.client, tracker.run_id, "loss_curve", 0, workdir)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(logged).convert("RGB")), written)
    figures.plt.close("all")
