"""The closed loop: a drifted verdict (or --force) starts the `retrain` pipeline and says why;
a style champion whose served quality degraded (artflow.monitor.quality) starts the `style`
pipeline for its families alone (`trigger_style_retrain`), through the same record, lock
and cool-down (trigger kind `quality`).

Why is recorded three ways:
  * an MLflow run `retrain-trigger-...` (experiment `artflow-retrain`) tagged
    artflow.trigger=drift|manual, with the drift report HTML + verdict JSON as artifacts;
  * every MLflow run the pipeline's steps start carries the same tags (ARTFLOW_RUN_TAGS,
    read by `artflow.registry.tracking.lineage_tags`), pointing at the trigger run and the report;
  * the report's location goes to the pipeline as its `trigger_report` parameter when the
    pipeline declares one, and (locally) the prediction log as `prediction_log`.
The pipeline's own drift step checks again; policy `always` makes it go ahead regardless,
because the decision was taken here (and recorded) already.

The pipeline gets the data source and the MLflow URI from this process's configuration
(`data.source` in params.yaml or `--source`; MLFLOW_TRACKING_URI), never a local path of
the job that fired it. It is not started again while a retrain for the same model version
and trigger is running or has just finished: the trigger runs are that state, queryable by
every pod (tag `artflow.trigger_key`, `artflow.retrain_status`), and
`drift.retrain_cooldown_h` is how long one blocks the next.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from artflow.config import Settings
from artflow.data.layout import Workdir, default_source
from artflow.registry import tracking

EXPERIMENT = "artflow-retrain"
PIPELINE = "retrain"
STYLE_PIPELINE = "style"  # the quality trigger's: the style models' own training
KEY_TAG, STATUS_TAG = "artflow.trigger_key", "artflow.retrain_status"

log = logging.getLogger(__name__)


class Runner(Protocol):
    """Starts pipeline `name` with its parameters (locally, or submitted to `host`) and says
    what happened. The CLI passes the one over pipelines/ (artflow.commands.pipeline): the
    library below it never imports the orchestration (docs/architecture.md)."""

    def __call__(
        self, name: str, *, settings: Settings, wd: Workdir, host: str | None, **arguments: Any
    ) -> dict[str, Any]: ...


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
    runner: Runner,
    host: str | None = None,
    force: bool = False,
    source: str | None = None,
    cooldown_h: float | None = None,
) -> dict[str, Any]:
    """Start the retrain pipeline when `verdict` drifted or `force`; returns what happened.

    `source` is the data the pipeline ingests (default: `data.source` of the settings);
    `cooldown_h` overrides `drift.retrain_cooldown_h`."""
    if not (verdict.get("drifted") or force):
        return {"triggered": False, "reason": "no drift in the window; nothing to do"}
    trigger = "drift" if verdict.get("drifted") else "manual"
    reason = _reason(verdict, trigger)
    location = report_location(verdict)
    model = verdict.get("model") or {}
    key = trigger_key(model, trigger)
    arguments: dict[str, Any] = {
        "policy": "always",
        "mlflow_uri": pipeline_mlflow_uri(),
        # as given, else data.source; a relative local path made absolute for the local runner
        "source": default_source(settings, source, local=not host),
    }
    if not host:  # a cluster's steps read their own log on the data volume, not this path
        arguments["prediction_log"] = str(Path(log_path))
    start = Start(PIPELINE, trigger, reason, key, location, arguments, model.get("name") or "")
    return _start(settings, wd, start, runner, host, cooldown_h, lambda: _attach_report(verdict))


def trigger_style_retrain(
    settings: Settings,
    wd: Workdir,
    verdict: dict[str, Any],
    runner: Runner,
    host: str | None = None,
    source: str | None = None,
    cooldown_h: float | None = None,
) -> list[dict[str, Any]]:
    """Start the `style` pipeline for each champion the quality verdict found degraded
    (artflow.monitor.quality_check), training only that model's families; one outcome each.

    Same state, lock and cool-down as the drift trigger; the key's kind is `quality`."""
    from artflow import families
    from artflow.monitor.quality_check import report_location as quality_location

    outcomes = []
    for degraded in verdict.get("degraded", []):
        name, version = degraded["model_name"], degraded["version"]
        mine = next(
            v for v in verdict["versions"] if (v["model_name"], v["version"]) == (name, version)
        )
        arguments: dict[str, Any] = {
            "mlflow_uri": pipeline_mlflow_uri(),
            "source": default_source(settings, source, local=not host),
            "families_only": ",".join(f.name for f in families.by_registry_name(name)),
        }
        key = trigger_key({"name": name, "version": version}, "quality")
        reason = f"{name} v{version}: " + "; ".join(mine["reasons"])
        start = Start(
            STYLE_PIPELINE, "quality", reason, key, quality_location(verdict), arguments, name
        )
        outcomes.append(
            _start(settings, wd, start, runner, host, cooldown_h, lambda: _attach_quality(verdict))
        )
    return outcomes


@dataclass(frozen=True)
class Start:
    """One retrain to start: which pipeline, why, its state's key, the report, its parameters."""

    pipeline: str
    trigger: str
    reason: str
    key: str
    location: str
    arguments: dict[str, Any]
    model_name: str


