import numpy as np
import pytest

from aesweep.models import build_autoencoder


def _layer_table(model):
    return [
        (layer.name, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in model.layers[1:]
    ]


def test_ffn_matches_seed_network_1():
    ae = build_autoencoder("ffn", latent_dim=100)
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
    ae = build_autoencoder("ffn_linear", latent_dim=100)
    assert _layer_table(ae.encoder) == [
        ("enc_dense_256", (256,), 200_960),
        ("enc_dense_100", (100,), 25_700),
        ("latent", (100,), 100 * 100 + 100),
    ]
    assert ae.encoder.get_layer("latent").activation.__name__ == "linear"
    assert ae.model.count_params() == 454_004 + 10_100


def test_cnn_matches_seed_network_3():
    ae = build_autoencoder("cnn", latent_dim=196)
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
    ae = build_autoencoder("cnn", latent_dim=32)
    assert ae.decoder.get_layer("dec_project").output.shape[1:] == (196,)
    out = ae.model.predict(np.zeros((2, 28, 28, 1), dtype="float32"), verbose=0)
    assert out.shape == (2, 28, 28, 1)


@pytest.mark.parametrize("arch", ["ffn", "ffn_linear", "cnn"])
def test_activations_apply_to_hidden_and_output_layers(arch):
    ae = build_autoencoder(arch, latent_dim=16, hidden="sigmoid", output="relu")
    first_hidden = ae.encoder.layers[1]
    assert first_hidden.activation.__name__ == "sigmoid"
    assert ae.decoder.get_layer("reconstruction").activation.__name__ == "relu"
    expected_latent = "sigmoid" if arch == "ffn" else "linear"
    assert ae.encoder.get_layer("latent").activation.__name__ == expected_latent


def test_encoder_shares_weights_with_the_autoencoder():
    ae = build_autoencoder("ffn", latent_dim=8)
    assert ae.model.get_layer("encoder") is ae.encoder
    assert ae.model.get_layer("decoder") is ae.decoder


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="arch='mlp'"):
        build_autoencoder("mlp", latent_dim=8)


def test_dec_matches_the_deep_clustering_autoencoder():
    ae = build_autoencoder("dec", latent_dim=10)
    assert [layer.output.shape[1] for layer in ae.encoder.layers[1:]] == [500, 500, 2000, 10]
    assert [layer.output.shape[1] for layer in ae.decoder.layers[1:]] == [2000, 500, 500, 784]
    assert ae.model.count_params() == 3_330_794  # as in DEC, IDEC and N2D
    assert ae.encoder.get_layer("latent").activation.__name__ == "linear"
    assert ae.decoder.get_layer("reconstruction").activation.__name__ == "linear"
    assert {layer.activation.__name__ for layer in ae.encoder.layers[1:-1]} == {"relu"}
