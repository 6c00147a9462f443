"""The Evidently 0.7 drift report on a window of predictions against the reference.

One `DataDriftPreset` over three groups of columns: image features (describe_image), the
PCA-reduced embedding (emb_*) and the prediction (artist categorical, confidence numerical).
Evidently picks each column's test (K-S / chi-square for small samples, Wasserstein / Jensen-
Shannon for large ones) and the dataset drifts when the share of drifted columns reaches
settings.drift.drift_share. The JSON verdict is read back from the report itself.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from artflow.monitor.embedding import PREFIX
from artflow.monitor.features import FEATURE_NAMES

PREDICTION_COLUMNS = ("artist", "confidence")


@dataclass
class DriftReport:
    verdict: dict[str, Any]
    snapshot: Any  # evidently Snapshot (save_html / dict)

    def save(self, folder: Path, html: bool = True) -> tuple[Path, Path]:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        page, verdict = folder / "report.html", folder / "verdict.json"
        if html:
            self.snapshot.save_html(str(page))
        verdict.write_text(json.dumps(self.verdict, indent=2))
        return page, verdict


def kind_of(column: str) -> str:
    if column in PREDICTION_COLUMNS:
        return "prediction"
    return "embedding" if column.startswith(PREFIX) else "feature"


def compare(current: pd.DataFrame, reference: pd.DataFrame, drift_share: float) -> DriftReport:
    """Run the preset on the columns both frames share; the verdict as plain JSON types."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in _columns(reference) if c in current.columns]
    numerical = [c for c in columns if c != "artist"]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=["artist"])
    datasets = [
        Dataset.from_pandas(_typed(frame[columns]), data_definition=definition)
        for frame in (current, reference)
    ]
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    with _quiet():
        snapshot = report.run(*datasets)  # current first, reference second
    return DriftReport(_verdict(snapshot.dict(), drift_share), snapshot)


def quick_verdict(current: pd.DataFrame, reference: pd.DataFrame, drift_share: float) -> dict:
    """The same verdict as `compare(...).verdict`, without the report's plots (~20x faster).

    It runs the very tests `DataDriftPreset` runs (Evidently's default test choice and
    threshold per column), so many windows can be checked cheaply, e.g. to measure the
    false-alarm rate; `compare` remains the report people read.
    """
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    columns = []
    for column in (c for c in _columns(reference) if c in current.columns):
        kind = ColumnType.Categorical if column == "artist" else ColumnType.Numerical
        ref, cur = reference[column], current[column]
        if kind is ColumnType.Categorical:
            ref, cur = ref.astype(str), cur.astype(str)
        test = get_stattest(ref, cur, kind, None)
        with _quiet():
            result = test(ref, cur, kind, None)
        score = float(result.drift_score)
        columns.append(
            {
                "column": column,
                "kind": kind_of(column),
                "test": test.display_name,
                "score": score if math.isfinite(score) else None,
                "threshold": float(result.actual_threshold),
                "drifted": bool(result.drifted),
            }
        )
    return _summarise(columns, drift_share)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Evidently's correlation and chi-square steps divide by zero on constant columns (e.g. a
    window of same-sized photos) and say so on stderr; the verdict handles those cases."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _columns(reference: pd.DataFrame) -> list[str]:
    emb = sorted((c for c in reference.columns if c.startswith(PREFIX)), key=lambda c: int(c[4:]))
    return [*FEATURE_NAMES, *emb, *PREDICTION_COLUMNS]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["artist"] = out["artist"].astype(str)
    return out


def _verdict(result: dict[str, Any], drift_share: float) -> dict[str, Any]:
    """DriftedColumnsCount -> dataset share; each ValueDrift metric + its test -> one column."""
    status = {
        t["metric_config"]["metric_id"]: t["status"]
        for t in result.get("tests", [])
        if t.get("id") == "drift"
    }
    share, count, columns = 0.0, 0, []
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share, count = float(metric["value"]["share"]), int(metric["value"]["count"])
        elif kind.endswith("ValueDrift"):
            columns.append(_column(metric, status.get(metric["id"])))
    if not columns:
        raise ValueError("the Evidently report holds no per-column drift results")
    verdict = _summarise(columns, drift_share)
    # The dataset verdict is Evidently's own count (the per-column list agrees with it).
    verdict.update(drifted=bool(share >= drift_share), share=share, drifted_columns=count)
    return verdict


def _summarise(columns: list[dict[str, Any]], drift_share: float) -> dict[str, Any]:
    columns.sort(key=lambda c: (not c["drifted"], c["kind"], c["column"]))
    count = sum(c["drifted"] for c in columns)
    share = count / len(columns)
    return {
        "drifted": bool(share >= drift_share),
        "share": share,
        "drifted_columns": count,
        "columns": len(columns),
        "drift_share_threshold": float(drift_share),
        "drifted_features": [c["column"] for c in columns if c["drifted"]],
        "tests": columns,
    }


def _column(metric: dict[str, Any], status: str | None) -> dict[str, Any]:
    config = metric["config"]
    method, threshold = str(config.get("method")), float(config.get("threshold"))
    score = float(metric["value"])
    if status is None:  # no test attached: decide as Evidently does (p-value below, distance above)
        drifted = score < threshold if "p_value" in method else score >= threshold
    else:
        drifted = status == "FAIL"
    return {
        "column": config["column"],
        "kind": kind_of(config["column"]),
        "test": method,
        "score": score if math.isfinite(score) else None,
        "threshold": threshold,
        "drifted": bool(drifted),
    }
