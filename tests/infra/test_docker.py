"""Dockerfiles: hadolint-clean (and hadolint really fails on a bad one), non-root final
stage, every COPY source exists and passes the Dockerfile's own .dockerignore allow-list,
and the GPU image swaps exactly the lock's TensorFlow line. Docker itself is not needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.conftest import DOCKER, ROOT, WORKFLOWS, run, tool

DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile*") if p.suffix != ".dockerignore")
# Build contexts (docs/deploy.md): the repo root, except the MLflow server image.
CONTEXT = {"Dockerfile.mlflow": DOCKER}


def hadolint(*paths: Path):
    return run([tool("hadolint"), "--no-color", *map(str, paths)])


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_there_are_component_gpu_and_server_images() -> None:
    names = {p.name for p in DOCKERFILES}
    assert {"Dockerfile", "Dockerfile.gpu", "Dockerfile.mlflow"} <= names


def test_hadolint_passes() -> None:
    proc = hadolint(*DOCKERFILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("addition", "rule"),
    [
        ("RUN apt-get update && apt-get install -y curl", "DL3008"),  # unpinned apt package
        ("RUN pip install requests", "DL3013"),  # unpinned pip package
        ("FROM python:latest", "DL3007"),
    ],
)
def test_hadolint_fails_a_bad_dockerfile(addition: str, rule: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text((DOCKER / "Dockerfile").read_text() + f"\n{addition}\n")
    proc = hadolint(bad)
    assert proc.returncode != 0 and rule in proc.stdout, proc.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_non_root(path: Path) -> None:
    steps = instructions(path)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    users = [rest for word, rest in steps[last_from:] if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{path.name}: USER"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_pass_the_dockerignore(path: Path) -> None:
    context = CONTEXT.get(path.name, ROOT)
    ignore = path.with_name(path.name + ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, f"{path.name}.dockerignore must be an allow-list (start from '*')"
    for word, rest in instructions(path):
        if word != "COPY" or "--from=" in rest:
            continue
        *sources, _dest = rest.split()
        for src in sources:
            src = src.rstrip("/")
            assert (context / src).exists(), f"{path.name}: COPY {src}: not in the context"
            assert src in allowed, f"{path.name}: COPY {src} is excluded by the .dockerignore"


def test_gpu_image_replaces_exactly_the_locked_tensorflow() -> None:
    lock = (ROOT / "requirements-runtime.lock").read_text().splitlines()
    gpu = (DOCKER / "Dockerfile.gpu").read_text()
    pattern = re.search(r"grep -v '(\^[^']+)'", gpu)[1]
    dropped = [line for line in lock if re.match(pattern, line)]
    assert len(dropped) == 1 and dropped[0].startswith("tensorflow-cpu=="), dropped
    locked = dropped[0].split("==")[1].split(";")[0].strip()
    assert f"ARG TF_VERSION={locked}" in gpu, f"Dockerfile.gpu TF_VERSION must be {locked}"


def test_uv_is_the_same_version_everywhere() -> None:
    versions = set()
    for path in [*DOCKERFILES, *WORKFLOWS.glob("*.yml")]:
        versions |= set(re.findall(r'uv==([\d.]+)|UV_VERSION: "([\d.]+)"', path.read_text()))
    flat = {v for pair in versions for v in pair if v}
    assert len(flat) == 1, f"several uv versions: {flat}"
