import pytest
from conftest import compose_config
from hydra.errors import ConfigCompositionException

from aesweep.config import ArchName, Scaling, to_experiment_config
from aesweep.errors import InputError


@pytest.mark.parametrize(
    ("arch", "lr", "latent_dim", "scaling"),
    [
        ("ffn", 0.01, 100, Scaling.zscore),
        ("ffn_linear", 0.01, 100, Scaling.zscore),
        ("cnn", 0.005, 196, Scaling.unit),
        ("pixels", 0.01, 784, Scaling.unit),
    ],
)
def test_unset_lr_and_latent_dim_take_the_seed_values_of_the_arch(arch, lr, latent_dim, scaling):
    exp = to_experiment_config(compose_config([f"arch={arch}"]))
    assert exp.arch.name == ArchName(arch)
    assert (exp.learning_rate, exp.latent_size, exp.scaling) == (lr, latent_dim, scaling)


def test_defaults_are_the_seed_settings():
    exp = to_experiment_config(compose_config())
    assert (exp.train.epochs, exp.train.batch_size, exp.seed) == (500, 300, 0)
    assert (exp.data.n_samples, exp.data.n_test) == (3000, 1000)
    assert (exp.cluster.n_clusters, exp.cluster.n_init, exp.cluster.max_iter) == (10, 3, 300)


def test_top_level_keys_override_the_arch_values():
    exp = to_experiment_config(compose_config(["arch=cnn", "lr=0.01", "latent_dim=32"]))
    assert (exp.learning_rate, exp.latent_size) == (0.01, 32)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=0", "lr=0.0 must be > 0"),
        ("latent_dim=0", "latent_dim=0 must be > 0"),
        ("train.epochs=0", "train.epochs=0 must be > 0"),
        ("train.batch_size=-3", "train.batch_size=-3 must be > 0"),
        ("data.n_samples=0", "data.n_samples=0 must be > 0"),
        ("cluster.n_clusters=0", "cluster.n_clusters=0 must be > 0"),
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
    ],
)
def test_unknown_options_and_wrong_types_fail_while_composing(override):
    with pytest.raises(ConfigCompositionException):
        compose_config([override])


def test_keys_forced_in_with_plus_are_still_rejected_by_the_schema():
    with pytest.raises(InputError, match="typo"):
        to_experiment_config(compose_config(["+typo=1"]))
