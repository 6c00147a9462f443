"""Style fixtures: tiny settings as a params file (for the CLI), a writable workdir copy,
demo content/style images and the two trained style models (trained once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

# Smaller than the smoke profile: every test here runs on 2 shared CPU cores.
OVERRIDES = {
    "nst": {"image_size": 48, "steps": 6, "search_trials": 2},
    "stylizer": {"image_size": 32, "batch_size": 2, "steps": 16},
    "cyclegan": {
        "image_size": 32,
        "res_blocks": 1,
        "filters": 8,
        "epochs": 2,
        "steps_per_epoch": 3,
        "checkpoint_every": 2,
    },
}
INTERRUPT_AT = 5  # the first CycleGAN run is "killed" after this step (last checkpoint: 4)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="session")
def style_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """params.yaml + smoke overlay + OVERRIDES in one file, for `artflow ... --params`."""
    from artflow.config import DEFAULT_PARAMS, profile_path

    raw = yaml.safe_load(DEFAULT_PARAMS.read_text())
    raw = _merge(_merge(raw, yaml.safe_load(profile_path("smoke").read_text())), OVERRIDES)
    path = tmp_path_factory.mktemp("style_params") / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def style_settings(style_params: Path):
    from artflow.config import load_settings

    return load_settings(style_params)


@pytest.fixture(scope="session")
def style_workdir(demo_workdir, tmp_path_factory: pytest.TempPathFactory):
    """A writable copy of the demo workdir (training writes models/ and metrics/)."""
    from artflow.data.layout import Workdir

    root = tmp_path_factory.mktemp("style_wd") / "wd"
    shutil.copytree(demo_workdir.root, root)
    return Workdir.at(root)


@pytest.fixture(scope="session")
def style_images(style_workdir, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A non-square demo photo as content (72x56), a Monet painting as style, bad inputs."""
    from PIL import Image

    from artflow.style.data import style_images as listed

    out = tmp_path_factory.mktemp("style_images")
    photo = Image.open(listed(style_workdir, "test", "photo")[0]).convert("RGB")
    photo.resize((72, 56)).save(out / "content.png")
    shutil.copy(listed(style_workdir, "train", "monet")[0], out / "style.jpg")
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(out / "tiny.png")
    (out / "notes.jpg").write_text("this is not an image")
    return {
        "content": out / "content.png",
        "style": out / "style.jpg",
        "tiny": out / "tiny.png",
        "not_image": out / "notes.jpg",
        "dir": out,
    }


@pytest.fixture(scope="session")
def trained_stylizer(style_workdir, style_params: Path) -> dict[str, Any]:
    """`artflow train stylizer` once; returns metrics/stylizer.json."""
    import json

    from artflow.cli import run

    code = run(
        ["train", "stylizer", "--workdir", str(style_workdir.root), "--params", str(style_params)]
    )
    assert code == 0
    return json.loads((style_workdir.metrics / "stylizer.json").read_text())


@pytest.fixture(scope="session")
def trained_cyclegan(style_workdir, style_settings, style_params: Path) -> dict[str, Any]:
    """A CycleGAN run killed after INTERRUPT_AT steps, then `artflow train cyclegan --resume`."""
    import json

    from artflow.cli import run
    from artflow.style.cyclegan.train import train_cyclegan

    g_losses: list[float] = []

    def kill(step: int, losses: dict[str, float]) -> None:
        g_losses.append(losses["g_loss"])
        if step == INTERRUPT_AT:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_cyclegan(style_settings, style_workdir, on_step=kill)
    ckpts = style_workdir.models / "cyclegan" / "checkpoints"
    after_kill = sorted(p.name for p in ckpts.glob("ckpt-*.index"))
    code = run(
        [
            "train",
            "cyclegan",
            "--workdir",
            str(style_workdir.root),
            "--params",
            str(style_params),
            "--resume",
        ]
    )
    assert code == 0
    summary = json.loads((style_workdir.metrics / "cyclegan.json").read_text())
    return {**summary, "after_kill": after_kill, "killed_run_g_losses": g_losses}
