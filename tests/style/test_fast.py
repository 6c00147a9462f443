"""The AdaIN stylizer: trained from the CLI, registered, reloaded, used from the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from artflow.cli import run
from tests.style.helpers import assert_stylized, falls

pytestmark = pytest.mark.slow


def test_training_registers_a_challenger_and_losses_fall(trained_stylizer) -> None:
    from artflow.registry import tracking

    assert trained_stylizer["model_name"] == tracking.STYLIZER
    mv = tracking.alias_version(tracking.STYLIZER, tracking.CHALLENGER)
    assert mv is not None and str(mv.version) == trained_stylizer["version"]
    history = tracking.client().get_metric_history(trained_stylizer["run_id"], "train_loss")
    losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(losses) == 16 and falls(losses)
    metrics = trained_stylizer["metrics"]
    assert metrics["style_loss"] < metrics["content_style_loss"]
    assert {"content_loss", "ssim"} <= set(metrics)
    run_metrics = tracking.client().get_run(trained_stylizer["run_id"]).data.metrics
    assert run_metrics["style_loss"] == pytest.approx(metrics["style_loss"])


def test_fast_cli_stylizes(trained_stylizer, style_images, style_params, tmp_path) -> None:
    out = tmp_path / "fast.png"
    args = ["stylize", "--method", "fast", "--params", str(style_params)]
    files = ["--content", str(style_images["content"]), "--style", str(style_images["style"])]
    assert run([*args, *files, "--out", str(out)]) == 0
    assert_stylized(out, style_images["content"], style_images["style"])


def test_registered_version_reproduces_training_sample(trained_stylizer, style_workdir) -> None:
    from artflow.imageio import load_rgb
    from artflow.style.adain.train import sample_paths
    from artflow.style.inference import load_stylizer

    model = load_stylizer(f"models:/artflow-style-transfer/{trained_stylizer['version']}")
    paths = sample_paths(style_workdir)
    content, style = load_rgb(paths["content"]), load_rgb(paths["style"])
    out = model.stylize(content, style)
    assert np.abs(out.astype(int) - load_rgb(paths["output"])).max() <= 1
    # The strength control reaches the network: alpha 0 (content statistics) != alpha 1.
    weak = model.stylize(content, style, strength=0.0).astype(float)
    assert np.abs(weak - model.stylize(content, style, strength=1.0)).mean() > 1.0


def test_fast_tiny_content_and_unknown_model(trained_stylizer, style_images, style_params, capsys):
    base = ["stylize", "--method", "fast", "--params", str(style_params), "--out", "/tmp/x.png"]
    tiny = ["--content", str(style_images["tiny"]), "--style", str(style_images["style"])]
    assert run([*base, *tiny]) == 2
    assert "too small" in capsys.readouterr().err
    ok = ["--content", str(style_images["content"]), "--style", str(style_images["style"])]
    assert run([*base, *ok, "--model-uri", "999"]) == 2
    assert "no version 999" in capsys.readouterr().err
    assert not Path("/tmp/x.png").exists()


def test_fast_stylizer_is_taught_by_the_vgg19_champion_and_gated_against_it(
    trained_stylizer, style_workdir, style_settings, style_params
) -> None:
    """`artflow train stylizer --fast`: the thin stylizer (stylizer.fast) learns from the
    registered VGG19 champion, and the style gate compares it with that champion (content
    loss, Gram style loss, SSIM on the held-out pairs); the champion moves only on a pass."""
    import json

    from artflow.promote import promote
    from artflow.registry import tracking
    from artflow.style.inference import load_stylizer

    name, vgg = tracking.STYLIZER, trained_stylizer["version"]
    before = tracking.alias_version(name, tracking.CHAMPION)
    tracking.set_alias(name, tracking.CHAMPION, vgg)  # the VGG19 stylizer is the champion
    try:
        # 40 steps (the smoke profile's 20 log too few noisy batch losses to show a trend).
        params = style_params.parent / "params-fast.yaml"
        raw = yaml.safe_load(style_params.read_text())
        raw["stylizer"]["fast"] = {**raw["stylizer"]["fast"], "steps": 40}
        params.write_text(yaml.safe_dump(raw))
        workdir = ["--workdir", str(style_workdir.root), "--params", str(params)]
        assert run(["train", "stylizer", "--fast", *workdir]) == 0
        fast = json.loads((style_workdir.metrics / "fast_stylizer.json").read_text())
        tags = tracking.model_version(name, fast["version"]).tags
        assert tags["teacher_version"] == vgg and tags["encoder"] == "distilled"
        history = tracking.client().get_metric_history(fast["run_id"], "train_teacher")
        teacher_losses = [m.value for m in sorted(history, key=lambda m: m.step)]
        assert falls(teacher_losses)  # it learns the teacher's outputs
        decision = promote(style_settings, style_workdir, name, fast["version"], strict=False)
        compared = {c.name for c in decision.checks}
        assert {f"{k}_vs_champion" for k in ("content_loss", "style_loss", "ssim")} <= compared
        champion = str(tracking.alias_version(name, tracking.CHAMPION).version)
        assert decision.promoted == decision.passed
        assert champion == (fast["version"] if decision.passed else vgg)
        # What got registered is the thin network: 1/4 of VGG19's relu4_1 channels.
        model = load_stylizer(fast["version"])
        assert model.model.get_layer("encoder").outputs[-1].shape[-1] == 128
    finally:
        if before is not None:
            tracking.set_alias(name, tracking.CHAMPION, before.version)
        else:
            tracking.client().delete_registered_model_alias(name, tracking.CHAMPION)


def test_channel_selection_copies_a_network_and_calibrates_a_thinner_one() -> None:
    """The fast stylizer's start: a selection as wide as its source is the source itself; a
    thinner decoder gets the source's per-channel output mean on the calibration batch."""
    import keras
    import tensorflow as tf

    from artflow.style.adain.networks import build_decoder, select_channels

    keras.utils.set_random_seed(0)
    wide, same = build_decoder(0.5, 64), build_decoder(0.5, 64)
    x = tf.random.uniform((2, 4, 4, 64), 0.0, 2.0, seed=3)
    select_channels(wide, same, x, x)
    assert np.allclose(np.asarray(same(x)), np.asarray(wide(x)), atol=1e-3)
    keep = np.arange(0, 64, 2)  # the thin decoder reads half of the features
    thin = build_decoder(0.25, 32)
    select_channels(wide, thin, x, tf.gather(x, keep, axis=-1), keep)
    want = np.asarray(wide(x)).mean(axis=(0, 1, 2))
    assert np.allclose(
        np.asarray(thin(tf.gather(x, keep, axis=-1))).mean(axis=(0, 1, 2)), want, atol=0.5
    )
