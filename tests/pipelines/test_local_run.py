"""End to end: the training pipeline on kfp's local runner, on demo data, run twice."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from artflow import tracking
from artflow.cli import run as cli
from artflow.config import PROFILES_DIR


@pytest.fixture
def tiny_profile(tmp_path):
    """The smoke profile with fewer epochs: each kfp step is a process that imports TF."""
    overlay = yaml.safe_load((PROFILES_DIR / "smoke.yaml").read_text())
    overlay["cnn"] = {**overlay.get("cnn", {}), "epochs": 2}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


@pytest.mark.slow
def test_training_pipeline_local_run_and_unchanged_rerun(
    demo_workdir, tiny_profile, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ARTFLOW_ARTIFACT_ROOT", (tmp_path / "artifacts").as_uri())
    monkeypatch.delenv("ARTFLOW_PROFILE", raising=False)
    wd = tmp_path / "wd"
    shutil.copytree(demo_workdir.root, wd)  # the fixture is shared read-only
    argv = [
        "pipeline",
        "run",
        "training",
        "--local",
        "--workdir",
        str(wd),
        "--profile",
        str(tiny_profile),
        "--arg",
        "train_resnet=false",
    ]

    start = time.perf_counter()
    assert cli(argv) == 0
    first = time.perf_counter() - start

    client = tracking.client()
    versions = client.search_model_versions(f"name='{tracking.CLASSIFIER}'")
    assert [v.tags.get("family") for v in versions] == ["cnn"]
    version = str(versions[0].version)
    decision = json.loads(
        (wd / "reports" / "gate" / f"{tracking.CLASSIFIER}-v{version}.json").read_text()
    )
    assert {c["name"] for c in decision["checks"]} >= {"accuracy", "macro_f1", "latency_ms"}
    champion = tracking.alias_version(tracking.CLASSIFIER, "champion")
    assert (champion is not None and str(champion.version) == version) == decision["passed"]
    assert "Model card" in client.get_model_version(tracking.CLASSIFIER, version).description
    stamps = {p.stem for p in (wd / "pipeline" / "stamps").glob("*.json")}
    assert stamps >= {"validate", "sample", "train_cnn", "evaluate", f"gate_{tracking.CLASSIFIER}"}

    start = time.perf_counter()
    assert cli(argv) == 0
    second = time.perf_counter() - start
    print(f"first run {first:.1f} s, unchanged re-run {second:.1f} s")
    # nothing retrained or re-registered; the re-run only pays process start-up per step
    assert len(client.search_model_versions(f"name='{tracking.CLASSIFIER}'")) == 1
    assert second < 0.5 * first
    summary = json.loads((wd / "pipeline" / "last_run_training.json").read_text())
    assert summary["seconds"] == pytest.approx(second, abs=5)
    assert list(summary["gates"]) == [f"{tracking.CLASSIFIER}-v{version}"]
    # the terminal got the gist, the log file every line of the steps
    printed = capsys.readouterr().out
    assert "INFO artflow.stages: train_cnn: inputs unchanged" in printed
    assert "executor_input" not in printed
    assert "Got executor_input" in Path(summary["log"]).read_text()
