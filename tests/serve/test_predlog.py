"""Prediction log: JSON lines with the drift fields, size-based rotation, path override."""

from __future__ import annotations

import numpy as np

from artflow.config import PROJECT_ROOT
from artflow.serve.predlog import PredictionLog, read_log, resolve_log_path


def test_records_are_json_lines_with_numpy_values_made_plain(tmp_path):
    log = PredictionLog(tmp_path / "p.jsonl", rotate_mb=1)
    log.write(
        "classify",
        variant="champion",
        model_version="2",
        confidence=np.float32(0.5),
        embedding=np.arange(3, dtype=np.float32),
        features={"brightness": 0.25},
    )
    log.close()
    (record,) = read_log(tmp_path / "p.jsonl")
    assert record["endpoint"] == "classify" and record["variant"] == "champion"
    assert record["confidence"] == 0.5 and record["embedding"] == [0.0, 1.0, 2.0]
    assert record["timestamp"].endswith("Z") and record["features"] == {"brightness": 0.25}


def test_rotation_keeps_backups_and_loses_no_record(tmp_path):
    log = PredictionLog(tmp_path / "p.jsonl", rotate_mb=2000 / 2**20, backups=50)
    for i in range(100):
        log.write("classify", n=i, padding="x" * 50)
    log.close()
    files = sorted(tmp_path.glob("p.jsonl*"))
    assert len(files) > 2  # rotated
    numbers = sorted(r["n"] for f in files for r in read_log(f))
    assert numbers == list(range(100))
    assert all(f.stat().st_size <= 2100 for f in files)


def test_log_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTFLOW_PREDICTION_LOG", raising=False)
    assert resolve_log_path("data/serving/p.jsonl") == PROJECT_ROOT / "data/serving/p.jsonl"
    assert resolve_log_path(str(tmp_path / "a.jsonl")) == tmp_path / "a.jsonl"
    monkeypatch.setenv("ARTFLOW_PREDICTION_LOG", str(tmp_path / "env.jsonl"))
    assert resolve_log_path("data/serving/p.jsonl") == tmp_path / "env.jsonl"
