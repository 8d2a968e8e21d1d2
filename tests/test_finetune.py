"""DEC/IDEC fine-tuning: the soft assignment and target against hand-computed values, the
training step, the stopping rule, and a tiny ``finetune=idec`` run with its records."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import (
    FIGURES,
    LEAN,
    ROOT,
    TINY,
    assert_close_to_scale,
    cli_env,
    compose_config,
    image_steps,
)
from mlflow import MlflowClient

from aesweep import models
from aesweep.augment import make_augment
from aesweep.clustering import cluster_scores
from aesweep.config import (
    AugmentConfig,
    FinetuneConfig,
    FinetuneName,
    Optimizer,
    to_experiment_config,
)
from aesweep.errors import InputError
from aesweep.experiment import run_experiment
from aesweep.features import load_digits
from aesweep.finetune import (
    assign,
    build_clustering_model,
    centres_of,
    fine_tune,
    kl_divergence,
    latents_and_assignments,
    make_train_steps,
    soft_assignment,
    target_distribution,
)
from aesweep.names import CLUSTERING_MODEL_URI_TAG, MODEL_FROM_TAG, MODEL_URI_TAG
from aesweep.selflabel import self_label

# Three points on a line, two centres: 0 and 3 sit near a centre, 1 halfway between.
Z = np.array([[0.0], [1.0], [3.0]])
CENTRES = np.array([[0.0], [2.0]])
# 1 / (1 + d^2) with d^2 = (0, 4), (1, 1), (9, 1), each row normalised
Q = np.array([[5 / 6, 1 / 6], [1 / 2, 1 / 2], [1 / 6, 5 / 6]])
# q^2 / f with f = (1.5, 1.5), each row normalised
P = np.array([[25 / 26, 1 / 26], [1 / 2, 1 / 2], [1 / 26, 25 / 26]])


def _config(name: str = "idec", **overrides) -> FinetuneConfig:
    values = dict(
        name=FinetuneName(name),
        alpha=1.0,
        update_interval=5,
        tol=0.001,
        max_steps=20,
        batch_size=32,
        optimizer=Optimizer.adam,
        lr=0.001,
        gamma=0.1 if name == "idec" else None,
    )
    return FinetuneConfig(**(values | overrides))


def test_soft_assignment_and_target_match_hand_computed_values():
    assert_close_to_scale(soft_assignment(Z, CENTRES), Q, rel=1e-12)
    assert_close_to_scale(target_distribution(Q), P, rel=1e-12)
    # Another alpha: (1 + d^2 / 2)^(-3/2) for the point between the centres is equal.
    assert_close_to_scale(soft_assignment(Z[1:2], CENTRES, alpha=2.0), [[0.5, 0.5]], rel=1e-12)


def test_the_keras_clustering_head_computes_the_same_q():
    latent = keras.Input(shape=(1,))
    identity_encoder = keras.Model(latent, latent, name="encoder")
    model, trained = build_clustering_model(identity_encoder, CENTRES, alpha=1.0)
    assert trained is model  # no decoder: DEC's model trains as it is
    assert_close_to_scale(np.asarray(model(Z.astype("float32"))), Q, rel=1e-6)
    assert_close_to_scale(centres_of(model), CENTRES, rel=0)


@pytest.fixture(scope="module")
def tiny_problem():
    """200 embedded digits, a small ffn encoder trained for nothing, KMeans-like centres."""
    keras.utils.set_random_seed(0)
    exp = to_experiment_config(compose_config([*TINY, "arch=ffn", "latent_dim=4"]))
    train, _ = load_digits(exp)
    autoencoder = models.ffn(latent_dim=4)
    z = np.asarray(autoencoder.get_layer("encoder")(train.x))
    centres = z[np.arange(10) * 20]  # ten digits as starting centres
    return autoencoder, centres, train


def test_steps_towards_a_fixed_target_lower_the_kl(tiny_problem):
    autoencoder, centres, train = tiny_problem
    model, trained = build_clustering_model(autoencoder.get_layer("encoder"), centres)
    config = _config("dec", optimizer=Optimizer.sgd, lr=0.01, momentum=0.9)
    steps = make_train_steps(trained, train.x, keras.optimizers.SGD(0.01, momentum=0.9), config)
    q = assign(model, train.x)
    p = target_distribution(q).astype("float32")
    before = kl_divergence(p, q)
    batches = np.random.default_rng(0).permutation(len(train.x))[:160].reshape(5, 32)
    steps(p, batches.astype("int32"), 5)
    after = kl_divergence(p, assign(model, train.x))
    assert after < 0.98 * before


def test_fine_tuning_stops_when_few_labels_change_or_at_max_steps(tiny_problem, caplog):
    autoencoder, centres, train = tiny_problem
    # Any change below 100 %: the first check after training stops it.
    with caplog.at_level(logging.INFO, logger="aesweep"):
        loose = fine_tune(autoencoder, centres, train.x, _config(tol=0.999))
    assert (loose.converged, loose.steps) == (True, 5)
    assert [u.step for u in loose.updates] == [0, 5]
    assert "no label may change" not in caplog.text
    # No change is below 0: it runs to max_steps, the last interval cut short.
    with caplog.at_level(logging.INFO, logger="aesweep"):
        strict = fine_tune(autoencoder, centres, train.x, _config(tol=0.0, max_steps=12))
    assert "the stopping rule means no label may change" in caplog.text
    assert (strict.converged, strict.steps) == (False, 12)
    assert [u.step for u in strict.updates] == [0, 5, 10, 12]
    assert all(u.kl > 0 and u.recon > 0 for u in strict.updates[1:])
    assert strict.updates[0].changed == 1.0 and 0 <= strict.updates[-1].changed <= 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["arch=pixels", "finetune=dec"], "finetune=dec fine-tunes an encoder: arch=pixels"),
        (["arch=pca", "finetune=idec"], "finetune=idec fine-tunes an encoder: arch=pca"),
        (["finetune=dec", "cluster=gmm"], "cluster=gmm is not cluster=kmeans"),
        (["finetune=idec", "cluster=umap_kmeans"], "cluster=umap_kmeans is not cluster=kmeans"),
        (["finetune=dec", "finetune.gamma=0.1"], "finetune.gamma=0.1 is read only by"),
        (["finetune.lr=0.01"], "finetune.lr=0.01 is read only by finetune=dec|idec"),
        (["finetune=idec", "finetune.momentum=0.9"], "finetune.momentum=0.9 is read only by"),
        (["finetune=dec", "finetune.tol=1.5"], "finetune.tol=1.5 must be in"),
        (["finetune=dec", "finetune.update_interval=0"], "finetune.update_interval=0 must be"),
        (["finetune=selflabel", "finetune.tol=0.001"], "finetune.tol=0.001 is read only by"),
        (["finetune=selflabel", "finetune.max_steps=0"], "finetune.max_steps=0 must be"),
    ],
)
def test_combinations_that_make_no_sense_are_one_line_naming_the_keys(overrides, message):
    with pytest.raises(InputError, match=message):
        to_experiment_config(compose_config(overrides))


def test_self_labelling_follows_any_clusterer():
    for cluster in ("kmeans", "gmm", "umap_gmm"):
        exp = to_experiment_config(compose_config(["finetune=selflabel", f"cluster={cluster}"]))
        assert exp.finetune.name == FinetuneName.selflabel
        assert (exp.finetune.alpha, exp.finetune.update_interval, exp.finetune.tol) == (None,) * 3


def test_self_labelling_learns_the_clusterers_labels_from_augmented_digits(tiny_problem):
    _, _, train = tiny_problem
    keras.utils.set_random_seed(0)
    autoencoder = models.dec(latent_dim=10)  # its own: the others' fine-tuning changed theirs
    config = FinetuneConfig(
        name=FinetuneName.selflabel, max_steps=60, batch_size=32, optimizer=Optimizer.adam, lr=1e-3
    )
    ranges = {"width_shift": 0.1, "height_shift": 0.1, "rotation": 10}
    shift = make_augment(AugmentConfig(name="shift", **ranges))
    labels = train.labels  # a partition to learn: here the digits' own classes
    results = []
    for _ in range(2):  # the same seed, from the same weights: the same training
        copy = keras.models.clone_model(autoencoder)
        copy.set_weights(autoencoder.get_weights())
        results.append(self_label(copy, labels, train.x, config, n_clusters=10, augment=shift))
    tuned, again = results
    assert [u.step for u in tuned.updates] == list(range(0, 61, 6))
    assert tuned.updates[0].cross_entropy is None
    losses = [u.cross_entropy for u in tuned.updates[1:]]
    assert losses[-1] < 0.5 * losses[0]
    assert tuned.agreement == pytest.approx(np.mean(tuned.train_q.argmax(axis=1) == labels))
    assert tuned.agreement > 1 - tuned.updates[0].changed + 0.5  # it learnt the labels
    # The labels it ends with are the head's on the clean digits, not on augmented ones.
    _, clean_q = latents_and_assignments(tuned.probe, train.x)
    np.testing.assert_allclose(tuned.train_q, clean_q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tuned.train_q, again.train_q, rtol=1e-5, atol=1e-6)
    assert tuned.metrics()["finetune/agreement"] == tuned.agreement


def test_paper_settings_are_the_defaults():
    idec = to_experiment_config(compose_config(["finetune=idec"])).finetune
    assert (idec.update_interval, idec.batch_size, idec.tol, idec.gamma) == (140, 256, 0.001, 0.1)
    assert (idec.optimizer, idec.lr) == (Optimizer.adam, 0.001)
    dec = to_experiment_config(compose_config(["finetune=dec"])).finetune
    assert (dec.optimizer, dec.lr, dec.momentum, dec.gamma) == (Optimizer.sgd, 0.01, 0.9, None)
    assert dec.max_steps == idec.max_steps == 20000  # DEC-keras' maxiter
    # train=quick (a search's trials) caps fine-tuning as it caps epochs
    quick = to_experiment_config(compose_config(["finetune=dec", "train=quick"])).finetune
    assert quick.max_steps == 2000


# No early stop (tol=0): two intervals of four steps, three updates recorded.
FAST = ["arch=ffn", "latent_dim=10", "finetune.update_interval=4", "finetune.max_steps=8"]
FAST += ["finetune.tol=0"]


@pytest.mark.slow
def test_a_tiny_idec_run_records_both_scores_its_updates_and_a_model_that_loads_alone(
    workdir, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    overrides = [*TINY, f"tracking.uri={store}", *FAST]
    cfg = compose_config([*overrides, "finetune=idec"])
    objective = run_experiment(cfg, root=workdir, overrides=["finetune=idec"])
    # DEC on the same autoencoder: reused, not trained again.
    dec_cfg = compose_config([*overrides, "finetune=dec", *LEAN])
    run_experiment(dec_cfg, root=workdir)

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("aesweep").experiment_id])
    idec, dec = sorted(runs, key=lambda r: r.info.start_time)
    assert idec.info.run_name == "ffn-relu-lr0.01-z10-idec" and idec.info.status == "FINISHED"
    metrics = idec.data.metrics
    assert objective == metrics["test/acc"]
    for key in ("cluster/acc", "test/acc", "test/nmi"):
        assert 0 <= metrics[f"pretrain/{key}"] <= 1 and 0 <= metrics[key] <= 1
    assert metrics["finetune/steps"] == 8 and "time/finetune_s" in metrics
    for key, steps in [("finetune/changed", [0, 4, 8]), ("finetune/kl", [4, 8])]:
        history = client.get_metric_history(idec.info.run_id, key)
        assert sorted(m.step for m in history) == steps
    recon = client.get_metric_history(idec.info.run_id, "finetune/recon")
    assert len(recon) == 2 and "finetune/recon" not in dec.data.metrics
    assert set(image_steps(client, idec.info.run_id)) == FIGURES
    assert dec.data.tags[MODEL_FROM_TAG] == idec.info.run_id
    assert MODEL_URI_TAG in idec.data.tags and MODEL_URI_TAG not in dec.data.tags

    # The fine-tuned model alone reproduces the run's held-out scores in a process that
    # cannot import aesweep.
    exp = to_experiment_config(cfg)
    _, test = load_digits(exp)
    np.save(workdir / "x.npy", test.x)
    script = textwrap.dedent(
        f"""
        import sys
        class NoAesweep:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "aesweep":
                    raise ImportError("aesweep must not be needed")
        sys.meta_path.insert(0, NoAesweep())
        import mlflow, numpy as np
        mlflow.set_tracking_uri({store!r})
        model = mlflow.keras.load_model({idec.data.tags[CLUSTERING_MODEL_URI_TAG]!r})
        q = np.asarray(model(np.load({str(workdir / "x.npy")!r})))
        np.save({str(workdir / "labels.npy")!r}, q.argmax(axis=1))
        """
    )
    env = cli_env() | {"PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=300)
    scores = cluster_scores(test.labels, np.load(workdir / "labels.npy"))
    for key in ("acc", "nmi", "ari"):
        assert scores[key] == pytest.approx(metrics[f"test/{key}"], abs=1e-9)


def test_a_tiny_selflabel_run_follows_a_gmm_and_records_its_agreement(workdir):
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    overrides = [*TINY, f"tracking.uri={store}", "arch=dec", "cluster=gmm", "augment=shift"]
    overrides += ["finetune=selflabel", "finetune.max_steps=20", "tracking.images=false"]
    objective = run_experiment(compose_config(overrides), root=workdir)
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("aesweep").experiment_id])
    assert run.info.run_name == "dec-relu-lr0.001-z10-selflabel" and run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert objective == metrics["test/acc"] and 0 <= metrics["pretrain/test/acc"] <= 1
    assert 0 <= metrics["finetune/agreement"] <= 1 and metrics["finetune/steps"] == 20
    history = client.get_metric_history(run.info.run_id, "finetune/cross_entropy")
    assert sorted(m.step for m in history) == list(range(2, 21, 2))
    assert CLUSTERING_MODEL_URI_TAG in run.data.tags  # image -> cluster probabilities
    assert run.data.params["finetune.name"] == "selflabel"
