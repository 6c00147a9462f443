"""The prediction record (one pydantic schema, versioned) and streaming, windowed reads.

Every writer (the service's prediction log, `artflow drift simulate`) builds a
`PredictionRecord` and every reader (the drift check, tests, tools) parses one, so the field
names live here only. `schema_version` says which schema wrote a line; records written before
it existed (no version, the artist spelled `predicted_artist`, `prediction` or `label`, the
confidence `score` or `probability`, the time `ts` or `time`, epoch seconds) still parse
through validation aliases, but new records have exactly one name per field.

The log is a folder per pod of time-ordered segment files (artflow.serve.predlog). Readers
stream it line by line and read only the segments that can hold the window they need: a
segment's modification time is its newest record's time, so segments older than a duration
window, or older than the N newest records already found, are never opened.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from artflow.errors import ConfigError, DataError
from artflow.monitor.features import FEATURE_NAMES, describe_image

SCHEMA_VERSION = 1
# Files clocks may disagree with the writers' (a shared volume): segments within this margin
# of a window's start are read anyway.
CLOCK_SKEW = dt.timedelta(minutes=5)


class PredictionRecord(BaseModel):
    """One answered request: what drift needs and nothing a user uploaded."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)

    schema_version: int = SCHEMA_VERSION
    timestamp: dt.datetime = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC),
        validation_alias=AliasChoices("timestamp", "ts", "time"),
    )
    endpoint: str = "classify"
    prediction_id: str | None = None  # /classify: the id POST /feedback refers to
    variant: str = ""  # champion | challenger | family:<name> (classify), fast | gatys, ...
    model_name: str = ""
    model_version: str = ""
    artist: str | None = Field(
        None, validation_alias=AliasChoices("artist", "predicted_artist", "prediction", "label")
    )
    confidence: float | None = Field(
        None, validation_alias=AliasChoices("confidence", "score", "probability")
    )
    novelty: float | None = None  # /classify: kNN novelty score (artflow.monitor.novelty)
    latency_ms: float | None = None
    image_format: str | None = None
    image_mode: str | None = None
    method: str | None = None  # /stylize: fast | gatys
    features: dict[str, float] | None = None  # artflow.monitor.features.describe_image
    embedding: list[float] | None = None  # classifier penultimate layer (raw, before PCA)

    @field_validator("timestamp", mode="after")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        """UTC, to the millisecond (what the log keeps, so a record reads back equal)."""
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> str:
        return "" if value is None else str(value)

    @field_serializer("timestamp")
    def _iso(self, value: dt.datetime) -> str:
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_line(self) -> str:
        """The JSON line written to the log (fields left unset are omitted)."""
        return self.model_dump_json(exclude_none=True)

    @property
    def usable_for_drift(self) -> bool:
        """A classified image with a prediction and every image feature (finite numbers)."""
        if not isinstance(self.artist, str) or not _finite(self.confidence) or not self.features:
            return False
        return all(_finite(self.features.get(k)) for k in FEATURE_NAMES)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def parse_line(line: str) -> PredictionRecord | None:
    """A record from one log line; None for a torn write or a line of another kind."""
    try:
        return PredictionRecord.model_validate_json(line)
    except (ValidationError, ValueError):
        return None


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def make_record(
    image: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    *,
    endpoint: str = "classify",
    variant: str = "champion",
    model_name: str = "",
    model_version: str = "",
    embedding: np.ndarray | None = None,
    features: dict[str, float] | None = None,
    timestamp: str | dt.datetime | None = None,
    **extra: Any,
) -> PredictionRecord:
    """The record of one classified image (what the service logs for /classify)."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    top = int(probs.argmax())
    return PredictionRecord(
        timestamp=timestamp or dt.datetime.now(dt.UTC),
        endpoint=endpoint,
        variant=variant,
        model_name=model_name,
        model_version=str(model_version),
        artist=str(labels[top]),
        confidence=round(float(probs[top]), 6),
        features=features if features is not None else describe_image(image),
        embedding=None
        if embedding is None
        else [round(float(v), 5) for v in np.asarray(embedding).reshape(-1)],
        **extra,
    )


def classify_records(
    classifier: Any, images: Sequence[np.ndarray], with_embedding: bool = True, **fields: Any
) -> list[PredictionRecord]:
    """Records for a batch of images classified by a LoadedClassifier, as the service logs them."""
    probs = classifier.predict(images)
    vectors = classifier.embed(images) if with_embedding else [None] * len(images)
    meta = {"model_name": classifier.name, "model_version": classifier.version, **fields}
    return [
        make_record(img, p, classifier.labels, embedding=e, **meta)
        for img, p, e in zip(images, probs, vectors, strict=True)
    ]


# ---------------------------------------------------------------------- reading
def segment_files(path: str | Path) -> list[Path]:
    """The log's files: a file itself (plus rotated `name.1`, `name.2`, ... beside it), or
    every `*.jsonl` under a folder (one sub-folder per pod). DataError when none exist."""
    path = Path(path)
    if path.is_file():
        return [path, *sorted(p for p in path.parent.glob(f"{path.name}.*") if p.is_file())]
    files = sorted(p for p in path.rglob("*.jsonl") if p.is_file()) if path.is_dir() else []
    if not files:
        raise DataError(
            f"prediction log {path} does not exist or holds no records",
            "start the service and send images, or pass --log with the log's folder",
        )
    return files


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:  # pruned by retention meanwhile
        return None


@dataclass
class ScanStats:
    segments: int = 0  # files in the log
    segments_read: int = 0  # files opened (the rest could not hold the window)
    lines: int = 0
    skipped: int = 0  # lines that are no record (torn writes, foreign lines)
    versions: set[str] = field(default_factory=set)  # model versions seen in what was read


def iter_records(path: Path, stats: ScanStats | None = None) -> Iterator[PredictionRecord]:
    """Every record of one file, streamed (a torn or foreign line is skipped and counted)."""
    stats = stats if stats is not None else ScanStats()
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:  # pruned by retention between listing and reading
        return
    with fh:
        for line in fh:
            if not line.strip():
                continue
            stats.lines += 1
            record = parse_line(line)
            if record is None:
                stats.skipped += 1
                continue
            yield record


def read_records(path: str | Path, stats: ScanStats | None = None) -> list[PredictionRecord]:
    """All records of a log (file or folder), oldest file first. For small logs and tests."""
    return [r for f in segment_files(path) for r in iter_records(f, stats)]


def parse_window(window: str) -> int | dt.timedelta:
    """'500' -> 500 requests; '12h' / '1d' -> a duration."""
    text = str(window).strip().lower()
    if text.isdigit() and int(text) > 0:
        return int(text)
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units and int(text[:-1]) > 0:
        return dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    raise ConfigError(
        f"invalid window {window!r}", "use a request count (e.g. 500) or a duration (30m, 12h, 1d)"
    )


def read_window(
    path: str | Path,
    window: str,
    keep: Callable[[PredictionRecord], bool] = lambda r: r.usable_for_drift,
    now: dt.datetime | None = None,
) -> tuple[list[PredictionRecord], ScanStats]:
    """The kept records of the window (the last N, or those of the last duration), oldest
    first, reading only the segments that can hold them. Memory: the window, not the log."""
    spec = parse_window(window)
    stats = ScanStats()
    files = [(m, f) for f in segment_files(path) if (m := _mtime(f)) is not None]
    files.sort(key=lambda pair: pair[0], reverse=True)  # newest segment first
    stats.segments = len(files)
    if isinstance(spec, int):
        found = _last_n(files, spec, keep, stats)
    else:
        since = (now or dt.datetime.now(dt.UTC)) - spec
        found = _since(files, since, keep, stats)
    return sorted(found, key=lambda r: r.timestamp), stats


def _last_n(files, n: int, keep, stats: ScanStats) -> list[PredictionRecord]:
    heap: list[tuple[dt.datetime, int, PredictionRecord]] = []  # the n newest, oldest on top
    seq = 0
    for mtime, path in files:
        if len(heap) == n and mtime + CLOCK_SKEW < heap[0][0]:
            break  # this segment and every older one end before the n newest records
        stats.segments_read += 1
        for record in iter_records(path, stats):
            stats.versions.add(record.model_version)
            if not keep(record):
                continue
            seq += 1
            item = (record.timestamp, seq, record)
            if len(heap) < n:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
    return [item[2] for item in heap]


def _since(files, since: dt.datetime, keep, stats: ScanStats) -> list[PredictionRecord]:
    found = []
    for mtime, path in files:
        if mtime + CLOCK_SKEW < since:
            break  # files are newest first: the rest end before the window starts
        stats.segments_read += 1
        for record in iter_records(path, stats):
            stats.versions.add(record.model_version)
            if record.timestamp >= since and keep(record):
                found.append(record)
    return found


# ---------------------------------------------------------------------- frames for Evidently
FRAME_COLUMNS = ["timestamp", "endpoint", "variant", "model_version", "artist", "confidence"]


def to_frame(records: Iterable[PredictionRecord]) -> tuple[pd.DataFrame, list[list[float] | None]]:
    """Drift-usable records as a DataFrame (features flattened) and their raw embeddings."""
    rows, embeddings = [], []
    for r in records:
        rows.append(
            {
                "timestamp": r.timestamp,
                "endpoint": r.endpoint,
                "variant": r.variant,
                "model_version": r.model_version,
                "artist": r.artist,
                "confidence": float(r.confidence or 0.0),
                **{k: float((r.features or {})[k]) for k in FEATURE_NAMES},
            }
        )
        emb = r.embedding
        embeddings.append(list(emb) if emb and all(map(math.isfinite, emb)) else None)
    frame = pd.DataFrame(rows, columns=[*FRAME_COLUMNS, *FEATURE_NAMES])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame, embeddings


@dataclass
class LogFrame:
    """Usable records as a DataFrame (features flattened), plus raw embeddings and skip count."""

    frame: pd.DataFrame  # timestamp (UTC), endpoint, variant, model_version, artist, confidence, *
    embeddings: list[list[float] | None]
    skipped: int


def read_log(path: str | Path) -> LogFrame:
    """The whole log as a LogFrame (drift-usable records only). Small logs and tests; the drift
    check reads only its window (`read_window`)."""
    stats = ScanStats()
    records = read_records(path, stats)
    usable = [r for r in records if r.usable_for_drift]
    frame, embeddings = to_frame(usable)
    return LogFrame(frame, embeddings, stats.skipped + len(records) - len(usable))


def select_window(
    log: LogFrame, window: str, now: dt.datetime | None = None
) -> tuple[pd.DataFrame, list[list[float] | None]]:
    """The last N records, or the records of the last duration (ending now), oldest first."""
    spec = parse_window(window)
    ordered = log.frame.sort_values("timestamp", kind="stable")
    if isinstance(spec, int):
        ordered = ordered.iloc[-spec:]
    else:
        since = pd.Timestamp(now or dt.datetime.now(dt.UTC)) - spec
        ordered = ordered[ordered["timestamp"] >= since]
    embeddings = [log.embeddings[i] for i in ordered.index]
    return ordered.reset_index(drop=True), embeddings
