"""ResNet50 transfer at a tiny size (weights none): fine-tuning runs and the model registers.

Tracing a ResNet50 training step costs about a CPU-minute whatever the image size, so the test
runs phase 2 only (the frozen-base fine-tuning, the path with more logic: freezing, recompiling,
epoch offsets); phase 1 is the same `fit` as the CNN's. The smoke profile (and so the demo)
does the same; the default and full profiles run both phases.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from artflow.registry import tracking

pytestmark = pytest.mark.slow


def test_resnet50_fine_tunes_and_registers(tiny_workdir) -> None:
    from artflow.classify.io import load_classifier
    from artflow.classify.train import train_classifier
    from artflow.config import load_settings
    from artflow.imageio import load_rgb

    settings = load_settings(profile="smoke", overrides={"resnet": {"phase1_epochs": 0}})
    cfg = settings.resnet
    assert cfg.weights == "none" and cfg.phase2_epochs == 1
    result = train_classifier(settings, tiny_workdir, "resnet50", verbose=0)

    client = tracking.client()
    history = client.get_metric_history(result["run_id"], "epoch_loss")
    assert [m.step for m in history] == [0] and result["epochs"] == 1
    trainable = client.get_run(result["run_id"]).data.params["phase2_trainable_base_layers"]
    assert 0 < int(trainable) <= cfg.unfreeze_top_layers
    loaded = load_classifier(result["model_uri"])
    assert loaded.family == "resnet50" and loaded.image_size == cfg.image_size
    frame = pd.read_csv(tiny_workdir.split_csv("test"))
    images = [load_rgb(p) for p in frame["path"]]
    assert loaded.predict(images).shape == (len(images), len(loaded.labels))
    assert loaded.embed(images[:3]).shape == (3, 16)
    assert loaded.predict_labels(images) == result["test_predicted"]
    saved = json.loads((tiny_workdir.metrics / "resnet50.json").read_text())
    assert saved["version"] == result["version"]
