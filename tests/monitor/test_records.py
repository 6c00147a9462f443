"""The prediction-log record and its tolerant reader; windows by count and by duration."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from artflow.errors import ConfigError, DataError
from artflow.monitor.features import FEATURE_NAMES
from artflow.monitor.records import (
    append_records,
    make_record,
    parse_window,
    read_log,
    select_window,
)

LABELS = ["Rembrandt", "Titian", "Paul Gauguin"]


def _record(i: int, when: dt.datetime, **kw) -> dict:
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(len(LABELS)))
    return make_record(image, probs, LABELS, model_version="3", timestamp=when.isoformat(), **kw)


def test_make_record_is_json_with_the_top_prediction() -> None:
    probs = np.array([0.1, 0.7, 0.2], dtype=np.float32)
    rec = make_record(np.zeros((8, 8, 3), np.uint8), probs, LABELS, embedding=np.ones(4))
    back = json.loads(json.dumps(rec))
    assert back["artist"] == "Titian" and back["confidence"] == pytest.approx(0.7)
    assert set(back["features"]) == set(FEATURE_NAMES)
    assert back["embedding"] == [1.0] * 4 and back["endpoint"] == "classify"


def test_reader_skips_what_it_cannot_use_and_reads_service_records(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    log = tmp_path / "p.jsonl"
    append_records(log, [_record(i, now, embedding=np.arange(3.0)) for i in range(3)])
    service_style = {  # the spelling artflow.serve writes: predicted_artist, Z timestamps
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "endpoint": "classify",
        "variant": "challenger",
        "model_version": None,
        "predicted_artist": "Rembrandt",
        "confidence": 0.5,
        "features": _record(9, now)["features"],
    }
    stylize = {"timestamp": now.isoformat(), "endpoint": "stylize", "latency_ms": 3}
    bad_feature = {**_record(5, now), "features": {"brightness": "dark"}}
    with log.open("a") as fh:
        for rec in (service_style, stylize, bad_feature):
            fh.write(json.dumps(rec) + "\n")
        fh.write('{"timestamp": "2026-01-01T00:00:00", "artist": "Rem')  # torn last line
    parsed = read_log(log)
    assert len(parsed.frame) == 4 and parsed.skipped == 3
    assert parsed.frame["artist"].tolist()[-1] == "Rembrandt"
    assert parsed.frame["model_version"].tolist() == ["3", "3", "3", ""]
    assert parsed.embeddings[0] == [0.0, 1.0, 2.0] and parsed.embeddings[-1] is None
    assert str(parsed.frame["timestamp"].dt.tz) == "UTC"


def test_windows_by_count_and_by_duration(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    log = tmp_path / "p.jsonl"
    # written out of order: the window is by time, not by line
    hours = [5, 1, 30, 2, 0]
    append_records(log, [_record(i, now - dt.timedelta(hours=h)) for i, h in enumerate(hours)])
    parsed = read_log(log)
    last3, emb = select_window(parsed, "3")
    assert len(last3) == 3 == len(emb)
    assert last3["timestamp"].is_monotonic_increasing
    assert (now - last3["timestamp"].iloc[0].to_pydatetime()) < dt.timedelta(hours=2, minutes=1)
    day, _ = select_window(parsed, "1d", now=now)
    assert len(day) == 4  # the 30-hour-old one is out
    assert len(select_window(parsed, "90m", now=now)[0]) == 2


@pytest.mark.parametrize("bad", ["0", "-3", "1w", "abc", ""])
def test_bad_windows_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_window(bad)


def test_missing_log_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_log(tmp_path / "nothing.jsonl")
