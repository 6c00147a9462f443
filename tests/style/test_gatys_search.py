"""The style pipeline's Gatys stage: a tracked search per backbone, the winner registered and
used by the CLI; the study's presets are each backbone's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from artflow.cli import run


def test_the_studys_presets_are_each_backbones_defaults() -> None:
    from artflow.config import load_settings

    nst = load_settings(profile="default").nst
    vgg, resnet = nst.for_backbone("vgg19"), nst.for_backbone("resnet50")
    assert (vgg.learning_rate, vgg.style_weight, vgg.content_weight) == (2.02, 0.036, 0.036)
    assert vgg.style_layer_weights == [1.26, 3.51, 0.05, 0.18, 0.04]
    assert (resnet.learning_rate, resnet.style_weight, resnet.content_weight) == (1.51, 0.06, 0.021)
    assert resnet.backbone == "resnet50" and vgg.pixel_range == resnet.pixel_range == 255.0
    # applied once: a later explicit change survives a second call
    assert vgg.model_copy(update={"learning_rate": 1.0}).for_backbone().learning_rate == 1.0


@pytest.mark.slow
def test_search_registers_each_backbones_best_and_the_cli_uses_it(
    style_workdir, style_settings, style_images, style_params: Path, tmp_path: Path
) -> None:
    import json

    from artflow import stages
    from artflow.registry import tracking
    from artflow.style.gatys import settings as nst_settings
    from artflow.style.gatys.runs import EXPERIMENT

    # Two trials per backbone (its preset and one sampled candidate), one step each: short
    # runs are eager (no trace), so this stays affordable.
    nst = style_settings.nst.model_copy(update={"steps": 1, "search_images": 1, "search_trials": 2})
    settings = style_settings.model_copy(update={"nst": nst})
    result = stages.gatys_search(settings, style_workdir)  # the style pipeline's step

    client = tracking.client()
    exp = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = {}
    for backbone in ("vgg19", "resnet50"):
        version = result["versions"][backbone]
        mv = client.get_model_version(nst_settings.REGISTERED, version)
        assert mv.tags["backbone"] == backbone
        runs[backbone] = mv.run_id
        children = client.search_runs(
            [exp], filter_string=f"tags.mlflow.parentRunId = '{mv.run_id}'"
        )
        assert len(children) == nst.search_trials  # every trial is a child run
        costs = [c.data.metrics["fixed_cost"] for c in children]
        assert result["metrics"][f"{backbone}_best_fixed_cost"] == pytest.approx(min(costs))
        chosen = nst_settings.resolve(settings.nst, backbone)
        assert chosen.version == version and chosen.cfg.backbone == backbone
    saved = json.loads((style_workdir.metrics / "gatys_search.json").read_text())
    assert set(saved) == {"vgg19", "resnet50"}

    # A newer registered version (as the next pipeline run would leave) is what the CLI uses.
    preset = settings.nst.for_backbone("vgg19")
    newer = preset.model_copy(update={"learning_rate": round(preset.learning_rate * 0.9, 6)})
    version = nst_settings.register_best(newer, runs["vgg19"], 0.0)
    out = tmp_path / "gatys.png"
    args = ["stylize", "--method", "gatys", "--backbone", "vgg19", "--steps", "1"]
    files = ["--content", str(style_images["content"]), "--style", str(style_images["style"])]
    assert run([*args, *files, "--params", str(style_params), "--out", str(out)]) == 0
    latest = client.search_runs(
        [exp], "attributes.run_name = 'gatys'", order_by=["attributes.start_time DESC"]
    )[0]
    assert float(latest.data.params["nst.learning_rate"]) == newer.learning_rate
    assert nst_settings.resolve(settings.nst, "vgg19").version == version
