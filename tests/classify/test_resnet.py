"""ResNet50 transfer at a tiny size (weights none): both phases run, the model registers."""

from __future__ import annotations

import json

import pytest

from artflow import tracking

pytestmark = pytest.mark.slow


def test_resnet50_smoke_trains_two_phases_and_registers(
    smoke_settings, classify_workdir, test_images
) -> None:
    from artflow.models.classifier_io import load_classifier
    from artflow.train.classifier import train_classifier

    cfg = smoke_settings.resnet
    assert cfg.weights == "none" and cfg.phase1_epochs and cfg.phase2_epochs
    result = train_classifier(smoke_settings, classify_workdir, "resnet50", verbose=0)

    client = tracking.client()
    history = client.get_metric_history(result["run_id"], "epoch_loss")
    assert sorted(m.step for m in history) == list(range(result["epochs"]))  # phase 2 continues
    assert result["epochs"] == cfg.phase1_epochs + cfg.phase2_epochs
    loaded = load_classifier(result["model_uri"])
    assert loaded.family == "resnet50" and loaded.image_size == cfg.image_size
    images = [img for _, _, img in test_images[:4]]
    assert loaded.predict(images).shape == (4, len(loaded.labels))
    assert loaded.embed(images).shape == (4, 16)
    assert loaded.predict_labels([img for _, _, img in test_images]) == result["test_predicted"]
    saved = json.loads((classify_workdir.metrics / "resnet50.json").read_text())
    assert saved["version"] == result["version"]