def _start(
    settings: Settings,
    wd: Workdir,
    start: Start,
    runner: Runner,
    host: str | None,
    cooldown_h: float | None,
    attach: Callable[[], None],
) -> dict[str, Any]:
    """Record the trigger run and start the pipeline, unless the cool-down holds it back."""
    # Check and record under one lock, so that two drift jobs at once start one retrain.
    with tracking.registry_lock(f"{start.model_name or tracking.CLASSIFIER}.retrain"):
        cooldown = settings.drift.retrain_cooldown_h if cooldown_h is None else cooldown_h
        previous = recent_trigger(start.key, cooldown)
        if previous is not None:
            return _held_back(previous, start.key, cooldown)
        with tracking.start_run(
            EXPERIMENT,
            f"retrain-trigger-{start.trigger}",
            settings,
            params={"pipeline": start.pipeline, "where": host or "local", **start.arguments},
            tags={
                "artflow.trigger": start.trigger,
                "artflow.trigger_reason": start.reason[:5000],
                "artflow.trigger_report": start.location,
                KEY_TAG: start.key,
                STATUS_TAG: "starting",
            },
        ) as run:
            attach()
    # The trigger run is closed before the pipeline starts: its steps open runs of their own
    # (in this process for some runners), and MLflow allows one active run per process.
    run_id = run.info.run_id
    tags = {
        "artflow.trigger": start.trigger,
        "artflow.trigger_run": run_id,
        "artflow.trigger_report": start.location,
    }
    try:
        with _run_tags(tags):
            result = dict(
                runner(
                    start.pipeline,
                    settings=settings,
                    wd=wd,
                    host=host,
                    trigger_report=start.location,
                    **start.arguments,
                )
            )
    except BaseException as exc:
        _record(run_id, {"status": "failed", "error": str(exc)[:500]})
        raise
    _record(run_id, {"status": "submitted" if host else "finished", **result})
    return {
        "triggered": True,
        "trigger": start.trigger,
        "pipeline": start.pipeline,
        "reason": start.reason,
        "report": start.location,
        "trigger_run_id": run_id,
        "trigger_key": start.key,
        "where": host or "local",
        "result": result,
    }


def trigger_key(model: dict[str, Any], trigger: str) -> str:
    """What makes two triggers "the same retrain": the model version and the trigger kind."""
    name = model.get("name") or tracking.CLASSIFIER
    return f"{name}/v{model.get('version', '?')}/{trigger}"


def pipeline_mlflow_uri() -> str:
    """The MLflow URI handed to the pipeline as a parameter. Parameters show in the Kubeflow
    UI: a URI with a password stays out (the steps read it from their Secret instead)."""
    uri = tracking.tracking_uri()
    return "" if tracking.redacted(uri) != uri else uri


def recent_trigger(key: str, cooldown_h: float) -> Any | None:
    """The newest trigger run for `key` started within the cool-down that did not fail."""
    import mlflow

    if cooldown_h <= 0:
        return None
    tracking.use_mlflow()
    exp = tracking.ask(
        f"experiment {EXPERIMENT}", lambda: mlflow.get_experiment_by_name(EXPERIMENT)
    )
    if exp is None:
        return None
    since = int((dt.datetime.now(dt.UTC).timestamp() - cooldown_h * 3600) * 1000)
    query = f"tags.`{KEY_TAG}` = '{key}' and attributes.start_time >= {since}"
    runs = tracking.ask(
        f"the recent retrain triggers ({key})",
        lambda: tracking.client().search_runs(
            [exp.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=20
        ),
    )
    return next((r for r in runs or [] if r.data.tags.get(STATUS_TAG) != "failed"), None)


def _held_back(previous: Any, key: str, cooldown_h: float) -> dict[str, Any]:
    started = dt.datetime.fromtimestamp(previous.info.start_time / 1000, tz=dt.UTC)
    until = started + dt.timedelta(hours=cooldown_h)
    status = previous.data.tags.get(STATUS_TAG, "unknown")
    reason = (
        f"not started again: a retrain for {key} was started at "
        f"{started.isoformat(timespec='seconds')} (trigger run {previous.info.run_id}, status "
        f"{status}); the cool-down (drift.retrain_cooldown_h = {cooldown_h:g}) lasts until "
        f"{until.isoformat(timespec='seconds')}"
    )
    log.info("%s", reason)
    return {
        "triggered": False,
        "reason": reason,
        "trigger_key": key,
        "previous_run_id": previous.info.run_id,
        "previous_status": status,
        "cooldown_until": until.isoformat(timespec="seconds"),
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


def _attach_quality(verdict: dict[str, Any]) -> None:
    import mlflow

    report = verdict.get("report") or {}
    for key in ("html", "json"):
        if report.get(key) and Path(report[key]).is_file():
            mlflow.log_artifact(report[key], "quality_report")
    mlflow.log_metric("degraded_models", float(len(verdict.get("degraded", []))))


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


def _record(run_id: str, result: dict[str, Any]) -> None:
    """What the pipeline did, on the (closed) trigger run."""
    client = tracking.client()
    client.log_dict(run_id, json.loads(json.dumps(result, default=str)), "retrain_result.json")
    client.set_tag(run_id, STATUS_TAG, result["status"])
    if "seconds" in result:
        client.log_metric(run_id, "retrain_seconds", float(result["seconds"]))
