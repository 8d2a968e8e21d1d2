import pytest
from conftest import CONF_DIR, compose_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from aesweep.config import Scaling, to_experiment_config
from aesweep.errors import InputError


@pytest.mark.parametrize(
    ("arch", "lr", "latent_dim", "scaling"),
    [
        ("ffn", 0.01, 100, Scaling.zscore),
        ("ffn_linear", 0.01, 100, Scaling.zscore),
        ("cnn", 0.005, 196, Scaling.unit),
        ("pca", None, 100, Scaling.zscore),
        ("pixels", None, None, Scaling.unit),
    ],
)
def test_unset_lr_and_latent_dim_take_the_seed_values_of_the_arch(arch, lr, latent_dim, scaling):
    cfg = compose_config([f"arch={arch}"])
    # Interpolated in the config itself, so `--cfg job --resolve` shows the values in force.
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert (resolved["lr"], resolved["latent_dim"], resolved["data"]["scaling"]) == (
        lr,
        latent_dim,
        scaling.value,
    )
    exp = to_experiment_config(cfg)
    assert exp.arch.name == arch
    assert (exp.lr, exp.latent_dim, exp.data.scaling) == (lr, latent_dim, scaling)


def test_data_scaling_can_be_set_apart_from_the_arch():
    exp = to_experiment_config(compose_config(["arch=cnn", "data.scaling=zscore"]))
    assert exp.data.scaling == Scaling.zscore and exp.arch.scaling == Scaling.unit


def test_quick_training_extends_the_default():
    quick = compose_config(["train=quick"]).train
    default = compose_config().train
    assert quick.epochs == 20 and quick.progress_every == 5
    assert (quick.batch_size, quick.validation) == (default.batch_size, default.validation)


def test_debug_tiny_shrinks_the_data_and_the_training():
    exp = to_experiment_config(compose_config(["debug=tiny"]))
    assert (exp.data.n_samples, exp.data.n_test, exp.train.epochs) == (200, 100, 2)


def test_defaults_are_the_seed_settings():
    exp = to_experiment_config(compose_config())
    assert (exp.train.epochs, exp.train.batch_size, exp.seed) == (500, 300, 0)
    assert (exp.data.n_samples, exp.data.n_test) == (3000, 1000)
    assert (exp.cluster.n_clusters, exp.cluster.n_init, exp.cluster.max_iter) == (10, 3, 300)


def test_top_level_keys_override_the_arch_values():
    exp = to_experiment_config(compose_config(["arch=cnn", "lr=0.01", "latent_dim=32"]))
    assert (exp.lr, exp.latent_dim) == (0.01, 32)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=0", "lr=0.0 must be > 0"),
        ("latent_dim=0", "latent_dim=0 must be > 0"),
        ("train.epochs=0", "train.epochs=0 must be > 0"),
        ("train.batch_size=-3", "train.batch_size=-3 must be > 0"),
        ("data.n_samples=0", "data.n_samples=0 must be > 0"),
        ("cluster.n_clusters=0", "cluster.n_clusters=0 must be > 0"),
        ("tracking.metrics_every=0", "tracking.metrics_every=0.0 must be > 0"),
        # Keys that would be accepted and ignored are refused, naming key and value.
        ("data.path=digits.npz", "data.path='digits.npz' is read only by data=file"),
        ("data.allow_pickle=true", "data.allow_pickle=True is read only by data=file"),
        ("lr=null", "lr=None: arch=ffn needs a learning rate"),
    ],
)
def test_out_of_range_values_name_key_and_value(override, message):
    with pytest.raises(InputError, match=message):
        to_experiment_config(compose_config([override]))


@pytest.mark.parametrize(
    "override",
    [
        "arch=mlp",
        "activation.output=tanh",
        "activation.hidden=elu",
        "train.epochs=many",
        "typo=1",
        "train.epoch=5",
        "train.optimizer=sgd",  # removed: nothing read it
    ],
)
def test_unknown_options_and_wrong_types_fail_while_composing(override):
    with pytest.raises(ConfigCompositionException):
        compose_config([override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["arch=pixels", "lr=0.01"], "lr=0.01 does nothing for arch=pixels"),
        (["arch=pca", "lr=0.01"], "lr=0.01 does nothing for arch=pca"),
        (["arch=pixels", "latent_dim=50"], "latent_dim=50 does nothing for arch=pixels"),
    ],
)
def test_baselines_refuse_training_keys(overrides, message):
    with pytest.raises(InputError, match=message):
        to_experiment_config(compose_config(overrides))


def test_keys_forced_in_with_plus_are_still_rejected_by_the_schema():
    with pytest.raises(InputError, match="typo"):
        to_experiment_config(compose_config(["+typo=1"]))


USER_ARCHS = ["hydra.searchpath=[file://" + str(CONF_DIR.parent / "tests" / "user_conf") + "]"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+arch.model.widht=3"], r"arch.model.widht=3: user_nets.small_dense has no argument"),
        (["arch.model.width=wide"], r"arch.model.width='wide': .* takes width: int"),
        (["~arch.model.latent_dim"], r"arch.model.latent_dim is missing: user_nets.small_dense"),
        (["arch.model._target_=user_nets.nope"], r"module user_nets has no 'nope'"),
        (["arch.model._target_=no_such_module.net"], r"'no_such_module.net' cannot be imported"),
        (["arch.input_shape=[28,27]"], r"arch.input_shape=\[28, 27\] must hold the 784 pixels"),
    ],
)
def test_a_users_network_is_checked_against_its_signature_before_any_work(overrides, message):
    with pytest.raises(InputError, match=message):
        to_experiment_config(compose_config(["arch=small_dense", *USER_ARCHS, *overrides]))


def test_a_users_network_takes_the_sweeps_keys_through_interpolation():
    exp = to_experiment_config(
        compose_config(["arch=small_dense", *USER_ARCHS, "latent_dim=3", "activation=sigmoid"])
    )
    assert exp.arch.model == {
        "_target_": "user_nets.small_dense",
        "latent_dim": 3,
        "width": 32,
        "hidden": "sigmoid",
    }
    assert exp.arch.trains and exp.lr == 0.005


@pytest.mark.parametrize(("arch", "trains"), [("pixels", False), ("pca", False), ("cnn", True)])
def test_transformers_train_nothing_and_networks_do(arch, trains):
    assert to_experiment_config(compose_config([f"arch={arch}"])).arch.trains is trains
