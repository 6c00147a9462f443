"""The data gate: Great Expectations suites over artists.csv and the image manifests.

Every image expectation carries a `reason` and an `action` in its meta. Rows that fail an
expectation with action "quarantine" are listed in wd.quarantine and excluded downstream;
"flag" rows (an extension that lies about the format) are reported and kept. The run fails
(DataError) only when what remains is unusable: too large a quarantined share, or a chosen
artist left with fewer images than the configured minimum. Raw files are only read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from artflow.config import Settings
from artflow.data.demo import ARTIST_COLUMNS
from artflow.data.ingest import read_manifest
from artflow.data.layout import Workdir
from artflow.errors import DataError

# The extensions each Pillow format may honestly carry.
FORMAT_EXTS = {
    "JPEG": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "MPO": {".jpg", ".jpeg"},
    "PNG": {".png"},
    "GIF": {".gif"},
    "BMP": {".bmp"},
    "TIFF": {".tif", ".tiff"},
    "WEBP": {".webp"},
}


@dataclass
class SuiteResult:
    name: str
    success: bool
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per expectation


def validate(wd: Workdir, settings: Settings) -> dict:
    """Run the suites, write quarantine/summary/report; DataError when the data is unusable."""
    cfg = settings.validate_
    have_art, have_monet = wd.manifest.is_file(), wd.monet_manifest.is_file()
    if not (have_art or have_monet):
        raise DataError(f"no manifest in {wd.interim}", "run `artflow data ingest` first")
    images = _image_frame(read_manifest(wd.manifest), wd, "artist") if have_art else None
    monet = _image_frame(read_manifest(wd.monet_manifest), wd, "domain") if have_monet else None
    gx = _Gx()
    suites: list[SuiteResult] = []
    quarantine: list[dict[str, str]] = []
    flagged: list[dict[str, str]] = []
    failures: list[str] = []
    shares: dict[str, float] = {}
    chosen: dict[str, int] = {}

    if images is not None and len(images):
        artists = _artists_frame(wd.artists_csv, images)
        suites.append(gx.run("artists.csv", artists, _artists_suite(), "name"))
        img_suite = gx.run("artwork images", images, _image_suite(cfg), "path")
        suites.append(img_suite)
        q, f = _collect(img_suite, images)
        quarantine += q
        flagged += f
        shares["artworks"] = len(q) / len(images)
        counts = _class_frame(artists, images, {r["path"] for r in q}, settings)
        suites.append(gx.run("chosen classes", counts, _class_suite(cfg), "artist"))
        chosen = dict(zip(counts["artist"], counts["usable"].astype(int), strict=True))
        failures += _class_failures(counts, cfg.min_images_per_class, settings)
    if monet is not None and len(monet):
        monet_suite = gx.run("monet images", monet, _image_suite(cfg, domains=True), "path")
        suites.append(monet_suite)
        q, f = _collect(monet_suite, monet)
        quarantine += q
        flagged += f
        shares["monet"] = len(q) / len(monet)
    for name, share in shares.items():
        if share > cfg.max_quarantine_share:
            failures.append(
                f"{share:.1%} of the {name} images are quarantined "
                f"(validate.max_quarantine_share = {cfg.max_quarantine_share:.1%})"
            )

    summary = _summary(suites, quarantine, flagged, shares, chosen, failures, images, monet)
    _write_outputs(wd, summary, suites, quarantine, flagged)
    if failures:
        raise DataError(
            "validation failed: " + "; ".join(failures),
            f"see {wd.validation_report} and {wd.quarantine}",
        )
    return summary


# ---- frames the suites run on ---------------------------------------------------------------


def _image_frame(df: pd.DataFrame, wd: Workdir, label: str) -> pd.DataFrame:
    """Manifest plus the derived columns the expectations check."""
    df = df.copy()
    df["label"] = df[label]
    df["mode"] = df["mode"].replace("", None)
    df["format"] = df["format"].replace("", None)
    df["min_side"] = df[["width", "height"]].min(axis=1).astype("float")
    df["exists"] = [wd.abs(p).is_file() for p in df["path"]]
    ext = df["path"].map(lambda p: Path(p).suffix.lower())
    df["extension_ok"] = [
        fmt is None or e in FORMAT_EXTS.get(fmt, {e})
        for fmt, e in zip(df["format"], ext, strict=True)
    ]
    decodable = df["mode"].notna()
    labels_per_hash = df[decodable].groupby("sha256")["label"].nunique()
    df["labels_with_same_content"] = df["sha256"].map(labels_per_hash).where(decodable, 1)
    return df


def _artists_frame(csv_path: Path, images: pd.DataFrame) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"{csv_path} not found", "run `artflow data ingest` first")
    df = pd.read_csv(csv_path)
    found = images.groupby("artist").size()
    if "name" in df:
        df["files_found"] = df["name"].map(found).fillna(0).astype(int)
        paintings = pd.to_numeric(df.get("paintings"), errors="coerce")
        df["count_gap"] = (paintings - df["files_found"]).abs()
    return df


def _class_frame(
    artists: pd.DataFrame, images: pd.DataFrame, quarantined: set[str], settings: Settings
) -> pd.DataFrame:
    """Artists the classifier will use (csv count or files found >= sample.min_paintings)."""
    usable = images[~images["path"].isin(quarantined)].groupby("artist").size()
    found = images.groupby("artist").size()
    listed = (
        pd.to_numeric(artists.set_index("name")["paintings"], errors="coerce")
        if "paintings" in artists
        else pd.Series(dtype=float)
    )
    names = sorted(set(found.index) | set(listed.dropna().index))
    df = pd.DataFrame({"artist": names})
    df["listed"] = df["artist"].map(listed).fillna(0).astype(int)
    df["found"] = df["artist"].map(found).fillna(0).astype(int)
    df["usable"] = df["artist"].map(usable).fillna(0).astype(int)
    chosen = df[["listed", "found"]].max(axis=1) >= settings.sample.min_paintings
    return df[chosen].reset_index(drop=True)


def _class_failures(counts: pd.DataFrame, minimum: int, settings: Settings) -> list[str]:
    if counts.empty:
        return [
            f"no artist has >= sample.min_paintings = {settings.sample.min_paintings} "
            "paintings (with the demo data use --profile smoke)"
        ]
    low = counts[counts["usable"] < minimum]
    return [
        f"{r.artist} keeps {r.usable} usable images, fewer than "
        f"validate.min_images_per_class = {minimum}"
        for r in low.itertuples()
    ]


# ---- suites ---------------------------------------------------------------------------------


def _artists_suite() -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectTableColumnsToMatchSet(
            column_set=[*ARTIST_COLUMNS, "files_found", "count_gap"], exact_match=True
        ),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "name", "paintings")],
        e.ExpectColumnValuesToBeInTypeList(column="paintings", type_list=["int64", "int32"]),
        e.ExpectColumnValuesToBeUnique(column="name"),
        e.ExpectColumnValuesToBeBetween(column="paintings", min_value=1),
        e.ExpectColumnValuesToBeBetween(
            column="count_gap",
            max_value=0,
            meta={"note": "artists.csv paintings = image files found for the artist"},
        ),
    ]


def _image_suite(cfg: Any, domains: bool = False) -> list:
    import great_expectations as gx

    e = gx.expectations

    def q(reason: str, action: str = "quarantine") -> dict[str, str]:
        return {"reason": reason, "action": action}

    suite = [
        e.ExpectColumnValuesToBeUnique(column="path"),
        e.ExpectColumnValuesToBeInSet(
            column="exists", value_set=[True], meta=q("file missing from the workdir")
        ),
        e.ExpectColumnValuesToBeBetween(
            column="bytes", min_value=1, meta=q("empty file (0 bytes)")
        ),
        e.ExpectColumnValuesToNotBeNull(column="mode", meta=q("not decodable: {error}")),
        e.ExpectColumnValuesToBeBetween(
            column="min_side",
            min_value=cfg.min_side,
            meta=q(f"too small: {{min_side:.0f}} px < {cfg.min_side} px"),
        ),
        e.ExpectColumnValuesToBeInSet(
            column="mode", value_set=list(cfg.allowed_modes), meta=q("mode {mode} not allowed")
        ),
        e.ExpectColumnValuesToBeBetween(
            column="labels_with_same_content",
            max_value=1,
            meta=q("same content appears under {labels_with_same_content:.0f} labels"),
        ),
        e.ExpectColumnValuesToBeInSet(
            column="extension_ok",
            value_set=[True],
            meta=q("file extension lies: content is {format}", action="flag"),
        ),
    ]
    if domains:
        suite.append(
            e.ExpectColumnDistinctValuesToContainSet(column="domain", value_set=["monet", "photo"])
        )
    return suite


def _class_suite(cfg: Any) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=2, meta={"note": "a classifier needs 2"}),
        e.ExpectColumnValuesToBeBetween(column="usable", min_value=cfg.min_images_per_class),
    ]


class _Gx:
    """An ephemeral, quiet GX context with one pandas data source."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        self.source = self.context.data_sources.add_pandas("artflow")

    def run(self, name: str, df: pd.DataFrame, expectations: list, index_col: str) -> SuiteResult:
        asset = self.source.add_dataframe_asset(name.replace(" ", "_").replace(".", "_"))
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": df}
        )
        suite = self.gx.ExpectationSuite(name=name, expectations=expectations)
        fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": [index_col]}
        result = batch.validate(suite, result_format=fmt)
        rows = [_row(r, index_col) for r in result.results]
        return SuiteResult(name, bool(result.success), rows)


