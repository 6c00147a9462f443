"""The Monet CycleGAN: interrupted and resumed training, registration, `stylize --method monet`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artflow.cli import run
from tests.style.conftest import INTERRUPT_AT
from tests.style.helpers import assert_stylized, falls

pytestmark = pytest.mark.slow


def test_resume_continues_from_the_saved_step(trained_cyclegan, style_workdir) -> None:
    from artflow.registry import tracking

    # Killed after step 5: the last checkpoint is step 4 (checkpoint_every 2).
    assert trained_cyclegan["after_kill"] == ["ckpt-2.index", "ckpt-4.index"]
    assert trained_cyclegan["start_step"] == INTERRUPT_AT - 1
    assert trained_cyclegan["step"] == 6  # 2 epochs x 3 steps, none repeated or lost
    params = tracking.client().get_run(trained_cyclegan["run_id"]).data.params
    assert params["start_step"] == "4"
    ckpts = style_workdir.models / "cyclegan" / "checkpoints"
    assert (ckpts / "ckpt-6.index").is_file()
    mv = tracking.alias_version(tracking.CYCLEGAN, tracking.CHALLENGER)
    assert str(mv.version) == trained_cyclegan["version"] and mv.tags["step"] == "6"


def test_losses_and_metrics_are_logged(trained_cyclegan, style_workdir) -> None:
    from artflow.registry import tracking

    client = tracking.client()
    # The resumed run finished epoch 2 (steps 5-6): one epoch mean and one sample grid.
    g_loss = client.get_metric_history(trained_cyclegan["run_id"], "g_loss")
    assert [m.step for m in g_loss] == [1]
    samples = client.list_artifacts(trained_cyclegan["run_id"], "samples")
    assert [a.path for a in samples] == ["samples/epoch_002.png"]
    metrics = trained_cyclegan["metrics"]
    assert 0.0 < metrics["cycle_l1"] < 1.0 and {"style_loss", "ssim"} <= set(metrics)
    assert json.loads(Path(style_workdir.metrics / "cyclegan.json").read_text())["step"] == 6


def test_generator_loss_falls_with_a_fixed_seed(trained_cyclegan) -> None:
    losses = trained_cyclegan["killed_run_g_losses"]
    assert len(losses) == INTERRUPT_AT and falls(losses), losses


def test_monet_cli_translates(trained_cyclegan, style_images, style_params, tmp_path) -> None:
    out = tmp_path / "monet.jpg"
    args = ["stylize", "--method", "monet", "--params", str(style_params)]
    assert run([*args, "--content", str(style_images["content"]), "--out", str(out)]) == 0
    assert_stylized(out, style_images["content"], style_images["style"], check_style_loss=False)


def test_registered_generator_reproduces_training_sample(trained_cyclegan, style_workdir) -> None:
    from artflow.imageio import load_rgb
    from artflow.style.inference import load_monet

    model = load_monet(trained_cyclegan["version"])
    export = style_workdir.models / "cyclegan" / "export"
    out = model.translate(load_rgb(export / "sample_photo.png"))
    assert np.abs(out.astype(int) - load_rgb(export / "sample_monet.png")).max() <= 1
    # the Monet set's statistics travel with the version (its tag) and load with it; the
    # candidate's own monet_distance on the held-out photos is among the gate's metrics
    assert model.reference is not None and len(model.reference["mean"]) == 1472
    assert model.reference["n"] >= 1 and trained_cyclegan["metrics"]["monet_distance"] > 0


def test_resume_with_other_settings_is_a_clear_error(
    trained_cyclegan, style_workdir, style_settings
):
    from artflow.errors import ModelError
    from artflow.style.cyclegan.train import train_cyclegan

    wider = style_settings.model_copy(
        update={"cyclegan": style_settings.cyclegan.model_copy(update={"filters": 12})}
    )
    with pytest.raises(ModelError, match="does not match the cyclegan settings"):
        train_cyclegan(wider, style_workdir, resume=True)
    assert (style_workdir.models / "cyclegan" / "checkpoints" / "ckpt-6.index").is_file()
