"""`check_quality`: the style models' served answers of one window against the gate's reference.

The rows come from the reader the caller passes (the CLI passes the serving store's
`style_window`: the monitoring layer does not import serving, docs/architecture.md); the
references and the champions from the registry. Writes report.html + verdict.json under
wd.reports/quality/<UTC time>/ and logs both to the MLflow experiment `artflow-drift`
(run `quality-...`, tag artflow.check=style_quality).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artflow import families
from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.monitor.quality import Reference, judge
from artflow.monitor.quality_page import page
from artflow.monitor.records import parse_window
from artflow.registry import tracking

EXPERIMENT = "artflow-drift"
GATE_PASSED = ("gate.decision", "passed")  # the tag the gate sets on a version it passed

# since (epoch seconds), model name or None -> rows {answer_id, at, endpoint, model_name,
# model_version, method, scores: dict | None, rating: int | None}
Reader = Callable[[float, str | None], list[dict[str, Any]]]


def window_bounds(
    window: str, lookback_h: float, now: float | None = None
) -> tuple[float, int | None]:
    """(since, count): a count window reads back at most `lookback_h` hours (the store keeps
    months of answers), a duration window reads exactly its duration."""
    now = time.time() if now is None else now
    spec = parse_window(window)
    if isinstance(spec, int):
        return now - lookback_h * 3600.0, spec
    return now - spec.total_seconds(), None


def gate_metric(metrics: dict[str, float], key: str) -> float | None:
    """The measure as the gate reads it from a version's run (artflow.promote's lookup)."""
    for name in (key, f"test_{key}", f"final_{key}", f"val_{key}"):
        if name in metrics and math.isfinite(metrics[name]):
            return float(metrics[name])
    return None


def _run_metrics(mv: Any) -> dict[str, float]:
    run = tracking.get_run(mv.run_id) if getattr(mv, "run_id", None) else None
    return dict(run.data.metrics) if run is not None else {}


def _passed(mv: Any) -> bool:
    return (getattr(mv, "tags", None) or {}).get(GATE_PASSED[0]) == GATE_PASSED[1]


def gate_reference(name: str, version: str, keys: set[str]) -> Reference | None:
    """The measures `version` is held to: its own run's when the gate passed it; else (a
    version made champion past the gate) those of the newest version the gate passed; else
    its own run's, said so. None when the version is unknown."""
    from artflow.registry.views import HIGHER_IS_BETTER, STYLE_METRICS

    mv = tracking.model_version(name, version)
    if mv is None:
        return None
    chosen, source = mv, f"the gate's measures of v{version} (passed)"
    if not _passed(mv):
        passed = [v for v in tracking.search_versions(name) if _passed(v)]
        if passed:
            chosen = max(passed, key=lambda v: int(v.version))
            source = (
                f"v{version} was not passed by the gate: the newest it passed, v{chosen.version}"
            )
        else:
            source = f"its own run (no version of {name} passed the gate)"
    raw = _run_metrics(chosen)
    metrics = {
        k: v for k in sorted(set(STYLE_METRICS) | keys) if (v := gate_metric(raw, k)) is not None
    }
    return Reference(name, str(chosen.version), metrics, source, frozenset(HIGHER_IS_BETTER))


def champions(names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        mv = tracking.alias_version(name, "champion")
        if mv is not None:
            out[name] = str(mv.version)
    return out


def check_quality(
    settings: Settings,
    wd: Workdir,
    reader: Reader,
    window: str | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """The style quality verdict of the latest window; report files saved and logged."""
    cfg = settings.drift.style_quality
    window = str(window or settings.drift.window)
    since, count = window_bounds(window, cfg.lookback_h)
    served = {m.name for m in families.models("style")}
    rows = [r for r in reader(since, None) if r.get("model_name") in served]
    names = sorted({str(r["model_name"]) for r in rows})
    keys = {k for r in rows for k in (r.get("scores") or {})}
    pairs = sorted(
        {(str(r["model_name"]), str(r["model_version"])) for r in rows if r.get("model_version")}
    )
    references = {(n, v): gate_reference(n, v, keys) for n, v in pairs}
    verdict = judge(rows, references, champions(names), cfg, count)
    verdict["window"] = {
        "spec": window,
        "since": dt.datetime.fromtimestamp(since, dt.UTC).isoformat(timespec="seconds"),
        "count": count,
        "answers": len(rows),
    }
    verdict["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    folder = wd.new_report_folder("quality")
    verdict["report"] = {"html": str(folder / "report.html"), "json": str(folder / "verdict.json")}
    save(verdict, folder)
    if log_to_mlflow and rows:  # an empty window (no style traffic) is not worth a run
        _log(settings, verdict, folder)
    return verdict


def report_location(verdict: dict[str, Any]) -> str:
    """The verdict's MLflow artifact URI when it was logged, else the local file."""
    if verdict.get("mlflow_run_id"):
        return f"runs:/{verdict['mlflow_run_id']}/quality_report/verdict.json"
    return str((verdict.get("report") or {}).get("json", ""))


def save(verdict: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.html").write_text(page(verdict))
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str))


def _metrics(verdict: dict[str, Any]) -> dict[str, float]:
    """Per champion: its window means and mean rating, e.g. `stylizer.content_loss`."""
    out: dict[str, float] = {"answers": float(verdict["answers"])}
    for v in verdict["versions"]:
        if not v["champion"]:
            continue
        model = families.model(v["model_name"])
        short = model.short if model else v["model_name"]
        for key, m in v["scores"]["measures"].items():
            out[f"{short}.{key}"] = float(m["window"])
        if v["ratings"]["mean"] is not None:
            out[f"{short}.rating"] = float(v["ratings"]["mean"])
        out[f"{short}.degraded"] = float(v["degraded"])
    return out


def _log(settings: Settings, verdict: dict[str, Any], folder: Path) -> None:
    import mlflow

    tags = {
        "artflow.check": "style_quality",
        "artflow.degraded": str(bool(verdict["degraded"])).lower(),
    }
    params = {
        "window": verdict["window"]["spec"],
        **{f"style_quality.{k}": v for k, v in verdict["thresholds"].items()},
    }
    with tracking.start_run(
        EXPERIMENT, f"quality-{folder.name}", settings, params=params, tags=tags
    ) as run:
        mlflow.log_metrics(_metrics(verdict))
        verdict["mlflow_run_id"] = run.info.run_id
        save(verdict, folder)
        mlflow.log_artifact(str(folder / "report.html"), "quality_report")
        mlflow.log_artifact(str(folder / "verdict.json"), "quality_report")
