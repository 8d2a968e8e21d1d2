import numpy as np
import pytest
from matplotlib.figure import Figure

from aesweep import figures


def test_latent_images_use_the_smallest_square_grid():
    images = figures.latent_images(np.arange(2 * 10, dtype=float).reshape(2, 10))
    assert images.shape == (2, 4, 4)
    assert images[0, 0, 0] == 0 and np.isnan(images[0, 3, 3])
    assert figures.latent_images(np.zeros((1, 196))).shape == (1, 14, 14)


def test_first_of_each_label():
    assert figures.first_of_each_label(np.array([3, 1, 3, 0, 1])).tolist() == [3, 1, 0]


def test_run_figures_draw():
    rng = np.random.default_rng(0)
    originals, latents = rng.random((30, 28, 28)), rng.random((30, 100))
    members = figures.pick_cluster_members(np.arange(30) % 3, n_clusters=3)
    for fig in [
        figures.latent_grid(originals, latents, members, title="ffn"),
        figures.sample_and_latent(originals[0], latents[0], label=7),
        figures.reconstructions(originals[:10], rng.random((10, 784))),
        figures.loss_curve([1.0, 0.5], [1.1, 0.6]),
    ]:
        assert isinstance(fig, Figure)
        figures.plt.close(fig)


@pytest.mark.parametrize("n_jobs", [1, 2, 16])
def test_sweep_figures_draw_for_1_2_and_16_jobs(n_jobs, tmp_path):
    rng = np.random.default_rng(n_jobs)
    titles = [f"cnn lr={0.001 * (i + 1):g} latent_dim={i + 4}" for i in range(n_jobs)]
    histories = {t: (list(rng.random(20) + 0.1), list(rng.random(20) + 0.1)) for t in titles}
    scores = {
        t: {f"test/{m}": rng.random() for m in ("purity", "acc", "nmi", "ari")} for t in titles
    }
    references = {t: {f"test/{m}": 0.5 for m in ("purity", "acc", "nmi", "ari")} for t in titles}
    latents = {t: rng.random((10, i + 4)) for i, t in enumerate(titles)}
    for name, fig in {
        "loss": figures.sweep_loss_curves(histories),
        "bars": figures.sweep_metric_bars(scores, references),
        "panel": figures.sweep_latent_panel(
            rng.random((10, 28, 28)), latents, labels=np.arange(10)
        ),
    }.items():
        fig.savefig(tmp_path / f"{name}.png")
        width, height = fig.get_size_inches()
        assert 3 < width < 30 and 2 < height < 30
        figures.plt.close(fig)
