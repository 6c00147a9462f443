"""Security scanners in `make test`: checkov over the rendered Kubernetes overlays and the
Dockerfiles, zizmor over the GitHub Actions workflows. A finding fails, unless suppressed
inline with its reason (a `checkov.io/skipN: CHECK=reason` annotation on the resource, a
`# checkov:skip=CHECK: reason` line in a Dockerfile, a `# zizmor: ignore[rule] reason`
comment on the flagged line). Each scanner runs once, over the real files and one that is
broken on purpose, which must fail with the findings named here.

The tools live in their own environment (.venv-scan, from requirements-scan.lock): checkov
pins versions (networkx<2.7, among others) that the project's lock cannot take."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import DOCKER, K8S, OVERLAYS, ROOT, WORKFLOWS, kubectl, run

SCAN_BIN = ROOT / ".venv-scan" / "bin"
DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile*") if p.suffix != ".dockerignore")
BROKEN_POD = {  # what the hardening rules forbid, in one Deployment
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "broken", "namespace": "artflow"},
    "spec": {
        "selector": {"matchLabels": {"app": "broken"}},
        "template": {
            "metadata": {"labels": {"app": "broken"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "python:latest",
                        "env": [
                            {
                                "name": "TOKEN",
                                "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                            }
                        ],
                    }
                ]
            },
        },
    },
}
BROKEN_EXPECTED = {"CKV_K8S_35", "CKV_K8S_22", "CKV_K8S_38", "CKV_K8S_14", "CKV_K8S_20"}


def scanner(name: str) -> str:
    path = SCAN_BIN / name
    if not path.is_file():
        pytest.fail(
            f"{name} is missing: `make install` creates .venv-scan from requirements-scan.lock"
        )
    return str(path)


def checkov(paths: list[Path]) -> list[dict[str, Any]]:
    args = [scanner("checkov"), "--skip-download", "--framework", "kubernetes", "dockerfile"]
    # --quiet: failed checks only (the passed ones make the JSON ten times the size)
    args += ["-o", "json", "--quiet", "--compact"]
    for path in paths:
        args += ["-f", str(path)]
    # No worker processes: on two busy cores forking the runners costs more than it saves.
    env = {**os.environ, "CHECKOV_PARALLELIZATION_TYPE": "none"}
    proc = run(args, timeout=120, env=env)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """One checkov run: each overlay rendered, the Dockerfiles, and the broken Deployment."""
    kubectl()
    work = tmp_path_factory.mktemp("checkov")
    paths = []
    for overlay in OVERLAYS:
        proc = run([kubectl(), "kustomize", str(K8S / "overlays" / overlay)])
        assert proc.returncode == 0, proc.stderr
        (work / f"{overlay}.yaml").write_text(proc.stdout)
        paths.append(work / f"{overlay}.yaml")
    (work / "broken.yaml").write_text(yaml.safe_dump(BROKEN_POD))
    failed: dict[str, list[dict]] = {}
    for result in checkov([*paths, *DOCKERFILES, work / "broken.yaml"]):
        for check in result["results"].get("failed_checks", []):
            failed.setdefault(Path(check["file_path"]).name, []).append(check)
    return failed


def test_checkov_passes_the_manifests_and_dockerfiles(checkov_report) -> None:
    real = {
        name: checks
        for name, checks in checkov_report.items()
        if name not in ("broken.yaml", "skipped")
    }
    found = [
        f"{name}: {c['check_id']} {c['check_name']} ({c['resource']})"
        for name, cs in real.items()
        for c in cs
    ]
    assert not found, "\n".join(found)


def test_checkov_fails_a_manifest_that_breaks_the_rules(checkov_report) -> None:
    ids = {c["check_id"] for c in checkov_report.get("broken.yaml", [])}
    assert ids >= BROKEN_EXPECTED, f"checkov did not flag {BROKEN_EXPECTED - ids}"


def test_every_checkov_suppression_says_why() -> None:
    """The passing scan above is what proves checkov honours them (without the annotations
    the image and uid checks fail); here each must carry a reason."""
    seen = 0
    for path in [*K8S.rglob("*.yaml"), *DOCKERFILES]:
        for line in path.read_text().splitlines():
            m = re.search(r"checkov\.io/skip\d+: \"?(CKV\w+)=(.*)", line) or re.search(
                r"checkov:skip=(CKV\w+):(.*)", line
            )
            if m:
                seen += 1
                assert len(m[2].split()) >= 5, f"{path.name}: {m[1]} needs its reason"
    assert seen, "no suppressions found"


# ---------------------------------------------------------------- zizmor


def zizmor(folder: Path) -> list[dict[str, Any]]:
    proc = run([scanner("zizmor"), "--offline", "--format", "json", "--no-progress", str(folder)])
    assert proc.returncode in (0, 11, 12, 13, 14) or proc.stdout.strip(), proc.stderr[-2000:]
    return json.loads(proc.stdout or "[]")


def test_zizmor_passes_the_workflows() -> None:
    findings = zizmor(WORKFLOWS)
    shown = [
        f"{f['ident']}: {f['desc']} ({f['locations'][0]['symbolic']['key']})" for f in findings
    ]
    assert not findings, "\n".join(map(str, shown))


def test_zizmor_fails_an_unsafe_workflow_and_suppressions_say_why(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, folder)
    promote = folder / "promote.yml"
    text = promote.read_text()
    # the trigger without its justified suppression, and an untrusted value into GITHUB_ENV
    text = re.sub(r"workflow_run:  # zizmor: ignore\[dangerous-triggers\].*", "workflow_run:", text)
    text = text.replace(
        'echo "share=${SHARE}" >> "$GITHUB_OUTPUT"',
        'echo "SHARE=${SHARE}" >> "$GITHUB_ENV"',
    )
    promote.write_text(text)
    rules = {f["ident"] for f in zizmor(folder)}
    assert {"dangerous-triggers", "github-env"} <= rules, rules
    for path in WORKFLOWS.glob("*.y*ml"):
        for line in path.read_text().splitlines():
            if m := re.search(r"# zizmor: ignore\[([\w-]+)\](.*)", line):
                assert len(m[2].split()) >= 5, f"{path.name}: ignore[{m[1]}] needs its reason"
