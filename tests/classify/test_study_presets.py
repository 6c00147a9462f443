"""The study's architectures and searched settings are what params.yaml builds by default."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def defaults():
    from artflow.config import load_settings

    return load_settings(profile="default")


def test_cnn_head_is_the_studys(defaults) -> None:
    from keras import layers

    from artflow.classify.cnn import build_cnn

    cfg = defaults.cnn
    model = build_cnn(11, 32, cfg.dense_units, cfg.dropout, dense_layers=cfg.dense_layers)
    head = model.layers[model.layers.index(model.get_layer("flatten")) + 1 :]
    shape = [
        (type(layer).__name__, getattr(layer, "units", getattr(layer, "rate", None)))
        for layer in head
        if isinstance(layer, layers.Dense | layers.Dropout)
    ]
    assert shape == [("Dense", 64), ("Dense", 64), ("Dropout", 0.5), ("Dense", 11)]
    assert model.output.shape[-1] == 11


def test_tuner_space_reaches_the_studys_best_trial(defaults) -> None:
    import keras_tuner as kt

    cfg = defaults.tuner
    hp = kt.HyperParameters()
    units = hp.Int("dense_units", cfg.units_min, cfg.units_max, step=cfg.units_step)
    space = {p.name: p for p in hp.space}
    values = list(range(space["dense_units"].min_value, space["dense_units"].max_value + 1, 64))
    assert units == cfg.units_min and 384 in values and 1e-4 in cfg.learning_rates
    assert cfg.retrain


def test_full_profile_trains_cyclegan_for_120_epochs() -> None:
    from artflow.config import load_settings

    cfg = load_settings(profile="full").cyclegan
    assert cfg.epochs == 120 and 0 < cfg.decay_start_epoch < cfg.epochs


def test_resnet50_phases_train_the_right_layers() -> None:
    """Phase 1: the whole model; phase 2: the head and the base's top 50 layers; base
    BatchNorm frozen (inference mode) in both; each phase compiled with its learning rate."""
    import numpy as np

    from artflow.classify.resnet import BASE, build_resnet50, resnet_phases
    from artflow.config import load_settings

    cfg = load_settings(
        profile="smoke", overrides={"resnet": {"phase1_epochs": 1, "phase2_epochs": 1}}
    ).resnet
    assert cfg.unfreeze_top_layers == 50
    model = build_resnet50(3, 32, weights="none", pooling="avg")
    base = model.get_layer(BASE)
    n = len(base.layers)
    seen = []
    for phase, epochs, counts in resnet_phases(model, cfg):
        assert epochs == 1
        trainable = {layer.name for layer in base.layers if layer.trainable}
        bn = {layer.name for layer in base.layers if type(layer).__name__ == "BatchNormalization"}
        assert not trainable & bn  # BatchNorm frozen in both phases
        if phase == 1:
            assert trainable == {layer.name for layer in base.layers} - bn
            lr = cfg.phase1_learning_rate
        else:
            top = {layer.name for layer in base.layers[n - 50 :]}
            assert trainable == top - bn
            assert base.layers[n - 51].name not in trainable
            lr = cfg.phase2_learning_rate
        assert model.get_layer("dense512").trainable and model.get_layer("logits").trainable
        assert not model.get_layer("resnet50_preprocess").trainable
        assert np.isclose(float(model.optimizer.learning_rate), lr)
        # What the compiled train step will update: the head plus exactly these base layers.
        assert counts["trainable_weights"] == len(model.trainable_weights)
        seen.append((phase, counts["trainable_base_layers"], len(model.trainable_weights)))
    (p1, base1, w1), (p2, base2, w2) = seen
    assert (p1, p2) == (1, 2) and 0 < base2 < base1 and w2 < w1
