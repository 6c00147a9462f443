"""`artflow data ...` end to end, and the exit codes of what a user can get wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from artflow.cli import run
from artflow.data.layout import Workdir


def test_data_flow_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, wd = tmp_path / "demo_source", Workdir.at(tmp_path / "wd")
    smoke = ["--profile", "smoke"]
    assert run(["data", "demo", "--out", str(src), *smoke]) == 0
    assert run(["data", "ingest", "--source", str(src), "--workdir", str(wd.root), *smoke]) == 0
    for step in ("validate", "sample", "report"):
        assert run(["data", step, "--workdir", str(wd.root), *smoke]) == 0, step
    out = capsys.readouterr().out
    assert "520 images of 17 artists" in out and "11 classes" in out

    manifest = pd.read_csv(wd.manifest)
    assert list(manifest.columns[:7]) == [
        "path",
        "artist",
        "sha256",
        "width",
        "height",
        "mode",
        "format",
    ]
    assert json.loads(wd.validation_summary.read_text())["success"]
    assert "<table>" in wd.validation_report.read_text()
    sizes = {n: len(pd.read_csv(wd.split_csv(n))) for n in ("train", "val", "test")}
    assert sum(sizes.values()) == 431  # the eleven artists' 431 demo paintings
    assert json.loads((wd.metrics / "sample.json").read_text())["classes"] == 11
    html = (wd.eda / "index.html").read_text()
    pngs = {
        "paintings_hist",
        "paintings_box",
        "nationality",
        "by_artist",
        "top_artists",
        "samples",
        "augmented",
    }
    for name in pngs:
        assert f"{name}.png" in html and (wd.eda / f"{name}.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "ingest", "--source", "/no/such/dir"], "source not found: /no/such/dir"),
        (["data", "ingest"], "nothing to ingest"),
        (["data", "validate"], "run `artflow data ingest` first"),
        (["data", "sample"], "run `artflow data validate` first"),
        (["data", "report"], "run `artflow data ingest` first"),
        (["data", "demo", "--out", "{tmp}/o", "--profile", "tiny"], "unknown profile 'tiny'"),
        (
            ["data", "ingest", "--kaggle", "ikarus777/best-artworks-of-all-time"],
            "no Kaggle credentials",
        ),
    ],
)
def test_user_errors_exit_2_with_one_message(
    argv, message, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[1] != "demo":
        argv += ["--workdir", str(tmp_path / "empty_wd")]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("error: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert run(["data", "demo"]) == 2  # --out is required
    assert run(["data", "no-such-command"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_failed_validation_exits_non_zero(
    demo_workdir: Workdir, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    wd = shutil.copytree(demo_workdir.root, tmp_path / "wd")
    # the default profile wants 200 paintings per artist: the demo data is unusable for it
    assert run(["data", "validate", "--workdir", str(wd)]) == 2
    err = capsys.readouterr().err
    assert "validation failed" in err and "report.html" in err
