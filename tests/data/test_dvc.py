"""`dvc repro` of the data stages in a throw-away copy of the repo: the second run does nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from artflow.config import PROJECT_ROOT

DATA_STAGES = ["demo", "ingest", "validate", "sample", "report"]


def _copy_repo(dest: Path) -> Path:
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy2(PROJECT_ROOT / name, dest / name)
    for name in ("profiles", "src", ".dvc"):
        shutil.copytree(
            PROJECT_ROOT / name,
            dest / name,
            ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info", "cache", "tmp", "config.local"
            ),
        )
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def _dvc(repo: Path, *args: str) -> str:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "ARTFLOW_PROFILE": "smoke",
        "GX_ANALYTICS_ENABLED": "false",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [str(bin_dir / "dvc"), *args],
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_repro_twice_second_run_does_nothing(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path)
    first = _dvc(repo, "repro", "report")
    for stage in DATA_STAGES:
        assert f"Running stage '{stage}'" in first
    assert (repo / "data" / "reports" / "eda" / "index.html").is_file()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(DATA_STAGES) <= set(lock["stages"])
    assert lock["stages"]["sample"]["params"]["params.yaml"]["sample"]["train_share"] == 0.8

    second = _dvc(repo, "repro", "report")
    assert "Running stage" not in second
    for stage in DATA_STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in second
    assert "validation.json" in _dvc(repo, "metrics", "show")
