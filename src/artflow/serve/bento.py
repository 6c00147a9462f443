"""`artflow bento build`: package the service with the promoted models inside it.

The promoted versions (classifier champion, the challenger when asked, and the style models'
champion, falling back to their challenger) are imported into BentoML's model store: one
BentoML model per registry version, holding only its `.keras` file (checked for pickles and
code first, artflow.registry.safe_load) and labelled with the registry name, version, run id
and data hash. The Bento references them by alias in its build file (`models:`), so a
container built from it serves those exact versions without reaching MLflow
(artflow.serve.models, source "bento"). The Bento's tag names the versions it carries; an
A/B deployment is one Bento carrying both (`--challenger`) or two Bentos.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from artflow.config import PROJECT_ROOT, Settings
from artflow.errors import ConfigError, ModelError
from artflow.registry import tracking
from artflow.serve.launch import bentoml_exe, bentoml_home
from artflow.serve.models import bento_alias, short_names, specs

log = logging.getLogger(__name__)

BENTOFILE = PROJECT_ROOT / "bentofile.yaml"


def promoted(with_challenger: bool) -> dict[str, tuple[str, Any]]:
    """slot key -> (alias, ModelVersion) of what the Bento should carry."""
    chosen: dict[str, tuple[str, Any]] = {}
    for key, (name, aliases, _loader) in specs().items():
        if key == f"classifier:{tracking.CHALLENGER}" and not with_challenger:
            continue
        for alias in aliases:
            mv = tracking.alias_version(name, alias)
            if mv is not None:
                chosen[key] = (alias, mv)
                break
    champion = f"classifier:{tracking.CHAMPION}"
    if champion not in chosen:
        raise ModelError(
            f"{tracking.CLASSIFIER} has no champion in {tracking.tracking_uri()}",
            "train and promote a classifier first (artflow train classifier; artflow promote)",
        )
    challenger = chosen.get(f"classifier:{tracking.CHALLENGER}")
    if with_challenger and challenger is None:
        raise ModelError(
            f"--challenger given but {tracking.CLASSIFIER} has no challenger",
            "register one (artflow train classifier) or build without --challenger",
        )
    if challenger and str(challenger[1].version) == str(chosen[champion][1].version):
        raise ModelError(
            f"the challenger is the champion (v{challenger[1].version}): no A/B test to carry",
            "build without --challenger",
        )
    return chosen


def _model_tag(mv: Any) -> str:
    run = (mv.run_id or "norun")[:8].lower()
    return f"{mv.name}:v{mv.version}-{run}"


def import_model(store: Any, alias: str, mv: Any) -> Any:
    """One registry version as a BentoML model (reused when that tag is already stored)."""
    import bentoml
    from bentoml.exceptions import NotFound

    from artflow.registry.safe_load import checked_keras_file, download

    tag = _model_tag(mv)
    try:
        return store.get(tag)
    except NotFound:
        pass
    uri = tracking.model_uri(mv.name, str(mv.version))
    source = checked_keras_file(download(uri, tracking.tracking_uri()), uri)
    run_tags = _run_tags(mv.run_id)
    labels = {
        "registry_name": mv.name,
        "registry_version": str(mv.version),
        "registry_alias": alias,
        "run_id": mv.run_id or "",
        "data_hash": run_tags.get("artflow.data_hash", "unknown"),
    }
    meta = {
        "name": mv.name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "file": "model.keras",
        "tags": {k: v for k, v in (mv.tags or {}).items() if not k.startswith("mlflow.")},
    }
    with bentoml.models.create(tag, labels=labels, metadata=meta, _model_store=store) as model:
        shutil.copyfile(source, model.path_of("model.keras"))
    log.info("imported %s v%s as BentoML model %s", mv.name, mv.version, tag)
    return store.get(tag)


def _run_tags(run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    try:
        return dict(tracking.client().get_run(run_id).data.tags)
    except Exception:  # a deleted run: the version still serves, its lineage is just unknown
        return {}


def default_version(chosen: dict[str, tuple[str, Any]]) -> str:
    """A Bento version naming the classifier versions it carries, e.g. `clf-v2-ab-v3-<time>`."""
    champion = chosen[f"classifier:{tracking.CHAMPION}"][1].version
    parts = [f"clf-v{champion}"]
    if (challenger := chosen.get(f"classifier:{tracking.CHALLENGER}")) is not None:
        parts.append(f"ab-v{challenger[1].version}")
    parts.append(dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"))
    return "-".join(parts)


def build_file(models: dict[str, Any], folder: Path) -> Path:
    """bentofile.yaml plus a `models:` entry (tag and alias) per carried model."""
    config = yaml.safe_load(BENTOFILE.read_text(encoding="utf-8"))
    config["models"] = [{"tag": str(m.tag), "alias": bento_alias(k)} for k, m in models.items()]
    path = folder / "bentofile.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_bento(
    settings: Settings, version: str | None = None, with_challenger: bool = False
) -> dict[str, Any]:
    """Import the promoted models, run `bentoml build` with them; returns tag and labels."""
    from bentoml._internal.models.model import ModelStore

    home = bentoml_home()
    if home.resolve().is_relative_to(PROJECT_ROOT.resolve()):
        raise ConfigError(
            f"BENTOML_HOME {home} is inside the project",
            "use a folder outside it (the build would copy its own store), e.g. ~/bentoml",
        )
    if shutil.which("uv") is None:
        raise ConfigError("bentoml build needs `uv` on PATH", "install it: pipx install uv")
    chosen = promoted(with_challenger)
    # An explicit store under `home`: BentoML fixes its default store when first imported.
    store = ModelStore(home / "models")
    models = {key: import_model(store, alias, mv) for key, (alias, mv) in chosen.items()}
    labels = {
        **{f"{short_names()[mv.name]}.{alias}": str(mv.version) for alias, mv in chosen.values()},
        "profile": settings.profile,
        "git_commit": tracking.git_commit(),
    }
    version = version or default_version(chosen)
    with tempfile.TemporaryDirectory(prefix="artflow-bento-") as tmp:
        cmd = [bentoml_exe(), "build", str(PROJECT_ROOT), "-f", str(build_file(models, Path(tmp)))]
        cmd += ["-o", "tag", "--version", version]
        for key, value in labels.items():
            cmd += ["--label", f"{key}={value}"]
        env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ConfigError("bentoml build failed:\n  " + "\n  ".join(tail), "see the lines above")
    return {
        "tag": _tag(proc.stdout),
        "labels": labels,
        "models": {key: str(m.tag) for key, m in models.items()},
        "bentoml_home": str(home),
    }


def _tag(stdout: str) -> str:
    found = re.findall(r"__tag__:(\S+)|(artflow:[\w.-]+)", stdout)
    for explicit, plain in reversed(found):
        if explicit or plain:
            return explicit or plain
    raise ConfigError(f"could not read the Bento tag from bentoml's output: {stdout[-300:]!r}")


def bento_path(tag: str, home: Path | None = None) -> Path:
    name, _, ver = tag.partition(":")
    return (home or bentoml_home()) / "bentos" / name / ver
