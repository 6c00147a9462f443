"""Gatys NST from the CLI: output size, visible change, lower style loss, tracking, search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artflow.cli import run
from tests.style.helpers import assert_stylized


def _latest_run(name: str):
    import mlflow

    from artflow.registry import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    runs = mlflow.search_runs(
        experiment_names=["artflow-style"],
        filter_string=f"attributes.run_name = '{name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    assert runs, f"no run named {name}"
    return runs[0]


def test_gatys_cli_stylizes_and_tracks(style_images, style_params: Path, tmp_path: Path) -> None:
    from artflow.registry import tracking

    out = tmp_path / "gatys.jpg"
    args = ["stylize", "--method", "gatys", "--backbone", "vgg19", "--params", str(style_params)]
    files = ["--content", str(style_images["content"]), "--style", str(style_images["style"])]
    assert run([*args, *files, "--out", str(out)]) == 0
    assert_stylized(out, style_images["content"], style_images["style"])
    assert out.with_suffix(".loss.png").stat().st_size > 0

    found = _latest_run("gatys")
    assert found.data.params["nst.backbone"] == "vgg19"
    assert {"style_loss", "content_loss", "ssim"} <= set(found.data.metrics)
    history = tracking.client().get_metric_history(found.info.run_id, "loss_total")
    totals = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(totals) == 6
    # Step 0 starts at the content image (no content loss yet); from there the loss falls.
    assert np.polyfit(np.arange(len(totals) - 1), totals[1:], 1)[0] < 0
    assert totals[-1] < totals[1]
    artifacts = {a.path for a in tracking.client().list_artifacts(found.info.run_id, "images")}
    assert {"images/content.png", "images/style.png", "images/result.png"} <= artifacts


@pytest.mark.slow
def test_gatys_resnet50_keeps_content_size(style_images, style_settings) -> None:
    from artflow.imageio import load_rgb
    from artflow.style.inference import stylize_gatys

    content, style = load_rgb(style_images["content"]), load_rgb(style_images["style"])
    out = stylize_gatys(content, style, style_settings.nst, steps=2, backbone="resnet50")
    assert out.shape == content.shape
    assert np.abs(out.astype(float) - content).mean() > 0.5


def test_gatys_search_picks_lowest_fixed_cost(style_images, style_params: Path, tmp_path) -> None:
    from artflow.registry import tracking

    out = tmp_path / "best.png"
    args = [
        "stylize",
        "--method",
        "gatys",
        "--search",
        "--steps",
        "3",
        "--params",
        str(style_params),
    ]
    files = ["--content", str(style_images["content"]), "--style", str(style_images["style"])]
    assert run([*args, *files, "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".search.json").read_text())
    costs = [t["fixed_cost"] for t in report["trials"]]
    assert len(costs) == 2 and report["best"]["fixed_cost"] == min(costs)
    assert out.is_file() and not list(tmp_path.glob("best.trial*"))
    parent = _latest_run("gatys-search")
    for trial in report["trials"]:
        child = tracking.client().get_run(trial["run_id"])
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert "fixed_cost" in child.data.metrics


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("not_image", [], "not an image"),
        ("tiny", [], "too small"),
        ("content", ["--weights", "/no/such/weights.h5"], "weights file not found"),
    ],
)
def test_gatys_bad_input_is_one_clear_error(
    style_images, style_params, tmp_path, capsys, content, extra, message
) -> None:
    out = tmp_path / "never.png"
    args = ["stylize", "--method", "gatys", "--params", str(style_params), *extra]
    files = ["--content", str(style_images[content]), "--style", str(style_images["style"])]
    assert run([*args, *files, "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_style_path_not_an_image(style_images, style_params, tmp_path, capsys) -> None:
    args = ["stylize", "--method", "fast", "--params", str(style_params)]
    files = ["--content", str(style_images["content"]), "--style", str(style_images["not_image"])]
    assert run([*args, *files, "--out", str(tmp_path / "x.png")]) == 2
    assert "not an image" in capsys.readouterr().err
