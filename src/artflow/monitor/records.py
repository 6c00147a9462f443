"""The prediction-log record: one JSON line per classified image, and a tolerant reader.

Schema (what the service writes and `artflow drift` reads):
  timestamp      ISO-8601 UTC time of the request (epoch seconds are accepted on reading)
  endpoint       API endpoint, e.g. "classify"
  variant        "champion" | "challenger"
  model_name     registered model name
  model_version  registered version number, as a string
  artist         predicted artist (top-1)
  confidence     top-1 probability
  features       describe_image(...) of the uploaded image (artflow.monitor.features)
  embedding      optional: the classifier's penultimate-layer activations (raw, before PCA)

The reader skips lines it cannot use (torn writes, other endpoints, records without an
image) and counts them, so a log written by an older or newer service still yields a window.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artflow.errors import ConfigError, DataError
from artflow.monitor.features import FEATURE_NAMES, describe_image

# Accepted spellings on reading; the first one is what make_record writes.
_ARTIST_KEYS = ("artist", "predicted_artist", "prediction", "label")
_CONFIDENCE_KEYS = ("confidence", "score", "probability")
_TIME_KEYS = ("timestamp", "ts", "time")


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
    timestamp: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One log record for one classified image (JSON-ready: plain floats and strings)."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    top = int(probs.argmax())
    record: dict[str, Any] = {
        "timestamp": timestamp or now_iso(),
        "endpoint": endpoint,
        "variant": variant,
        "model_name": model_name,
        "model_version": str(model_version),
        "artist": str(labels[top]),
        "confidence": round(float(probs[top]), 6),
        "features": features if features is not None else describe_image(image),
        **extra,
    }
    if embedding is not None:
        record["embedding"] = [round(float(v), 5) for v in np.asarray(embedding).reshape(-1)]
    return record


def classify_records(
    classifier: Any, images: Sequence[np.ndarray], with_embedding: bool = True, **fields: Any
) -> list[dict[str, Any]]:
    """Records for a batch of images classified by a LoadedClassifier, as the service logs them."""
    probs = classifier.predict(images)
    vectors = classifier.embed(images) if with_embedding else [None] * len(images)
    meta = {"model_name": classifier.name, "model_version": classifier.version, **fields}
    return [
        make_record(img, p, classifier.labels, embedding=e, **meta)
        for img, p, e in zip(images, probs, vectors, strict=True)
    ]


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Append records as JSON lines (one write per record, like the service)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            n += 1
    return n


@dataclass
class LogFrame:
    """Usable records as a DataFrame (features flattened), plus raw embeddings and skip count."""

    frame: pd.DataFrame  # timestamp (UTC), endpoint, variant, model_version, artist, confidence, *
    embeddings: list[list[float] | None]
    skipped: int


def read_log(path: str | Path) -> LogFrame:
    """Parse a prediction log; DataError when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"prediction log {path} does not exist",
            "start the service and send images, or pass --log with the log's path",
        )
    rows, embeddings, skipped = [], [], 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parsed = _parse(line)
            if parsed is None:
                skipped += int(bool(line.strip()))
                continue
            row, embedding = parsed
            rows.append(row)
            embeddings.append(embedding)
    columns = ["timestamp", "endpoint", "variant", "model_version", "artist", "confidence"]
    frame = pd.DataFrame(rows, columns=[*columns, *FEATURE_NAMES])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return LogFrame(frame, embeddings, skipped)


def _parse(line: str) -> tuple[dict[str, Any], list[float] | None] | None:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict):
        return None
    artist = _first(rec, _ARTIST_KEYS)
    confidence = _first(rec, _CONFIDENCE_KEYS)
    feats = rec.get("features") if isinstance(rec.get("features"), dict) else rec
    when = _timestamp(_first(rec, _TIME_KEYS))
    if not isinstance(artist, str) or when is None or not _number(confidence):
        return None
    if not all(_number(feats.get(k)) for k in FEATURE_NAMES):
        return None
    row = {
        "timestamp": when,
        "endpoint": str(rec.get("endpoint", "")),
        "variant": str(rec.get("variant", "")),
        "model_version": str(rec.get("model_version") or ""),
        "artist": artist,
        "confidence": float(confidence),
        **{k: float(feats[k]) for k in FEATURE_NAMES},
    }
    emb = rec.get("embedding")
    ok = isinstance(emb, list) and emb and all(_number(v) for v in emb)
    return row, ([float(v) for v in emb] if ok else None)


def _first(rec: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if rec.get(key) is not None:
            return rec[key]
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        if _number(value):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


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
