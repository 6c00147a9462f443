"""The AdaIN stylizer: trained from the CLI, registered, reloaded, used from the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artflow.cli import run
from tests.style.helpers import assert_stylized, falls

pytestmark = pytest.mark.slow


def test_training_registers_a_challenger_and_losses_fall(trained_stylizer) -> None:
    from artflow import tracking

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
    from artflow.style.inference import load_stylizer
    from artflow.train.stylizer import sample_paths

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
