"""Constants and a log writer shared by the drift tests."""

from __future__ import annotations

from pathlib import Path

from artflow.monitor.records import PredictionRecord
from artflow.serve.predlog import PredictionLog

WINDOW = 40  # requests per window (smoke drift.min_window is 20)
SHIFTS = ("photos", "other_artists", "darkened")


def write_log(folder: Path, name: str, records: list[PredictionRecord]) -> Path:
    """The records through the service's writer, as one pod's log under folder/name."""
    log = PredictionLog(folder / name, pod="test")
    for record in records:
        log.write(record)
    log.close()
    return folder / name
