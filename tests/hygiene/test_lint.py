"""`make test` lints and format-checks every Python file of the project, not a list of folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = str(Path(sys.executable).parent / "ruff")


def _tracked_python_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line for line in out.stdout.splitlines() if line}


def test_make_test_runs_ruff_check_and_format_check_over_the_whole_project() -> None:
    out = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ruff_check = next(i for i, line in enumerate(out) if line.endswith("ruff check ."))
    ruff_format = next(i for i, line in enumerate(out) if line.endswith("ruff format --check ."))
    pytest_run = next(i for i, line in enumerate(out) if "pytest" in line)
    assert ruff_check < pytest_run and ruff_format < pytest_run


def test_ruff_sees_every_tracked_python_file() -> None:
    shown = subprocess.run(
        [RUFF, "check", "--show-files", "."], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    seen = {str(Path(line).relative_to(ROOT)) for line in shown.split() if line.endswith(".py")}
    tracked = _tracked_python_files()
    assert {"src/artflow/data/ingest.py", "tests/data/conftest.py"} <= tracked
    assert tracked - seen == set(), "ruff skips these files; fix extend-exclude in pyproject.toml"
