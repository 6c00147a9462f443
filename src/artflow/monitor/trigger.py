"""The closed loop: a drifted verdict (or --force) starts the `retrain` pipeline and says why.

Why is recorded three ways:
  * an MLflow run `retrain-trigger-...` (experiment `artflow-retrain`) tagged
    artflow.trigger=drift|manual, with the drift report HTML + verdict JSON as artifacts;
  * every MLflow run the pipeline's steps start carries the same tags (ARTFLOW_RUN_TAGS,
    read by `artflow.tracking.lineage_tags`), pointing at the trigger run and the report;
  * the report's location goes to the pipeline as its `trigger_report` parameter when the
    pipeline declares one, and (locally) the prediction log as `prediction_log`.
The pipeline's own drift step checks again; policy `always` makes it go ahead regardless,
because the decision was taken here (and recorded) already.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artflow import tracking
from artflow.config import PROJECT_ROOT, Settings
from artflow.data.layout import Workdir

EXPERIMENT = "artflow-retrain"
PIPELINE = "retrain"

Runner = Callable[..., Any]


def report_location(verdict: dict[str, Any]) -> str:
    """The verdict's MLflow artifact URI when it was logged (reachable from a cluster), else
    the local file."""
    run_id = verdict.get("mlflow_run_id")
    if run_id:
        return f"runs:/{run_id}/drift_report/verdict.json"
    return str((verdict.get("report") or {}).get("json", ""))


def trigger_retrain(
    settings: Settings,
    wd: Workdir,
    verdict: dict[str, Any],
    log_path: str | Path,
    host: str | None = None,
    force: bool = False,
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Start the retrain pipeline when `verdict` drifted or `force`; returns what happened."""
    if not (verdict.get("drifted") or force):
        return {"triggered": False, "reason": "no drift in the window; nothing to do"}
    trigger = "drift" if verdict.get("drifted") else "manual"
    reason = _reason(verdict, trigger)
    location = report_location(verdict)
    arguments: dict[str, Any] = {"policy": "always"}
    if not host:  # a cluster's steps read their own log on the data volume, not this path
        arguments["prediction_log"] = str(Path(log_path))
    with tracking.start_run(
        EXPERIMENT,
        f"retrain-trigger-{trigger}",
        settings,
        params={"pipeline": PIPELINE, "where": host or "local"},
        tags={
            "artflow.trigger": trigger,
            "artflow.trigger_reason": reason,
            "artflow.trigger_report": location,
        },
    ) as run:
        _attach_report(verdict)
    # The trigger run is closed before the pipeline starts: its steps open runs of their own
    # (in this process for some runners), and MLflow allows one active run per process.
    run_id = run.info.run_id
    tags = {
        "artflow.trigger": trigger,
        "artflow.trigger_run": run_id,
        "artflow.trigger_report": location,
    }
    try:
        with _run_tags(tags):
            result = _start(settings, wd, arguments, location, host, runner)
    except BaseException as exc:
        _record(run_id, {"status": "failed", "error": str(exc)[:500]})
        raise
    _record(run_id, {"status": "submitted" if host else "finished", **result})
    return {
        "triggered": True,
        "trigger": trigger,
        "reason": reason,
        "report": location,
        "trigger_run_id": run_id,
        "where": host or "local",
        "result": result,
    }


def _reason(verdict: dict[str, Any], trigger: str) -> str:
    if trigger == "manual":
        return f"forced (--force); window drift share {verdict.get('share', 0):.2f}"
    cols = ", ".join(verdict.get("drifted_features", [])[:8])
    return (
        f"{verdict['drifted_columns']}/{verdict['columns']} columns drifted "
        f"(share {verdict['share']:.2f} >= {verdict['drift_share_threshold']:.2f}): {cols}"
    )


def _attach_report(verdict: dict[str, Any]) -> None:
    import mlflow

    report = verdict.get("report") or {}
    for key in ("html", "json"):
        if report.get(key) and Path(report[key]).is_file():
            mlflow.log_artifact(report[key], "drift_report")
    mlflow.log_metrics(
        {
            "drift_share": float(verdict.get("share", 0.0)),
            "drifted": float(bool(verdict.get("drifted"))),
        }
    )


@contextmanager
def _run_tags(tags: dict[str, str]):
    """Set ARTFLOW_RUN_TAGS for this process and the pipeline's subprocesses, then restore."""
    old = os.environ.get(tracking.RUN_TAGS_ENV)
    os.environ[tracking.RUN_TAGS_ENV] = json.dumps({**tracking.env_tags(), **tags})
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(tracking.RUN_TAGS_ENV, None)
        else:
            os.environ[tracking.RUN_TAGS_ENV] = old


def _pipelines() -> Any:
    """pipelines/ lives at the project root, beside src/ (as in `artflow pipeline`)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import pipelines

    return pipelines


def _declares(name: str, parameter: str) -> bool:
    spec = getattr(_pipelines().load(name), "component_spec", None)
    return parameter in (getattr(spec, "inputs", None) or {})


def _start(
    settings: Settings,
    wd: Workdir,
    arguments: dict[str, Any],
    location: str,
    host: str | None,
    runner: Runner | None,
) -> dict[str, Any]:
    if runner is None and _declares(PIPELINE, "trigger_report"):
        arguments["trigger_report"] = location
    if runner is not None:
        return dict(runner(PIPELINE, wd=wd, host=host, profile=settings.profile, **arguments))
    profile = "" if settings.profile == "default" else settings.profile
    if host:
        _pipelines()
        from pipelines.kubeflow_runner import submit

        run_id = submit(PIPELINE, host, {"profile": profile, "workdir": str(wd.root), **arguments})
        return {"submitted": True, "host": host, "run_id": run_id}
    _pipelines()
    from pipelines.local_runner import run_local

    return run_local(PIPELINE, wd.root, profile, **arguments)


def _record(run_id: str, result: dict[str, Any]) -> None:
    """What the pipeline did, on the (closed) trigger run."""
    client = tracking.client()
    client.log_dict(run_id, json.loads(json.dumps(result, default=str)), "retrain_result.json")
    client.set_tag(run_id, "artflow.retrain_status", result["status"])
    if "seconds" in result:
        client.log_metric(run_id, "retrain_seconds", float(result["seconds"]))
