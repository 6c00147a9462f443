"""The prediction log: one `PredictionRecord` JSON line per answered request, read by drift.

Layout: `<root>/<pod>/<UTC start time>.jsonl`. Each pod (each process that writes) has its
own folder, so writers never share a file; each folder holds time-ordered segments. A writer
starts a new segment when the current one reaches `segment_mb` or a new UTC hour begins
(so a segment is at most one hour of one pod: what artflow.serve.logship uploads as one
object per pod and hour), and then applies retention
to the whole root, every pod's folder included (pods come and go under an autoscaler, and
the ones that are gone prune nothing): segments whose newest record is older than
`max_age_days` are deleted, then the oldest segments until all of them together hold at most
`max_total_mb`. A writer whose open segment was pruned by another starts a new one.

Why by hand rather than logging.handlers.RotatingFileHandler: that handler renames files on
every rotation (`.1` -> `.2` ...), so a reader may see a record twice or miss one, and it
knows nothing of other processes' files or of age. Segments named by their start time are
never renamed, and a segment's modification time is its newest record's time, which is
what lets the drift check open only the segments of its window (artflow.monitor.records).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from artflow.config import PROJECT_ROOT
from artflow.monitor.records import PredictionRecord

log = logging.getLogger(__name__)

ENV_OVERRIDE = "ARTFLOW_PREDICTION_LOG"
POD_ENV = ("POD_NAME", "HOSTNAME")  # Kubernetes' downward API sets POD_NAME in the manifests
SUFFIX = ".jsonl"


def resolve_log_path(configured: str) -> Path:
    """ARTFLOW_PREDICTION_LOG if set, else the configured folder (relative = project root)."""
    path = Path(os.environ.get(ENV_OVERRIDE) or configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def pod_name() -> str:
    """This writer's folder name: the pod's name on a cluster, the host name elsewhere."""
    raw = next((os.environ[k] for k in POD_ENV if os.environ.get(k)), socket.gethostname())
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw).strip("._") or "pod"


@dataclass(frozen=True)
class Retention:
    """How long and how much of the log is kept, all pods together (serve.log_* settings)."""

    max_age_days: float
    max_total_mb: float

    @classmethod
    def from_settings(cls, serve: object) -> Retention:
        return cls(serve.log_retention_days, serve.log_max_total_mb)  # type: ignore[attr-defined]


class PredictionLog:
    """Thread-safe appender of one pod's segments under `root`, with global retention."""

    def __init__(
        self,
        root: str | Path,
        pod: str | None = None,
        segment_mb: float = 50,
        retention: Retention | None = None,
    ) -> None:
        self.root = Path(root)
        self.folder = self.root / (pod or pod_name())
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = max(1, int(segment_mb * 2**20))
        self.retention = retention
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._hour = _utc_hour()
        self.path = self._open()
        self.prune()

    def write(self, record: PredictionRecord) -> PredictionRecord:
        line = record.to_line() + "\n"
        with self._lock:
            if self._hour != _utc_hour():
                self._roll()
            fh = self._current()
            fh.write(line)
            fh.flush()  # one whole line per write: readers see no torn record but the last
            if fh.tell() >= self.segment_bytes:
                self._roll()
        return record

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    # ------------------------------------------------------------------ segments
    def _open(self) -> Path:
        self._hour = _utc_hour()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.folder / f"{stamp}{SUFFIX}"
        n = 1
        while path.exists():  # two segments in the same microsecond
            path, n = self.folder / f"{stamp}-{n}{SUFFIX}", n + 1
        self._fh = path.open("a", encoding="utf-8")
        return path

    def _current(self) -> IO[str]:
        if self._fh is None or os.fstat(self._fh.fileno()).st_nlink == 0:
            # closed, or pruned by another pod's retention: continue in a new segment
            if self._fh is not None:
                self._fh.close()
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self._open()
        assert self._fh is not None
        return self._fh

    def _roll(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self.path = self._open()
        self.prune()

    def prune(self) -> list[Path]:
        """Apply retention to every pod's segments under the root; returns what was deleted."""
        if self.retention is None:
            return []
        return prune(self.root, self.retention, keep=self.path)


def _utc_hour() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H")


def prune(root: Path, retention: Retention, keep: Path | None = None) -> list[Path]:
    """Delete segments older than max_age_days, then the oldest until the total fits."""
    segments = []
    for path in root.glob(f"*/*{SUFFIX}"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # another pod pruned it meanwhile
            continue
        segments.append((stat.st_mtime, stat.st_size, path))
    segments.sort()
    cutoff = time.time() - retention.max_age_days * 86400
    budget = retention.max_total_mb * 2**20
    total = sum(size for _, size, _ in segments)
    deleted = []
    for mtime, size, path in segments:
        if path == keep:
            continue
        if mtime >= cutoff and total <= budget:
            break  # oldest first: everything after is younger and the total fits
        with contextlib.suppress(FileNotFoundError):  # another pod pruned it first
            path.unlink()
        total -= size
        deleted.append(path)
    for folder in {p.parent for p in deleted}:
        if folder != (keep.parent if keep else None):
            with contextlib.suppress(OSError):  # only when empty: a pod that is gone
                folder.rmdir()
    if deleted:
        log.info("prediction log retention: deleted %d segment(s) under %s", len(deleted), root)
    return deleted
