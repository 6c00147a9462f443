"""kfp's native report artifacts (Metrics, ClassificationMetrics, Markdown, HTML), and the
files that stand for them.

kfp's local cache restores a task only when every output artifact it recorded exists as a
file or folder; a Metrics artifact is metadata only, so `seal` writes it out as JSON (on a
cluster the same file is stored with the artifact)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

_AS_FILES = ("system.Metrics", "system.ClassificationMetrics")


def log_metrics(result: dict[str, Any], metrics: Any) -> None:
    """The numbers of a step result onto a kfp Metrics artifact (bools as 1.0 / 0.0)."""
    flat = {**result, **(result.get("metrics") or {})}
    for key, value in flat.items():
        if isinstance(value, int | float):
            metrics.log_metric(key, float(value))


def log_confusion(result: dict[str, Any], artifact: Any, split: str = "val") -> None:
    """A kfp ClassificationMetrics artifact: the confusion matrix of `split`."""
    matrix = (result.get("confusion") or {}).get(split)
    labels = result.get("labels")
    if matrix and labels:
        artifact.log_confusion_matrix(list(labels), [list(map(int, row)) for row in matrix])


def write_markdown(artifact: Any, title: str, body: str) -> None:
    """A kfp Markdown artifact (rendered by the Kubeflow UI)."""
    out = Path(artifact.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# {title}\n\n{body or '(nothing to report)'}\n")


def copy_report(artifact: Any, source: str | Path, title: str) -> None:
    """An HTML artifact: a copied report (a placeholder page when there is none)."""
    out = Path(artifact.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if source and Path(source).is_file():
        shutil.copy2(source, out)
    else:
        out.write_text(f"<!doctype html><meta charset=utf-8><title>{title}</title><p>no report\n")


def gate_reports(
    result: dict[str, Any], decision: Any, report: Any, model: str, version: str
) -> None:
    """The gate's decision as Metrics, its report as Markdown; the report's metadata says what
    was decided for which candidate (the local runner keeps a decision while the champion it
    left holds: pipelines/cache.py)."""
    log_metrics(result, decision)
    write_markdown(report, f"gate: {model}", result.get("markdown", result["reason"]))
    keep = ("passed", "promoted", "champion", "reason")
    report.metadata.update({"model": model, "candidate": version})
    report.metadata.update({k: result.get(k) for k in keep})


def drift_markdown(result: dict[str, Any]) -> str:
    share = result.get("share")
    lines = [
        f"- retrain: **{'yes' if result.get('retrain') else 'no'}**",
        f"- drifted: {'yes' if result.get('drifted') else 'no'}",
        f"- reason: {result.get('reason')}",
    ]
    if share is not None:
        lines.append(f"- share of drifted columns: {float(share):.2f}")
    return "\n".join(lines)


def seal(outputs: dict[str, Any]) -> None:
    """Every output artifact exists on disk: metrics as their JSON, folders and reports as
    they are (an empty folder or a placeholder where the step wrote nothing)."""
    for artifact in outputs.values():
        path, kind = Path(artifact.path), getattr(artifact, "schema_title", "")
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind in _AS_FILES:
            path.write_text(json.dumps(dict(artifact.metadata), indent=2, default=str))
        elif kind in ("system.Dataset", "system.Model"):
            path.mkdir(exist_ok=True)
        elif not path.exists():
            path.write_text("")
