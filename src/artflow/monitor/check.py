"""`check_drift`: one window of the prediction log against the serving version's reference.

Used by `artflow drift` and as the first step of the retrain pipeline (its drift component).
Writes report.html + verdict.json under wd.reports/drift/<UTC time>/ and logs both to the
MLflow experiment `artflow-drift`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import ArtflowError, DataError
from artflow.monitor.embedding import Projection, project_frame
from artflow.monitor.quality_page import inject
from artflow.monitor.records import read_window, to_frame
from artflow.monitor.reference import Reference, load_reference
from artflow.monitor.report import DriftReport, compare
from artflow.monitor.s3log import local_copy, normalize
from artflow.registry import tracking

EXPERIMENT = "artflow-drift"


class DriftDetected(ArtflowError):
    """`artflow drift --fail-on-drift` on a drifted window (exit 1, like a refused gate)."""

    exit_code = 1


def current_frame(
    window: pd.DataFrame, embeddings: list[list[float] | None], projection: Projection
) -> pd.DataFrame:
    """The window with emb_* columns when every record carries an embedding of the right size.

    Without them (an older service, or a different model) the report covers features and
    predictions only; the verdict says so under `embedding`.
    """
    if embeddings and all(e is not None and len(e) == projection.dim for e in embeddings):
        return window.assign(**project_frame(np.asarray(embeddings), projection))
    return window


def take_window(
    settings: Settings, log_path: Path, version: str, window: str
) -> tuple[pd.DataFrame, list[list[float] | None], dict[str, Any]]:
    """Records of `version` (or of no stated version) in the window; DataError when too few.

    Streams only the log segments that can hold the window (artflow.monitor.records)."""
    records, stats = read_window(
        log_path, window, keep=lambda r: r.usable_for_drift and r.model_version in (version, "")
    )
    frame, embeddings = to_frame(records)
    others = sorted(stats.versions - {version, ""})
    info = {
        "spec": window,
        "records": len(frame),
        "log": str(log_path),
        "log_segments": stats.segments,
        "segments_read": stats.segments_read,
        "lines_read": stats.lines,
        "skipped_lines": stats.skipped,
        "other_versions_ignored": others,
        "start": frame["timestamp"].min().isoformat() if len(frame) else None,
        "end": frame["timestamp"].max().isoformat() if len(frame) else None,
    }
    need = settings.drift.min_window
    if len(frame) < need:
        also = f"; records of other versions {others} were left out" if others else ""
        raise DataError(
            f"the drift window {window!r} of {log_path} holds {len(frame)} prediction(s) of "
            f"model version {version}, fewer than drift.min_window={need}{also}",
            "send more requests, widen --window, or pick the version that served (--model-uri)",
        )
    return frame, embeddings, info


def check_drift(
    settings: Settings,
    wd: Workdir,
    log_path: str | Path,
    model_ref: str,
    window: str | None = None,
    log_to_mlflow: bool = True,
    reference: Reference | None = None,
    style_quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Drift verdict of the latest window; report files saved and logged. See module doc.

    `style_quality` (artflow.monitor.quality_check's verdict of the same run) goes into the
    verdict and at the top of the HTML report, so one report shows both checks."""
    started = time.perf_counter()
    window = str(window or settings.drift.window)
    ref = reference or load_reference(settings, wd, model_ref)
    with local_copy(log_path, window) as local:  # a folder, a file, or s3://... (shipped)
        frame, embeddings, info = take_window(settings, local, ref.model_version, window)
        others = _other_versions(settings, wd, ref, local, window, info)
    info["log"] = normalize(log_path)
    current = current_frame(frame, embeddings, ref.projection)
    report = compare(current, ref.frame, settings.drift.drift_share)
    verdict = report.verdict
    verdict.update(
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        model={"name": ref.model_name, "version": ref.model_version, "ref": model_ref},
        reference={"rows": len(ref.frame), "location": ref.location},
        window=info,
        embedding="compared" if "emb_0" in current.columns else "absent from the log",
        # every other version that served in the window, checked against its own reference
        other_versions=others,
        drifted_any_version=bool(verdict.get("drifted"))
        or any(bool(o.get("drifted")) for o in others.values()),
    )
    folder = wd.new_report_folder("drift")
    verdict["report"] = {
        "folder": str(folder),
        "html": str(folder / "report.html"),
        "json": str(folder / "verdict.json"),
    }
    verdict["seconds"] = round(time.perf_counter() - started, 2)
    if style_quality is not None:
        verdict["style_quality"] = style_quality
    report.save(folder)
    if style_quality is not None:
        inject(folder / "report.html", style_quality)
    if log_to_mlflow:
        _log(settings, report, folder, window)  # adds mlflow_run_id to verdict.json
    return verdict


def _other_versions(
    settings: Settings, wd: Workdir, ref: Reference, log: Path, window: str, info: dict
) -> dict[str, dict[str, Any]]:
    """Drift of each other version seen in the window (a canary's challenger, the version
    before a rollout), labelled by version; a version with too few records, or without a
    reference, says so instead of failing the main check."""
    out: dict[str, dict[str, Any]] = {}
    for version in info.get("other_versions_ignored", []):
        try:
            other = load_reference(settings, wd, f"models:/{ref.model_name}/{version}")
            frame, embeddings, _ = take_window(settings, log, version, window)
        except ArtflowError as exc:
            out[version] = {"checked": False, "reason": exc.message}
            continue
        current = current_frame(frame, embeddings, other.projection)
        report = compare(current, other.frame, settings.drift.drift_share)
        summary = {k: report.verdict.get(k) for k in ("drifted", "share", "drift_share")}
        out[version] = {"checked": True, "records": len(frame), **summary}
    return out


def _log(settings: Settings, report: DriftReport, folder: Path, window: str) -> str:
    import mlflow

    v = report.verdict
    tags = {
        "artflow.model_name": v["model"]["name"],
        "artflow.model_version": v["model"]["version"],
        "artflow.drifted": str(v["drifted"]).lower(),
    }
    params = {
        "window": window,
        "model": v["model"]["ref"],
        "drift_share": settings.drift.drift_share,
        "min_window": settings.drift.min_window,
    }
    name = f"drift-v{v['model']['version']}-{folder.name}"
    with tracking.start_run(EXPERIMENT, name, settings, params=params, tags=tags) as run:
        mlflow.log_metrics(
            {
                "drift_share": v["share"],
                "drifted_columns": v["drifted_columns"],
                "drifted": float(v["drifted"]),
                "window_records": v["window"]["records"],
            }
        )
        mlflow.log_artifact(str(folder / "report.html"), "drift_report")
        v["mlflow_run_id"] = run.info.run_id
        report.save(folder, html=False)
        mlflow.log_artifact(str(folder / "verdict.json"), "drift_report")
        return run.info.run_id