def _row(r: Any, index_col: str) -> dict[str, Any]:
    cfg = r.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format")}
    res = r.result or {}
    unexpected = [
        d.get(index_col) for d in res.get("unexpected_index_list") or [] if isinstance(d, dict)
    ]
    exc = (r.exception_info or {}).get("exception_message") if r.exception_info else None
    return {
        "expectation": cfg.type,
        "kwargs": _jsonable(kwargs),
        "success": bool(r.success),
        "meta": dict(cfg.meta or {}),
        "unexpected_count": res.get("unexpected_count"),
        "element_count": res.get("element_count"),
        "observed": _jsonable(res.get("observed_value")),
        "unexpected": [str(u) for u in unexpected],
        "error": exc,
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _collect(suite: SuiteResult, df: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Quarantine / flag lists from failing expectations; the first reason per path wins."""
    by_path = df.set_index("path")
    quarantine: dict[str, str] = {}
    flagged: dict[str, str] = {}
    for row in suite.rows:
        action, template = row["meta"].get("action"), row["meta"].get("reason")
        target = quarantine if action == "quarantine" else flagged if action == "flag" else None
        if target is None:
            continue
        for path in row["unexpected"]:
            if path not in quarantine and path not in target:
                values = by_path.loc[path].to_dict()
                target[path] = template.format(**{k: _fmt(v) for k, v in values.items()})
    return (
        [{"path": p, "reason": r} for p, r in quarantine.items()],
        [{"path": p, "reason": r} for p, r in flagged.items() if p not in quarantine],
    )


def _fmt(v: Any) -> Any:
    return "?" if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA else v


# ---- outputs --------------------------------------------------------------------------------


def _summary(
    suites: list[SuiteResult],
    quarantine: list,
    flagged: list,
    shares: dict,
    chosen: dict,
    failures: list,
    images: pd.DataFrame | None,
    monet: pd.DataFrame | None,
) -> dict:
    return {
        "success": not failures,
        "failures": failures,
        "images": 0 if images is None else len(images),
        "monet_images": 0 if monet is None else len(monet),
        "quarantined": len(quarantine),
        "quarantine_share": shares,
        "flagged": flagged,
        "chosen_classes": chosen,
        "suites": {
            s.name: {
                "success": s.success,
                "expectations": len(s.rows),
                "failed": sum(not r["success"] for r in s.rows),
            }
            for s in suites
        },
    }


def _write_outputs(
    wd: Workdir, summary: dict, suites: list[SuiteResult], quarantine: list, flagged: list
) -> None:
    from artflow.data.report_html import render_validation

    wd.validation.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(quarantine, columns=["path", "reason"]).to_csv(wd.quarantine, index=False)
    detail = {**summary, "results": {s.name: s.rows for s in suites}}
    wd.validation_summary.write_text(json.dumps(detail, indent=2, ensure_ascii=False) + "\n")
    wd.validation_report.write_text(render_validation(summary, suites, quarantine, flagged))
    wd.metrics.mkdir(parents=True, exist_ok=True)
    metrics = {
        "images": summary["images"],
        "monet_images": summary["monet_images"],
        "quarantined": summary["quarantined"],
        "flagged": len(flagged),
        "failed_expectations": sum(s["failed"] for s in summary["suites"].values()),
        "chosen_classes": len(summary["chosen_classes"]),
        "success": int(summary["success"]),
    }
    (wd.metrics / "validation.json").write_text(json.dumps(metrics, indent=2) + "\n")
