"""Prediction logs a cluster keeps: each pod ships its own segments to object storage.

With `serve.prediction_log_s3` (or ARTFLOW_PREDICTION_LOG_S3) = `s3://BUCKET/PREFIX`, every
`serve.log_upload_s` a pod uploads each of its segments (artflow.serve.predlog: one per
UTC hour, or sooner at `serve.log_rotate_mb`) that grew since its last upload, to
`PREFIX/<pod>/<segment>.jsonl`. One writer per object, so pods on different nodes never
share a file; the open segment's object is replaced as it grows (a PUT is atomic: a reader
sees the old or the new object, never a torn one). A pod killed between two uploads loses
at most one interval of log lines (they are monitoring data, never an acknowledged write).
The endpoint comes from AWS_ENDPOINT_URL (MinIO), the keys from the usual AWS variables;
retention on the bucket is a lifecycle rule (docs/deploy.md). The drift check reads the
objects back (artflow.monitor.s3log).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from artflow.monitor.s3log import s3_client, split_url  # the log's one S3 layout

log = logging.getLogger(__name__)

ENV = "ARTFLOW_PREDICTION_LOG_S3"


class LogShipper:
    """Uploads one pod's grown segments every `interval_s` (a daemon thread)."""

    def __init__(self, folder: Path, url: str, interval_s: float, client: Any = None) -> None:
        self.folder = folder
        self.bucket, self.prefix = split_url(url)
        self.interval_s = interval_s
        self._client = client
        self._sent: dict[str, tuple[int, float]] = {}  # segment name -> (size, mtime) shipped
        self.last_error: str | None = None
        self.uploads = 0

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="artflow-logship", daemon=True)
        thread.start()
        return thread

    def ship_once(self) -> int:
        """Upload every segment that changed since its last upload; returns how many."""
        client = self._client = self._client or s3_client()
        done = 0
        for path in sorted(self.folder.glob("*.jsonl")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # pruned meanwhile
                continue
            seen = (stat.st_size, stat.st_mtime)
            if self._sent.get(path.name) == seen or stat.st_size == 0:
                continue
            key = "/".join(p for p in (self.prefix, self.folder.name, path.name) if p)
            client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            self._sent[path.name] = seen
            done += 1
        self.uploads += done
        self.last_error = None
        return done

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval_s)
            try:
                self.ship_once()
            except Exception as exc:  # noqa: BLE001 - retried next interval, never fatal
                self.last_error = str(exc)[:300]
                log.warning("artflow: shipping the prediction log failed: %s", self.last_error)

    def describe(self) -> dict[str, Any]:
        return {
            "url": f"s3://{self.bucket}/{self.prefix}",
            "interval_s": self.interval_s,
            "uploads": self.uploads,
            "error": self.last_error,
        }
