"""The model registry seen side by side: versions, aliases, lineage and run metrics.

`compare(name)` is what a reviewer reads before a promotion: one row per version with
its family, aliases, test/val accuracy and macro-F1 (style models: their style metrics),
the data hash it was trained on and when it was created, as a rich table in the terminal
and as Markdown for a pull-request comment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artflow import families
from artflow.errors import ModelError
from artflow.registry import tracking

CLASSIFIER_METRICS = ("test_accuracy", "test_macro_f1", "val_accuracy", "val_macro_f1")
# Lower is better for the losses, higher for SSIM (the gate reads the same list).
STYLE_METRICS = ("style_loss", "content_loss", "ssim", "cycle_l1")
HIGHER_IS_BETTER = {"ssim"}
SHORT = {  # terminal headers; the Markdown keeps the metric names as logged
    "test_accuracy": "test acc",
    "test_macro_f1": "test F1",
    "val_accuracy": "val acc",
    "val_macro_f1": "val F1",
    "content_loss": "content",
    "style_loss": "style",
}


def is_style_model(name: str) -> bool:
    """Whether `name` is compared on style metrics (its `metrics` in artflow.families)."""
    return families.metric_kind(name) == "style"


def metric_names(name: str) -> tuple[str, ...]:
    return STYLE_METRICS if is_style_model(name) else CLASSIFIER_METRICS


@dataclass
class VersionRow:
    name: str
    version: str
    run_id: str | None
    family: str
    aliases: list[str]
    metrics: dict[str, float]
    data_hash: str
    created: str
    gate: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Comparison:
    name: str
    rows: list[VersionRow]

    @property
    def columns(self) -> list[str]:
        return ["version", "family", "aliases", *metric_names(self.name), "data", "created", "gate"]

    def cells(self, row: VersionRow) -> list[str]:
        metrics = [_fmt(row.metrics.get(m)) for m in metric_names(self.name)]
        aliases = ", ".join(sorted(row.aliases)) or "-"
        lineage = [row.data_hash[:8], row.created, row.gate]  # created: YYYY-MM-DD HH:MM
        return [row.version, row.family, aliases, *metrics, *lineage]

    def markdown(self) -> str:
        lines = [
            f"### `{self.name}`: registered versions",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        for row in self.rows:
            cells = self.cells(row)
            cells[2] = " ".join(f"**{a}**" for a in sorted(row.aliases)) or "-"
            lines.append("| " + " | ".join(cells) + " |")
        n = len(self.rows)
        plural = "s" if n != 1 else ""
        lines += ["", f"_{n} version{plural}; metrics from each version's training run._", ""]
        return "\n".join(lines)

    def table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.name)
        for col in self.columns:
            numeric = col in metric_names(self.name)
            table.add_column(
                SHORT.get(col, col), justify="right" if numeric else "left", no_wrap=not numeric
            )
        for row in self.rows:
            style = "bold green" if "champion" in row.aliases else None
            table.add_row(*self.cells(row), style=style)
        return table

    def write_markdown(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.markdown())
        return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"  # Gram losses are huge


def registered_model(name: str) -> Any:
    """The RegisteredModel, or a clear error listing the known names."""
    model = tracking.registered(name)
    if model is None:
        known = ", ".join(m.name for m in list_models()) or "none yet"
        raise ModelError(
            f"no registered model named {name!r} (registered: {known})",
            "train and register one first, or check `artflow models list`",
        )
    return model


def resolve_version(name: str, ref: str) -> Any:
    """A ModelVersion from a version number or an alias (champion, challenger, ...)."""
    model = registered_model(name)
    ref = str(ref).strip()
    lookup = tracking.model_version if ref.isdigit() else tracking.alias_version
    mv = lookup(name, ref)
    if mv is None:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(model.aliases.items())) or "none"
        kind = "version" if ref.isdigit() else "alias"
        raise ModelError(
            f"{name} has no {kind} {ref!r} (aliases: {aliases})",
            "see `artflow models compare " + name + "` for its versions and aliases",
        )
    return mv


def list_models() -> list[Any]:
    found = tracking.ask(
        "the registered models",
        lambda: tracking.client().search_registered_models(max_results=1000),
    )
    return [m for m in found or [] if not tracking.is_lock_name(m.name)]


def versions(name: str) -> list[VersionRow]:
    """Every version of `name`, newest first, with its run's metrics and lineage."""
    model = registered_model(name)
    by_version: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    found = tracking.search_versions(name)
    rows = [_row(mv, by_version.get(str(mv.version), [])) for mv in found]
    return sorted(rows, key=lambda r: int(r.version), reverse=True)


def _row(mv: Any, aliases: list[str]) -> VersionRow:
    metrics: dict[str, float] = {}
    run_tags: dict[str, str] = {}
    run = tracking.get_run(mv.run_id) if mv.run_id else None
    if run is not None:  # None: the run was deleted; the version still lists
        metrics, run_tags = dict(run.data.metrics), dict(run.data.tags)
    tags = dict(mv.tags or {})
    created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=dt.UTC)
    return VersionRow(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        family=tags.get("family") or tags.get("method") or _default_family(mv.name),
        aliases=aliases,
        metrics=metrics,
        data_hash=run_tags.get("artflow.data_hash", "-"),
        created=created.strftime("%Y-%m-%d %H:%M"),
        gate=tags.get("gate.decision", "-"),
        tags=tags,
    )


def _default_family(name: str) -> str:
    return {tracking.STYLIZER: "adain", tracking.CYCLEGAN: "cyclegan"}.get(name, "-")


def compare(name: str) -> Comparison:
    return Comparison(name=name, rows=versions(name))


def run_metrics(name: str, version: str) -> dict[str, float]:
    """The metrics of the run that produced `name` version `version`."""
    mv = resolve_version(name, version)
    run = tracking.get_run(mv.run_id) if mv.run_id else None
    return dict(run.data.metrics) if run is not None else {}
