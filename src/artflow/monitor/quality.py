"""Is a served style model still as good as the gate measured? Pure judging, no I/O.

The serving store holds, per stylization answer, its model version, the quality scores a
background worker computed for a sample of answers (the gate's own measures) and the user's
rating. `judge` takes those rows, each version's gate reference (`Reference`) and the
thresholds (`drift.style_quality`) and says, per version, what the window measured beside the
reference and whether it degraded:

  * a measure is worse than the reference by `max_drop` or more (a loss grew by that share,
    SSIM or another higher-is-better measure shrank by it), over at least `min_scored` scored
    answers; or
  * the mean rating is under `rating_floor` over at least `min_ratings` ratings (an absolute
    floor: a new version has no earlier ratings to be compared with, and the 1-5 scale means
    the same for every version).

Only the champion's verdict starts a retrain (artflow.monitor.trigger.trigger_style_retrain):
a challenger that does badly loses its A/B test instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from artflow.config import StyleQualityCfg

# What each gate measure stands for, in a trigger's reason ("content preservation -18%").
LABELS = {
    "content_loss": "content preservation",
    "style_loss": "style fidelity",
    "ssim": "structural similarity",
    "cycle_l1": "cycle consistency",
    "monet_distance": "Monet likeness",
}
# The registry views' list (artflow.registry.views.HIGHER_IS_BETTER) plus what the served
# scores may add; every other measure is a loss.
HIGHER_IS_BETTER = {"ssim"}


@dataclass(frozen=True)
class Reference:
    """The gate's measures a version is held to: those of `version` (its own when the gate
    passed it, else the newest version the gate passed), and where they came from."""

    model_name: str
    version: str
    metrics: dict[str, float]
    source: str = ""
    higher_is_better: frozenset[str] = field(default_factory=frozenset)

    def better_high(self, key: str) -> bool:
        return key in self.higher_is_better or key in HIGHER_IS_BETTER


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def drop(window: float, reference: float, higher_is_better: bool) -> float:
    """How much worse `window` is than `reference`, as a share of it (negative: better)."""
    if reference == 0 or not (math.isfinite(window) and math.isfinite(reference)):
        return 0.0
    change = (window - reference) / abs(reference)
    return -change if higher_is_better else change


def newest(rows: list[dict[str, Any]], count: int | None) -> list[dict[str, Any]]:
    """The `count` newest rows (all of them for a duration window)."""
    ordered = sorted(rows, key=lambda r: float(r.get("at") or 0.0))
    return ordered if count is None else ordered[-count:]


def judge_scores(
    rows: list[dict[str, Any]], ref: Reference | None, cfg: StyleQualityCfg, count: int | None
) -> dict[str, Any]:
    """The window's mean of every measure beside the reference's, and which dropped."""
    scored = newest([r for r in rows if r.get("scores")], count)
    out: dict[str, Any] = {"scored": len(scored), "min_scored": cfg.min_scored, "measures": {}}
    keys = sorted({k for r in scored for k in r["scores"]})
    for key in keys:
        values = [float(r["scores"][key]) for r in scored if _finite(r["scores"].get(key))]
        if not values:
            continue
        mean = sum(values) / len(values)
        row: dict[str, Any] = {"label": label(key), "window": mean, "answers": len(values)}
        if ref is not None and _finite(ref.metrics.get(key)):
            row["reference"] = float(ref.metrics[key])
            row["drop"] = drop(mean, row["reference"], ref.better_high(key))
            row["degraded"] = len(values) >= cfg.min_scored and row["drop"] >= cfg.max_drop
        out["measures"][key] = row
    compared = [m for m in out["measures"].values() if "reference" in m]
    out["judged"] = bool(compared) and len(scored) >= cfg.min_scored
    out["degraded"] = any(m.get("degraded") for m in compared)
    return out


def judge_ratings(
    rows: list[dict[str, Any]], cfg: StyleQualityCfg, count: int | None
) -> dict[str, Any]:
    rated = newest([r for r in rows if r.get("rating") is not None], count)
    ratings = [float(r["rating"]) for r in rated]
    mean = sum(ratings) / len(ratings) if ratings else None
    judged = len(ratings) >= cfg.min_ratings
    return {
        "count": len(ratings),
        "mean": mean,
        "floor": cfg.rating_floor,
        "min_ratings": cfg.min_ratings,
        "judged": judged,
        "degraded": judged and mean is not None and mean < cfg.rating_floor,
    }


def reasons(version: dict[str, Any], ref: Reference | None) -> list[str]:
    """One line per degraded figure, e.g. "content preservation -18% over the last 500
    scored answers (content_loss 0.61 vs 0.52 at the gate, v1)"."""
    out = []
    scores = version["scores"]
    at_gate = f"at the gate, v{ref.version}" if ref else "at the gate"
    for key, m in scores["measures"].items():
        if m.get("degraded"):
            out.append(
                f"{m['label']} -{m['drop']:.0%} over the last {m['answers']} scored answers "
                f"({key} {m['window']:.4g} vs {m['reference']:.4g} {at_gate})"
            )
    r = version["ratings"]
    if r["degraded"]:
        out.append(
            f"mean rating {r['mean']:.2f} under the floor {r['floor']:g} over the last "
            f"{r['count']} ratings"
        )
    return out


def judge_version(
    rows: list[dict[str, Any]], ref: Reference | None, cfg: StyleQualityCfg, count: int | None
) -> dict[str, Any]:
    """One version's figures and verdict; `rows` are its answers in the window."""
    out: dict[str, Any] = {
        "answers": len(rows),
        "reference": None
        if ref is None
        else {"version": ref.version, "source": ref.source, "metrics": ref.metrics},
        "scores": judge_scores(rows, ref, cfg, count),
        "ratings": judge_ratings(rows, cfg, count),
    }
    out["judged"] = out["scores"]["judged"] or out["ratings"]["judged"]
    out["reasons"] = reasons(out, ref)
    out["degraded"] = bool(out["reasons"])
    return out


def group(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows by (model name, version); answers without a registered model are left out."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        name, version = row.get("model_name"), row.get("model_version")
        if name and version:
            out.setdefault((str(name), str(version)), []).append(row)
    return out


def judge(
    rows: list[dict[str, Any]],
    references: dict[tuple[str, str], Reference | None],
    champions: dict[str, str],
    cfg: StyleQualityCfg,
    count: int | None,
) -> dict[str, Any]:
    """Every served version's figures; `degraded` lists the champions that degraded.

    `references` and `champions` (model name -> its champion version now) come from the
    registry (artflow.monitor.quality_check); `count` is the window's size in answers, None
    for a duration window (every row given is in it)."""
    versions = []
    for (name, version), mine in sorted(group(rows).items()):
        judged = judge_version(mine, references.get((name, version)), cfg, count)
        champion = champions.get(name) == version
        versions.append({"model_name": name, "version": version, "champion": champion, **judged})
    degraded = [v for v in versions if v["degraded"] and v["champion"]]
    return {
        "kind": "style_quality",
        "answers": len(rows),
        "thresholds": cfg.model_dump(),
        "versions": versions,
        "degraded": [{"model_name": v["model_name"], "version": v["version"]} for v in degraded],
    }


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
