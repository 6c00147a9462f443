"""The gate looks at slices: a candidate better overall but worse on one slice is refused,
and per-artist floors hold a model back. Real registered models, the real evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artflow.config import load_settings
from artflow.errors import GateFailed
from artflow.promote import promote

from .conftest import LABELS, SIZE, register_color_model

# Rec. 601 luma, as Pillow's convert("L") computes it: the grayscale slice keeps it intact.
LUMA = np.array([0.299, 0.587, 0.114], dtype="float32")


def luma_model():
    """Classifies by brightness alone, the same in colour and in grayscale. Red paintings
    (luma ~0.32) fall in the green interval, so it is right on 2/3 of the colour images and
    on 2/3 of their grayscale copies."""
    import keras
    from keras import layers

    k = 100.0
    weights = np.stack([k * LUMA, 0 * LUMA, -k * LUMA], axis=1)  # columns: LABELS order
    bias = np.array([-1.235 * k, -0.255 * k, 0.0], dtype="float32")  # cuts at 0.255, 0.98
    inputs = keras.Input((SIZE, SIZE, 3), dtype="float32", name="pixels")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    dense = layers.Dense(len(LABELS), name="logits")
    outputs = layers.Activation("softmax", dtype="float32", name="probs")(dense(x))
    dense.set_weights([weights.astype("float32"), bias])
    return keras.Model(inputs, outputs)


def register_luma_model(settings, name: str) -> str:
    from artflow.classify.io import register_classifier
    from artflow.registry import tracking

    with tracking.start_run("artflow-gate-tests", f"{name}-luma", settings):
        return register_classifier(luma_model(), LABELS, SIZE, "cnn", name=name).version


def test_better_overall_but_worse_in_grayscale_is_refused(color_workdir, model_name, tmp_path):
    settings = load_settings(profile="smoke", overrides={"gate": {"max_slice_drop": 0.1}})
    champion = register_luma_model(settings, model_name)
    assert promote(settings, color_workdir, model_name, champion).promoted
    candidate = register_color_model(settings, model_name)  # perfect in colour, lost in gray
    with pytest.raises(GateFailed, match=r"slice_vs_champion:grayscale"):
        promote(settings, color_workdir, model_name, candidate, report_dir=tmp_path)
    report = json.loads((tmp_path / f"{model_name}-v{candidate}.json").read_text())
    assert not report["promoted"] and "grayscale" in report["reason"]
    assert report["evaluations"]["candidate"]["accuracy"] == pytest.approx(1.0)
    assert report["evaluations"]["champion"]["accuracy"] == pytest.approx(2 / 3)
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert failed == {"slice_vs_champion:grayscale"}  # better on everything else
    slices = report["evaluations"]["candidate"]["slices"]
    assert set(slices) == {"grayscale", "low_resolution", "crop", "jpeg"}  # no artists.csv
    assert slices["grayscale"]["accuracy"] < 0.5 <= slices["jpeg"]["accuracy"]
    markdown = (tmp_path / f"{model_name}-v{candidate}.md").read_text()  # the KFP UI's report
    assert "slice_vs_champion:grayscale" in markdown
    gray = slices["grayscale"]["accuracy"]
    champion_gray = report["evaluations"]["champion"]["slices"]["grayscale"]["accuracy"]
    assert (
        f"| grayscale | {slices['grayscale']['n']} | {gray:.4g} | {champion_gray:.4g} |" in markdown
    )

    lenient = load_settings(profile="smoke", overrides={"gate": {"max_slice_drop": 0.5}})
    assert promote(lenient, color_workdir, model_name, candidate).promoted  # within 0.5


def test_artist_floor_refuses_a_first_model(color_workdir, model_name):
    settings = load_settings(
        profile="smoke",
        overrides={"gate": {"artist_min_f1": {"*": 0.5}, "slice_min_accuracy": {"nowhere": 0.1}}},
    )
    version = register_luma_model(settings, model_name)  # never right on Red_Painter
    with pytest.raises(GateFailed, match=r"f1:Red_Painter") as refused:
        promote(settings, color_workdir, model_name, version)
    assert "Green_Painter" not in str(refused.value)  # the artists it does tell apart pass
