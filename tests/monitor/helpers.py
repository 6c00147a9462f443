"""Constants and a log writer shared by the drift tests."""

from __future__ import annotations

from pathlib import Path

from artflow.monitor.records import append_records

WINDOW = 40  # requests per window (smoke drift.min_window is 20)
SHIFTS = ("photos", "other_artists", "darkened")


def write_log(folder: Path, name: str, records: list[dict]) -> Path:
    path = folder / f"{name}.jsonl"
    append_records(path, records)
    return path
