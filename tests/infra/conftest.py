"""Fixtures for the static infrastructure checks: tool paths, parsed workflows, rendered
Kubernetes overlays. Nothing here needs a network, a cluster or Docker."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
DOCKER = ROOT / "infra" / "docker"
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("local", "production")
# The interpreter's own bin/ first: the linters are wheels of the dev extra in the lock.
TOOL_DIRS = [Path(sys.executable).parent, ROOT / ".venv" / "bin"]


def tool(name: str) -> str:
    """Path of a linter that the lock installs; a missing one is a broken install, not a skip."""
    for folder in TOOL_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: `make install` installs it from requirements.lock")
    return found


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays here")
    return found


def run(
    cmd: list[str], cwd: Path | None = None, timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def load_workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def render(kustomization_dir: Path) -> list[dict[str, Any]]:
    proc = run([kubectl(), "kustomize", str(kustomization_dir)])
    assert proc.returncode == 0, f"kubectl kustomize {kustomization_dir} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def workflows() -> dict[str, dict[str, Any]]:
    files = workflow_files()
    assert files, f"no workflows in {WORKFLOWS}"
    return {p.name: load_workflow(p) for p in files}


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """overlay name -> its rendered objects (kubectl's built-in kustomize)."""
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def rendered_secrets(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """infra/k8s/secrets rendered with its *.example templates (env and credentials files)
    standing in for the uncommitted files: the Secret names and keys the manifests may use."""
    work = tmp_path_factory.mktemp("secrets") / "secrets"
    shutil.copytree(K8S / "secrets", work)
    for example in work.glob("*.example"):
        lines = [
            line if line.startswith("#") else re.sub(r"=\s*$", "=placeholder", line)
            for line in example.read_text().splitlines()
        ]
        example.with_name(example.name.removesuffix(".example")).write_text("\n".join(lines))
    return render(work)
