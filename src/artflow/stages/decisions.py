"""The decision steps' work: the promotion gate and the scheduled retrain's drift check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artflow.config import Settings
from artflow.data.layout import Workdir


def gate(settings: Settings, wd: Workdir, model_name: str, candidate: str) -> dict[str, Any]:
    """The promotion gate inside a pipeline: the decision is an output, never an exception."""
    if not candidate:
        return {"passed": False, "promoted": False, "reason": "no candidate was trained"}
    from artflow.promote import promote

    decision = promote(settings, wd, model_name, candidate, strict=False)
    out = decision.to_dict()
    out.pop("evaluations", None)
    return {**out, "markdown": decision.markdown()}


def champion_left(result: dict[str, Any]) -> str | None:
    """The champion a recorded gate decision left behind."""
    left = result.get("candidate") if result.get("promoted") else result.get("champion")
    return str(left) if left else None


def drift_check(
    settings: Settings,
    wd: Workdir,
    policy: str = "drift",
    log_path: str = "",
    model_ref: str = "champion",
    trigger_report: str = "",
) -> dict[str, Any]:
    """Should the scheduled retrain go ahead? Never cached: traffic changes between runs.

    policy "always" retrains on every run (`artflow drift` uses it after its own check and
    passes the report that triggered it); "drift" only when the latest window of logged
    predictions drifted from the reference (no usable log means no evidence of drift).
    """
    from artflow.errors import ArtflowError, ConfigError

    if policy not in ("drift", "always"):
        raise ConfigError(f"unknown retrain policy {policy!r}", "use drift or always")
    if policy == "always":  # e.g. started by `artflow drift` after its own check: no rework
        why = f"policy always (trigger report: {trigger_report})" if trigger_report else "always"
        return {"retrain": True, "drifted": False, "reason": why, "report_html": ""}
    log_file = log_path or settings.serve.prediction_log
    if "://" not in str(log_file) and not Path(log_file).exists():  # before importing Evidently
        reason = f"no drift verdict: no prediction log at {log_file}"
        return {"retrain": False, "drifted": False, "reason": reason, "report_html": ""}
    try:
        from artflow.monitor.check import check_drift

        verdict = check_drift(settings, wd, log_file, model_ref)
        drifted, reason = bool(verdict.get("drifted")), "drift check ran"
    except ArtflowError as exc:
        verdict, drifted, reason = {}, False, f"no drift verdict: {exc.message}"
    return {
        "retrain": drifted,
        "drifted": drifted,
        "reason": "drift detected" if drifted else reason,
        "report_html": (verdict.get("report") or {}).get("html", ""),
        "share": verdict.get("share"),
    }
