"""The seed's networks, built the way runs build them: ``arch.model`` of conf/arch."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import compose_config

from aesweep.config import to_experiment_config
from aesweep.errors import InputError
from aesweep.features import build_autoencoder


def built(arch: str, *overrides: str) -> SimpleNamespace:
    exp = to_experiment_config(compose_config([f"arch={arch}", *overrides]))
    model = build_autoencoder(exp.arch)
    return SimpleNamespace(
        model=model, encoder=model.get_layer("encoder"), decoder=model.get_layer("decoder")
    )


def _layer_table(model):
    return [
        (layer.name, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in model.layers[1:]
    ]


def test_ffn_matches_seed_network_1():
    ae = built("ffn")
    assert _layer_table(ae.encoder) == [
        ("enc_dense_256", (256,), 784 * 256 + 256),
        ("latent", (100,), 256 * 100 + 100),
    ]
    assert _layer_table(ae.decoder) == [
        ("dec_dense_256", (256,), 100 * 256 + 256),
        ("reconstruction", (784,), 256 * 784 + 784),
    ]
    assert ae.model.count_params() == 454_004
    assert ae.encoder.get_layer("latent").activation.__name__ == "relu"
    assert ae.decoder.get_layer("reconstruction").activation.__name__ == "linear"


def test_ffn_linear_matches_seed_network_2():
    ae = built("ffn_linear")
    assert _layer_table(ae.encoder) == [
        ("enc_dense_256", (256,), 200_960),
        ("enc_dense_100", (100,), 25_700),
        ("latent", (100,), 100 * 100 + 100),
    ]
    assert ae.encoder.get_layer("latent").activation.__name__ == "linear"
    assert ae.model.count_params() == 454_004 + 10_100


def test_cnn_matches_seed_network_3():
    ae = built("cnn")
    assert _layer_table(ae.encoder) == [
        ("enc_conv", (28, 28, 10), 5 * 5 * 10 + 10),
        ("enc_pool", (24, 24, 10), 0),  # a MaxPooling2D, computed faster
        ("flatten", (5760,), 0),
        ("latent", (196,), 5760 * 196 + 196),
    ]
    assert _layer_table(ae.decoder) == [
        ("dec_reshape", (14, 14, 1), 0),
        ("dec_convT", (28, 28, 10), 4 * 4 * 10 + 10),
        ("reconstruction", (28, 28, 1), 4 * 4 * 10 + 1),
    ]
    assert ae.model.count_params() == 260 + 1_129_156 + 170 + 161


def test_cnn_projects_other_latent_sizes_to_14x14():
    ae = built("cnn", "latent_dim=32")
    assert ae.decoder.get_layer("dec_project").output.shape[1:] == (196,)
    out = ae.model.predict(np.zeros((2, 28, 28, 1), dtype="float32"), verbose=0)
    assert out.shape == (2, 28, 28, 1)


@pytest.mark.parametrize("arch", ["ffn", "ffn_linear", "cnn"])
def test_activations_apply_to_hidden_and_output_layers(arch):
    ae = built(arch, "latent_dim=16", "activation=sigmoid", "activation.output=relu")
    first_hidden = ae.encoder.layers[1]
    assert first_hidden.activation.__name__ == "sigmoid"
    assert ae.decoder.get_layer("reconstruction").activation.__name__ == "relu"
    expected_latent = "sigmoid" if arch == "ffn" else "linear"
    assert ae.encoder.get_layer("latent").activation.__name__ == expected_latent


def test_encoder_shares_weights_with_the_autoencoder():
    ae = built("ffn", "latent_dim=8")
    assert ae.model.get_layer("encoder") is ae.encoder
    assert ae.model.get_layer("decoder") is ae.decoder


def test_a_model_that_is_no_autoencoder_is_refused_naming_its_target():
    exp = to_experiment_config(compose_config(["arch=ffn"]))
    exp.arch.model = {"_target_": "keras.layers.Dense", "units": 3}
    with pytest.raises(InputError, match="_target_='keras.layers.Dense' built a Dense"):
        build_autoencoder(exp.arch)


def test_dec_matches_the_deep_clustering_autoencoder():
    ae = built("dec")
    assert [layer.output.shape[1] for layer in ae.encoder.layers[1:]] == [500, 500, 2000, 10]
    assert [layer.output.shape[1] for layer in ae.decoder.layers[1:]] == [2000, 500, 500, 784]
    assert ae.model.count_params() == 3_330_794  # as in DEC, IDEC and N2D
    assert ae.encoder.get_layer("latent").activation.__name__ == "linear"
    assert ae.decoder.get_layer("reconstruction").activation.__name__ == "linear"
    assert {layer.activation.__name__ for layer in ae.encoder.layers[1:-1]} == {"relu"}


@pytest.mark.parametrize("arch", ["small_dense", "bottleneck"])
def test_a_network_defined_in_the_tests_builds_as_an_arch(arch):
    # tests/user_nets.py: a function, and a keras.Model subclass
    searchpath = f"hydra.searchpath=[file://{Path(__file__).parent / 'user_conf'}]"
    ae = built(arch, searchpath, "latent_dim=5")
    z = ae.encoder(np.zeros((3, 784), dtype="float32"))
    assert tuple(z.shape) == (3, 5)


def test_a_model_that_does_not_give_back_the_digit_is_refused():
    exp = to_experiment_config(compose_config(["arch=ffn"]))
    exp.arch.input_shape = [28, 28, 1]  # the ffn takes 784 flat pixels
    with pytest.raises(InputError, match=r"cannot take digits of arch.input_shape=\[28, 28, 1\]"):
        build_autoencoder(exp.arch)
