"""Model builders: in-graph preprocessing, stable layer names, float32 softmax, freezing."""

from __future__ import annotations

import numpy as np
import pytest

from artflow.errors import ModelError


def test_cnn_outputs_probabilities_and_names_its_embedding() -> None:
    from artflow.classify.cnn import EMBEDDING, build_cnn

    model = build_cnn(5, 32, dense_units=8, dropout=0.5)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (3, 5) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.get_layer(EMBEDDING).output.shape[-1] == 8
    conv = [layer.filters for layer in model.layers if layer.name.startswith("conv")]
    assert conv == [32, 64, 128]


def test_softmax_stays_float32_under_mixed_precision() -> None:
    import keras

    from artflow.classify.cnn import build_cnn

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_cnn(4, 32, dense_units=8)
        assert model.get_layer("conv1").compute_dtype == "float16"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def resnet():
    from artflow.classify.resnet import build_resnet50

    return build_resnet50(3, 32, weights="none", pooling="avg")


def test_resnet_preprocessing_is_keras_preprocess_input(resnet) -> None:
    import keras

    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    inside = np.asarray(resnet.get_layer("resnet50_preprocess")(x))
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    assert np.allclose(inside, expected, atol=1e-3)
    assert resnet.get_layer("embedding").output.shape[-1] == 16


def test_phase_two_freezes_all_but_the_top_layers(resnet) -> None:
    from artflow.classify.resnet import BASE, freeze_base_except_top

    trainable = freeze_base_except_top(resnet, 10)
    base = resnet.get_layer(BASE)
    assert 0 < trainable <= 10
    assert not any(layer.trainable for layer in base.layers[:-10])
    assert resnet.get_layer("dense512").trainable  # the head keeps training


def test_resnet_weights_from_a_file_and_a_clear_error_for_a_missing_one(resnet, tmp_path) -> None:
    from artflow.classify.resnet import BASE, build_resnet50

    path = tmp_path / "base.weights.h5"
    resnet.get_layer(BASE).save_weights(str(path))
    again = build_resnet50(3, 32, weights=str(path), pooling="avg")
    assert np.array_equal(
        again.get_layer(BASE).get_weights()[0], resnet.get_layer(BASE).get_weights()[0]
    )
    with pytest.raises(ModelError, match="does not exist"):
        build_resnet50(3, 32, weights=str(tmp_path / "missing.h5"))
