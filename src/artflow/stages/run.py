"""The choreography every component shares: its entry, the work, its outputs sealed for the
cache, and switched-off steps that leave "nothing here" behind."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artflow.config import Settings
from artflow.stages.reports import seal
from artflow.stages.settings import begin

log = logging.getLogger("artflow.stages")

SKIPPED = "SKIPPED"  # marker file in a folder artifact that a disabled step left empty


def run(
    name: str,
    profile: str,
    mlflow_uri: str,
    outputs: dict[str, Any],
    work: Callable[[Settings], dict[str, Any]],
    skipped: str = "",
) -> dict[str, Any]:
    """One step: `work(settings)` fills `outputs` and returns the step's result; with
    `skipped` (the reason) the outputs say "nothing here" instead."""
    settings = begin(profile, mlflow_uri)
    if skipped:
        skip_outputs(outputs, f"{name}: {skipped}")
        return {}
    start = time.perf_counter()
    result = work(settings)
    log.info("%s: done in %.1f s", name, time.perf_counter() - start)
    seal(outputs)
    return result


def skip_outputs(outputs: dict[str, Any], reason: str) -> None:
    """Fill a disabled step's outputs so later steps see "nothing here"."""
    log.info("%s", reason)
    for artifact in outputs.values():
        kind = getattr(artifact, "schema_title", "")
        if kind == "system.Metrics":
            artifact.log_metric("skipped", 1.0)
        elif kind in ("system.Dataset", "system.Model"):
            Path(artifact.path).mkdir(parents=True, exist_ok=True)
            (Path(artifact.path) / SKIPPED).write_text(reason + "\n")
            artifact.metadata["skipped"] = reason
        elif kind in ("system.HTML", "system.Markdown"):
            Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
            Path(artifact.path).write_text(reason + "\n")
    seal(outputs)


def is_skipped(artifact: Any) -> bool:
    return (Path(artifact.path) / SKIPPED).is_file()
