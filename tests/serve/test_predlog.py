"""Prediction log: one folder per pod, segments, retention by age and total size across pods."""

from __future__ import annotations

import os
import time

import numpy as np

from artflow.config import PROJECT_ROOT
from artflow.monitor.records import PredictionRecord, read_records
from artflow.serve.predlog import PredictionLog, Retention, prune, resolve_log_path


def _record(i: int, **kw) -> PredictionRecord:
    return PredictionRecord(
        endpoint="classify",
        variant="champion",
        model_version="2",
        artist=f"artist-{i}",
        confidence=np.float32(0.5),
        embedding=np.arange(3, dtype=np.float32).tolist(),
        features={"brightness": 0.25},
        **kw,
    )


def test_records_are_json_lines_of_the_one_schema(tmp_path):
    log = PredictionLog(tmp_path, pod="pod-a")
    log.write(_record(0))
    log.close()
    (record,) = read_records(tmp_path)
    assert log.folder == tmp_path / "pod-a" and log.path.parent == log.folder
    assert record.endpoint == "classify" and record.variant == "champion"
    assert record.confidence == 0.5 and record.embedding == [0.0, 1.0, 2.0]
    assert record.features == {"brightness": 0.25}
    assert log.path.read_text().count('"timestamp":"') == 1


def test_segments_roll_at_their_size_and_lose_no_record(tmp_path):
    log = PredictionLog(tmp_path, pod="pod-a", segment_mb=2000 / 2**20)
    for i in range(100):
        log.write(_record(i))
    log.close()
    files = sorted((tmp_path / "pod-a").glob("*.jsonl"))
    assert len(files) > 2 and all(f.stat().st_size <= 2000 + 400 for f in files)
    assert sorted(int(r.artist.split("-")[1]) for r in read_records(tmp_path)) == list(range(100))


def _aged(path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_retention_by_age_and_total_size_across_pods(tmp_path):
    # Two pods that are gone left segments behind: 4 old ones and 3 recent ones of 1 KiB.
    gone = {}
    for pod, ages in (("gone-1", (40, 35, 1)), ("gone-2", (50, 2, 0.5, 0.1))):
        for n, age in enumerate(ages):
            path = tmp_path / pod / f"2026010{n}T000000.000000Z.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x" * 1023 + "\n")
            _aged(path, age)
            gone[(pod, age)] = path
    retention = Retention(max_age_days=30, max_total_mb=3.5 / 1024)  # 3.5 KiB in all
    log = PredictionLog(tmp_path, pod="live", segment_mb=1, retention=retention)
    survivors = {p for p in tmp_path.rglob("*.jsonl")}
    # age first (40, 35, 50 days), then the oldest (2 days) until 3.5 KiB fit; the live
    # pod's open segment is never deleted
    assert survivors == {
        gone[("gone-1", 1)],
        gone[("gone-2", 0.5)],
        gone[("gone-2", 0.1)],
        log.path,
    }
    log.write(_record(1))
    assert log.path.is_file()
    # Another pod's retention deletes this pod's open segment: the next write starts a new one.
    first = log.path
    first.unlink()
    log.write(_record(2))
    assert log.path != first and log.path.is_file()
    log.close()
    assert [r.artist for r in read_records(log.folder)] == ["artist-2"]


def test_prune_removes_the_folders_of_pods_that_are_gone(tmp_path):
    path = tmp_path / "old-pod" / "20260101T000000.000000Z.jsonl"
    path.parent.mkdir()
    path.write_text("{}\n")
    _aged(path, 100)
    deleted = prune(tmp_path, Retention(max_age_days=1, max_total_mb=100))
    assert deleted == [path] and not path.parent.exists()


def test_log_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTFLOW_PREDICTION_LOG", raising=False)
    assert resolve_log_path("data/serving/p") == PROJECT_ROOT / "data/serving/p"
    assert resolve_log_path(str(tmp_path / "a")) == tmp_path / "a"
    monkeypatch.setenv("ARTFLOW_PREDICTION_LOG", str(tmp_path / "env"))
    assert resolve_log_path("data/serving/p") == tmp_path / "env"


def test_a_new_utc_hour_starts_a_new_segment(tmp_path, monkeypatch):
    from artflow.serve import predlog

    hour = ["2026120210"]
    monkeypatch.setattr(predlog, "_utc_hour", lambda: hour[0])
    log = PredictionLog(tmp_path, pod="pod-a")
    log.write(_record(0))
    first = log.path
    hour[0] = "2026120211"
    log.write(_record(1))
    log.close()
    assert log.path != first  # one segment per pod and hour: one object each on S3
    assert [r.artist for r in read_records(tmp_path)] == ["artist-0", "artist-1"]


def test_pods_ship_their_segments_to_s3_and_drift_reads_them_back(tmp_path, monkeypatch):
    """Two pods ship to one bucket (moto's S3 server); the reader sees every record once,
    and a segment that grew is shipped again, one object per pod and segment."""
    import boto3
    from moto.server import ThreadedMotoServer

    from artflow.monitor.s3log import local_copy
    from artflow.serve.logship import LogShipper
    from tests.prod.conftest import S3_ENV, free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for key, value in {**S3_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3").create_bucket(Bucket="logs")
        shippers = []
        for pod in ("pod-a", "pod-b"):
            log = PredictionLog(tmp_path / "local", pod=pod)
            log.write(_record(0, prediction_id=f"{pod}-0"))
            shipper = LogShipper(log.folder, "s3://logs/predictions", 60)
            assert shipper.ship_once() == 1
            assert shipper.ship_once() == 0  # unchanged: nothing to send
            log.write(_record(1, prediction_id=f"{pod}-1"))
            assert shipper.ship_once() == 1  # grown: replaced
            shippers.append(shipper)
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="logs")["Contents"]]
        assert len(keys) == 2 and {k.split("/")[1] for k in keys} == {"pod-a", "pod-b"}
        with local_copy("s3:/logs/predictions", "1d") as folder:  # as a Path spells it
            ids = sorted(r.prediction_id for r in read_records(folder))
        assert ids == ["pod-a-0", "pod-a-1", "pod-b-0", "pod-b-1"]
    finally:
        server.stop()
