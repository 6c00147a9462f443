"""The prediction record (one versioned schema) and its reads: tolerant, windowed, streaming."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest

from artflow.errors import ConfigError, DataError
from artflow.monitor.features import FEATURE_NAMES
from artflow.monitor.records import (
    SCHEMA_VERSION,
    PredictionRecord,
    make_record,
    parse_line,
    parse_window,
    read_log,
    read_window,
    select_window,
)
from artflow.serve.predlog import PredictionLog

LABELS = ["Rembrandt", "Titian", "Paul Gauguin"]


def _record(i: int, when: dt.datetime, **kw) -> PredictionRecord:
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(len(LABELS)))
    return make_record(image, probs, LABELS, model_version="3", timestamp=when, **kw)


def _write(path: Path, records) -> Path:
    with path.open("a") as fh:
        for r in records:
            fh.write((r.to_line() if isinstance(r, PredictionRecord) else json.dumps(r)) + "\n")
    return path


def test_a_record_has_one_name_per_field_and_its_schema_version() -> None:
    probs = np.array([0.1, 0.7, 0.2], dtype=np.float32)
    rec = make_record(np.zeros((8, 8, 3), np.uint8), probs, LABELS, embedding=np.ones(4))
    back = json.loads(rec.to_line())
    assert back["schema_version"] == SCHEMA_VERSION
    assert back["artist"] == "Titian" and back["confidence"] == pytest.approx(0.7)
    assert set(back["features"]) == set(FEATURE_NAMES)
    assert back["embedding"] == [1.0] * 4 and back["endpoint"] == "classify"
    assert back["timestamp"].endswith("Z")
    assert not {"predicted_artist", "prediction", "label", "score"} & set(back)
    assert parse_line(rec.to_line()) == rec  # what is written reads back the same


def test_older_spellings_still_parse_into_the_one_schema() -> None:
    feats = {k: 0.5 for k in FEATURE_NAMES}
    for artist_key, conf_key, time_key, when in (
        ("predicted_artist", "confidence", "timestamp", "2026-01-02T03:04:05.000Z"),
        ("prediction", "score", "ts", 1767323045),
        ("label", "probability", "time", "2026-01-02T03:04:05"),
    ):
        line = json.dumps({artist_key: "Titian", conf_key: 0.5, time_key: when, "features": feats})
        rec = parse_line(line)
        assert rec is not None and rec.artist == "Titian" and rec.confidence == 0.5
        assert rec.timestamp == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        assert rec.usable_for_drift and "artist" in json.loads(rec.to_line())


def test_reader_skips_what_it_cannot_use(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    log = _write(
        tmp_path / "p.jsonl", [_record(i, now, embedding=np.arange(3.0)) for i in range(3)]
    )
    old_style = {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "endpoint": "classify",
        "variant": "challenger",
        "model_version": None,
        "predicted_artist": "Rembrandt",
        "confidence": 0.5,
        "features": _record(9, now).features,
    }
    stylize = {"timestamp": now.isoformat(), "endpoint": "stylize", "latency_ms": 3}
    bad_feature = {**json.loads(_record(5, now).to_line()), "features": {"brightness": "dark"}}
    _write(log, [old_style, stylize, bad_feature])
    with log.open("a") as fh:
        fh.write('{"timestamp": "2026-01-01T00:00:00", "artist": "Rem')  # torn last line
    parsed = read_log(log)
    assert len(parsed.frame) == 4 and parsed.skipped == 3
    assert parsed.frame["artist"].tolist()[-1] == "Rembrandt"
    assert parsed.frame["model_version"].tolist() == ["3", "3", "3", ""]
    assert parsed.embeddings[0] == [0.0, 1.0, 2.0] and parsed.embeddings[-1] is None
    assert str(parsed.frame["timestamp"].dt.tz) == "UTC"


def test_windows_by_count_and_by_duration(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    hours = [5, 1, 30, 2, 0]  # written out of order: the window is by time, not by line
    log = _write(
        tmp_path / "p.jsonl", [_record(i, now - dt.timedelta(hours=h)) for i, h in enumerate(hours)]
    )
    parsed = read_log(log)
    last3, emb = select_window(parsed, "3")
    assert len(last3) == 3 == len(emb)
    assert last3["timestamp"].is_monotonic_increasing
    assert (now - last3["timestamp"].iloc[0].to_pydatetime()) < dt.timedelta(hours=2, minutes=1)
    assert len(select_window(parsed, "1d", now=now)[0]) == 4  # the 30-hour-old one is out
    assert len(select_window(parsed, "90m", now=now)[0]) == 2
    streamed, _ = read_window(log, "3")
    assert [r.timestamp for r in streamed] == [t.to_pydatetime() for t in last3["timestamp"]]
    assert len(read_window(log, "90m", now=now)[0]) == 2


def _pod_segments(root: Path, pod: str, start: dt.datetime, hours: int, per: int) -> None:
    """`hours` segments of one pod, one per hour, `per` records each, mtimes as if written
    then (a segment's modification time is its newest record's)."""
    for h in range(hours):
        begin = start + dt.timedelta(hours=h)
        path = root / pod / f"{begin:%Y%m%dT%H%M%S}.000000Z.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        last = begin + dt.timedelta(minutes=50)
        _write(path, [_record(h * per + i, begin + dt.timedelta(minutes=i)) for i in range(per)])
        os.utime(path, (last.timestamp(), last.timestamp()))


def test_windowed_reads_open_only_the_segments_of_the_window(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(hours=48)
    for pod in ("champion-a", "champion-b", "challenger-a"):
        _pod_segments(tmp_path, pod, start, hours=48, per=5)  # 3 pods x 48 segments
    total = 3 * 48
    recent, stats = read_window(tmp_path, "3h", now=now)
    assert stats.segments == total
    assert stats.segments_read == 3 * 3  # the last three hours of each pod, no older one
    assert len(recent) == 3 * 3 * 5
    assert all(r.timestamp >= now - dt.timedelta(hours=3) for r in recent)
    assert [r.timestamp for r in recent] == sorted(r.timestamp for r in recent)
    last, stats = read_window(tmp_path, "12", now=now)
    assert len(last) == 12 and stats.segments_read == 3 and stats.lines == 3 * 5
    everything = sorted((r for f in tmp_path.rglob("*.jsonl") for r in _all(f)), key=_when)
    assert [r.timestamp for r in last] == [r.timestamp for r in everything[-12:]]


def _all(path: Path):
    from artflow.monitor.records import iter_records

    return list(iter_records(path))


def _when(record: PredictionRecord) -> dt.datetime:
    return record.timestamp


def test_the_service_writer_and_the_drift_reader_share_the_schema(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    log = PredictionLog(tmp_path / "logs", pod="pod-1")
    for i in range(4):
        log.write(_record(i, now, variant="challenger"))
    log.close()
    records, stats = read_window(tmp_path / "logs", "10")
    assert len(records) == 4 and stats.skipped == 0
    assert {r.variant for r in records} == {"challenger"}


@pytest.mark.parametrize("bad", ["0", "-3", "1w", "abc", ""])
def test_bad_windows_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_window(bad)


def test_missing_log_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_log(tmp_path / "nothing.jsonl")
    with pytest.raises(DataError, match="does not exist"):
        read_window(tmp_path / "nothing", "10")
