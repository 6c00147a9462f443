"""`artflow bento build`: package the service with labels naming the models it was built for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from artflow import tracking
from artflow.config import PROJECT_ROOT, Settings
from artflow.errors import ConfigError, ModelError
from artflow.serve.launch import bentoml_exe, bentoml_home

BENTOFILE = PROJECT_ROOT / "bentofile.yaml"
MODELS = {
    "classifier": tracking.CLASSIFIER,
    "stylizer": tracking.STYLIZER,
    "monet": tracking.CYCLEGAN,
}


def model_labels() -> dict[str, str]:
    """`<model>.<alias>` -> version for every alias the service would load right now."""
    labels: dict[str, str] = {}
    for short, name in MODELS.items():
        for alias in (tracking.CHAMPION, tracking.CHALLENGER):
            mv = tracking.alias_version(name, alias)
            if mv is not None:
                labels[f"{short}.{alias}"] = str(mv.version)
    if "classifier.champion" not in labels:
        raise ModelError(
            f"{tracking.CLASSIFIER} has no champion in {tracking.tracking_uri()}",
            "train and promote a classifier first (artflow train classifier; artflow promote)",
        )
    return labels


def build_bento(settings: Settings, version: str | None = None) -> dict[str, Any]:
    """Run `bentoml build` in the project with the model labels; returns tag and labels."""
    home = bentoml_home()
    if home.resolve().is_relative_to(PROJECT_ROOT.resolve()):
        raise ConfigError(
            f"BENTOML_HOME {home} is inside the project",
            "use a folder outside it (the build would copy its own store), e.g. ~/bentoml",
        )
    if shutil.which("uv") is None:
        raise ConfigError("bentoml build needs `uv` on PATH", "install it: pipx install uv")
    labels = {**model_labels(), "profile": settings.profile, "git_commit": tracking.git_commit()}
    cmd = [bentoml_exe(), "build", "-f", str(BENTOFILE), "-o", "tag"]
    if version:
        cmd += ["--version", version]
    for key, value in labels.items():
        cmd += ["--label", f"{key}={value}"]
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ConfigError("bentoml build failed:\n  " + "\n  ".join(tail), "see the lines above")
    tag = _tag(proc.stdout)
    return {"tag": tag, "labels": labels, "bentoml_home": str(home)}


def _tag(stdout: str) -> str:
    found = re.findall(r"__tag__:(\S+)|(artflow:[\w.-]+)", stdout)
    for explicit, plain in reversed(found):
        if explicit or plain:
            return explicit or plain
    raise ConfigError(f"could not read the Bento tag from bentoml's output: {stdout[-300:]!r}")


def bento_path(tag: str, home: Path | None = None) -> Path:
    name, _, ver = tag.partition(":")
    return (home or bentoml_home()) / "bentos" / name / ver
