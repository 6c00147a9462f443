"""Pipeline stages as orchestrator-neutral calls, with a content-hash skip.

Kubeflow components (components/) are thin wrappers over these functions, so a component
body is a few lines that survive being copied into the compiled YAML. Each stage:
  1. loads settings (params.yaml + profile) and the workdir,
  2. computes a key from the stage's inputs (file contents) and the settings it reads,
  3. returns the recorded result when a stamp with that key exists (an unchanged re-run),
  4. otherwise imports the stage function (TensorFlow, MLflow, GX load only here), runs it
     and writes the stamp.
Stamps live in the workdir (`pipeline/stamps/`), so they travel with the data version:
on a laptop that is the local directory, on a cluster the shared volume the steps mount.
Only this module may decide to skip; the stage functions themselves always do the work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from artflow import logs
from artflow.config import Settings, load_settings
from artflow.data.layout import Workdir

STAMPS = Path("pipeline") / "stamps"
log = logging.getLogger(__name__)


def context(workdir: str, profile: str = "", mlflow_uri: str = "") -> tuple[Settings, Workdir]:
    """Settings and workdir for a step; the MLflow URI, when given, applies to the process."""
    logs.ensure_configured()  # a pipeline step's entry: its artflow lines show in the step's log
    if mlflow_uri:
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_uri
    return settings_for(profile), Workdir.at(workdir)


def is_overlay_file(profile: str) -> bool:
    return profile.endswith((".yaml", ".yml"))


def settings_for(profile: str) -> Settings:
    """`profile` names profiles/<name>.yaml, or is the path of an overlay YAML of the same shape
    (a one-off variant, e.g. fewer epochs, without adding a profile to the project)."""
    if not is_overlay_file(profile):
        if profile:
            os.environ["ARTFLOW_PROFILE"] = profile
        return load_settings(profile=profile or None)
    import yaml

    from artflow.errors import ConfigError

    path = Path(profile).expanduser()
    if not path.is_file():
        raise ConfigError(f"profile overlay {path} does not exist", "pass a profile name or a file")
    return load_settings(overrides=yaml.safe_load(path.read_text()) or {})


# --------------------------------------------------------------------------- the skip


def file_digest(paths: Iterable[str | Path]) -> dict[str, str]:
    """md5 of each file's content (missing files hash as 'missing')."""
    out = {}
    for path in sorted(Path(p) for p in paths):
        out[path.name] = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return out


def tree_digest(root: str | Path) -> str:
    """Cheap fingerprint of a source folder: relative paths, sizes and mtimes (no reads)."""
    digest = hashlib.md5()
    root = Path(root)
    if root.is_file():
        stat = root.stat()
        digest.update(f"{root.name}{stat.st_size}{stat.st_mtime_ns}".encode())
        return digest.hexdigest()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def stage_key(stage: str, inputs: dict[str, Any], settings_parts: dict[str, Any]) -> str:
    from artflow.tracking import tracking_uri

    payload = {
        "stage": stage,
        "inputs": inputs,
        "settings": settings_parts,
        "mlflow": tracking_uri(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_stage(
    wd: Workdir, stage: str, key: str, fn: Callable[[], dict[str, Any]], force: bool = False
) -> dict[str, Any]:
    """fn() unless a stamp with the same key says it already ran; the result either way."""
    stamp = wd.root / STAMPS / f"{stage}.json"
    if not force and stamp.is_file():
        try:
            saved = json.loads(stamp.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("key") == key:
            log.info("%s: inputs unchanged since %s: skipped", stage, saved.get("finished"))
            return {**saved["result"], "skipped": True}
    start = time.perf_counter()
    result = fn()
    seconds = round(time.perf_counter() - start, 1)
    full = record_stage(wd, stage, key, result, seconds)
    log.info("%s: done in %s s", stage, seconds)
    return {**full, "skipped": False}


def record_stage(
    wd: Workdir, stage: str, key: str, result: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """Write the stamp of a finished stage (also for the CLI, so a pipeline after it skips)."""
    full = json.loads(json.dumps(result, default=_scalar))
    stamp = wd.root / STAMPS / f"{stage}.json"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S")
    record = {"key": key, "finished": finished, "seconds": seconds, "result": _slim(full)}
    stamp.write_text(json.dumps(record, indent=2))
    return full


def _slim(result: dict[str, Any]) -> dict[str, Any]:
    """What a stamp keeps: long per-epoch/per-image lists are dropped."""
    return {k: v for k, v in result.items() if not (isinstance(v, list) and len(v) > 50)}


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _sections(settings: Settings, *names: str) -> dict[str, Any]:
    dumped = settings.model_dump(by_alias=True)
    return {name: dumped[name] for name in names}


# --------------------------------------------------------------------------- data


def ingest(
    source: str, workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    from artflow.errors import DataError

    settings, wd = context(workdir, profile, mlflow_uri)
    if not source:
        if not wd.manifest.is_file():
            raise DataError(
                f"no source given and nothing ingested in {wd.root}",
                "pass the data source (a folder or zip in the Kaggle layout)",
            )
        return {"source": "already ingested", "skipped": True}
    key = stage_key("ingest", {"source": tree_digest(source)}, _sections(settings, "data"))

    def work() -> dict[str, Any]:
        from artflow.data.ingest import ingest as do_ingest

        return do_ingest(source, wd, settings)

    return run_stage(wd, "ingest", key, work, force)


def validate(
    workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    settings, wd = context(workdir, profile, mlflow_uri)
    key = validate_key(settings, wd)

    def work() -> dict[str, Any]:
        from artflow.data.validate import validate as do_validate

        return do_validate(wd, settings)

    return run_stage(wd, "validate", key, work, force)


def sample(
    workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    settings, wd = context(workdir, profile, mlflow_uri)
    key = sample_key(settings, wd)

    def work() -> dict[str, Any]:
        from artflow.data.sample import sample as do_sample

        return do_sample(wd, settings)

    return run_stage(wd, "sample", key, work, force)


def validate_key(settings: Settings, wd: Workdir) -> str:
    inputs = file_digest([wd.manifest, wd.monet_manifest, wd.artists_csv])
    return stage_key("validate", inputs, _sections(settings, "validate"))


def sample_key(settings: Settings, wd: Workdir) -> str:
    inputs = file_digest([wd.manifest, wd.monet_manifest, wd.quarantine])
    return stage_key("sample", inputs, {**_sections(settings, "sample"), "seed": settings.seed})


def split_files(wd: Workdir) -> list[Path]:
    return [wd.split_csv(s) for s in ("train", "val", "test")] + [wd.labels]


def style_files(wd: Workdir) -> list[Path]:
    return [wd.style_csv("style_train"), wd.style_csv("style_test"), wd.split_csv("train")]


# --------------------------------------------------------------------------- models


def with_card(result: dict[str, Any]) -> dict[str, Any]:
    """Every version a pipeline registers gets its model card right away."""
    if result.get("model_name") and result.get("version"):
        from artflow.modelcard import write_model_card

        write_model_card(result["model_name"], str(result["version"]))
    return result


CLASSIFIER_SECTIONS = ("images", "augment", "training")


def train_classifier(
    workdir: str,
    family: str,
    tune: bool = False,
    profile: str = "",
    mlflow_uri: str = "",
    force: bool = False,
    enabled: bool = True,
) -> dict[str, Any]:
    """Train (optionally tune first) and register one classifier family as challenger."""
    if not enabled:
        return {"family": family, "version": "", "skipped": True, "reason": "disabled"}
    settings, wd = context(workdir, profile, mlflow_uri)
    own = {"cnn": ("cnn", "tuner") if tune else ("cnn",), "resnet50": ("resnet",)}.get(family)
    if own is None:
        from artflow.errors import ConfigError

        raise ConfigError(f"unknown classifier family {family!r}", "use cnn or resnet50")
    parts = {
        **_sections(settings, *CLASSIFIER_SECTIONS, *own),
        "seed": settings.seed,
        "family": family,
        "tune": tune,
    }
    key = stage_key(f"train_{family}", file_digest(split_files(wd)), parts)

    def work() -> dict[str, Any]:
        if tune and family == "cnn":  # the search registers its best model itself
            from artflow.train.tune import tune_cnn

            return with_card(tune_cnn(settings, wd))
        from artflow.train.classifier import train_classifier as do_train

        return with_card(do_train(settings, wd, family=family))

    return run_stage(wd, f"train_{family}", key, work, force)


def select_candidate(
    workdir: str, versions: list[str], profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    """Compare the freshly trained versions; the best validation macro-F1 becomes challenger.

    Training already scored each version on the validation split (logged on its run; the
    reports and confusion matrices are there too), so this step reads those numbers rather
    than re-running the models. Selection never looks at the frozen test split: that is the
    gate's, and picking on it would leak.
    """
    from artflow.tracking import CLASSIFIER

    versions = [v for v in versions if v]
    if not versions:
        return {"model_name": CLASSIFIER, "version": "", "reason": "nothing was trained"}
    settings, wd = context(workdir, profile, mlflow_uri)
    key = stage_key("evaluate", {"files": file_digest(split_files(wd)), "versions": versions}, {})

    def work() -> dict[str, Any]:
        from artflow import tracking
        from artflow.errors import ModelError
        from artflow.registry import compare

        rows = {r.version: r for r in compare(CLASSIFIER).rows}
        missing = [v for v in versions if v not in rows]
        if missing:
            raise ModelError(f"{CLASSIFIER} has no versions {missing}", "re-run with --force")
        scores = {
            v: {
                "val_accuracy": rows[v].metrics.get("val_accuracy", float("nan")),
                "val_macro_f1": rows[v].metrics.get("val_macro_f1", -1.0),
                "family": rows[v].family,
            }
            for v in versions
        }
        best = max(versions, key=lambda v: (scores[v]["val_macro_f1"], int(v)))
        tracking.mark_challenger(CLASSIFIER, best)
        return {
            "comparison": compare(CLASSIFIER).markdown(),  # the step's HTML report
            "model_name": CLASSIFIER,
            "version": best,
            "scores": scores,
            **scores[best],
        }

    return run_stage(wd, "evaluate", key, work, force)


def train_stylizer(
    workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    settings, wd = context(workdir, profile, mlflow_uri)
    parts = {**_sections(settings, "stylizer", "nst", "training"), "seed": settings.seed}
    key = stage_key("train_stylizer", file_digest(style_files(wd)), parts)

    def work() -> dict[str, Any]:
        from artflow.train.stylizer import train_stylizer as do_train

        return with_card(do_train(settings, wd))

    return run_stage(wd, "train_stylizer", key, work, force)


def train_cyclegan(
    workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False
) -> dict[str, Any]:
    settings, wd = context(workdir, profile, mlflow_uri)
    parts = {**_sections(settings, "cyclegan", "training"), "seed": settings.seed}
    key = stage_key("train_cyclegan", file_digest(style_files(wd)), parts)

    def work() -> dict[str, Any]:
        from artflow.train.cyclegan import train_cyclegan as do_train

        return with_card(do_train(settings, wd))

    return run_stage(wd, "train_cyclegan", key, work, force)


# --------------------------------------------------------------------------- decisions


def champion_moved(wd: Workdir, model_name: str) -> bool:
    """Whether the champion differs from what the recorded gate decision left behind.

    A rollback or a manual promotion between two runs makes that decision stale, so the gate
    decides again instead of replaying it (its key covers the candidate and data, not the
    registry's aliases, which change by the decision itself).
    """
    stamp = wd.root / STAMPS / f"gate_{model_name}.json"
    if not stamp.is_file():
        return False
    try:
        result = json.loads(stamp.read_text()).get("result", {})
    except json.JSONDecodeError:
        return True
    left = result.get("candidate") if result.get("promoted") else result.get("champion")
    from artflow.tracking import alias_version

    current = alias_version(model_name, "champion")
    return (str(left) if left else None) != (str(current.version) if current else None)


def gate(
    workdir: str,
    model_name: str,
    candidate: str,
    profile: str = "",
    mlflow_uri: str = "",
    force: bool = False,
) -> dict[str, Any]:
    """The promotion gate inside a pipeline: the decision is an output, never an exception."""
    if not candidate:
        return {
            "passed": False,
            "promoted": False,
            "reason": "no candidate was trained",
            "skipped": True,
        }
    settings, wd = context(workdir, profile, mlflow_uri)
    inputs = {"test": file_digest([wd.split_csv("test"), wd.labels]), "candidate": candidate}
    key = stage_key(f"gate_{model_name}", inputs, _sections(settings, "gate"))
    if not force and champion_moved(wd, model_name):
        log.info("gate_%s: the champion moved since the last decision: deciding", model_name)
        force = True

    def work() -> dict[str, Any]:
        from artflow.promote import promote

        decision = promote(settings, wd, model_name, candidate, strict=False)
        out = decision.to_dict()
        out.pop("evaluations", None)
        return {**out, "markdown": decision.markdown()}

    return run_stage(wd, f"gate_{model_name}", key, work, force)


def drift_check(
    workdir: str,
    policy: str = "drift",
    log_path: str = "",
    model_ref: str = "champion",
    profile: str = "",
    mlflow_uri: str = "",
    trigger_report: str = "",
) -> dict[str, Any]:
    """Should the scheduled retrain go ahead? Never skipped: traffic changes between runs.

    policy "always" retrains on every run (`artflow drift` uses it after its own check and
    passes the report that triggered it); "drift" only when the latest window of logged
    predictions drifted from the reference (no usable log means no evidence of drift).
    """
    from artflow.errors import ArtflowError

    if policy not in ("drift", "always"):
        from artflow.errors import ConfigError

        raise ConfigError(f"unknown retrain policy {policy!r}", "use drift or always")
    settings, wd = context(workdir, profile, mlflow_uri)
    if policy == "always":  # e.g. started by `artflow drift` after its own check: no rework
        why = (
            f"policy always (trigger report: {trigger_report})"
            if trigger_report
            else ("policy always")
        )
        return {"retrain": True, "drifted": False, "reason": why, "report_html": ""}
    log = log_path or settings.serve.prediction_log
    try:
        from artflow.monitor.check import check_drift

        verdict = check_drift(settings, wd, log, model_ref)
        drifted, reason = bool(verdict.get("drifted")), "drift check ran"
    except ArtflowError as exc:
        verdict, drifted, reason = {}, False, f"no drift verdict: {exc.message}"
    retrain, why = drifted, ("drift detected" if drifted else reason)
    report = (verdict.get("report") or {}).get("html", "")
    return {
        "retrain": retrain,
        "drifted": drifted,
        "reason": why,
        "report_html": report,
        "share": verdict.get("share"),
    }


# --------------------------------------------------------------------------- artifacts


def publish(result: dict[str, Any], metrics: Any = None, model: Any = None) -> None:
    """Copy a stage result onto kfp artifacts (duck-typed: .path, .metadata, .log_metric)."""
    flat = {**result, **(result.get("metrics") or {})}
    if metrics is not None:
        for key, value in flat.items():
            if isinstance(value, int | float):  # bools too: 1.0 / 0.0
                metrics.log_metric(key, float(value))
    if model is not None:
        from artflow import tracking

        name, version = result.get("model_name") or "", str(result.get("version") or "")
        uri = tracking.model_uri(name, version) if name and version else ""
        model.metadata.update({"model_name": name, "version": version, "uri": uri})
        Path(model.path).parent.mkdir(parents=True, exist_ok=True)
        Path(model.path).write_text(uri + "\n")


def publish_dataset(wd: Workdir, dataset: Any, files: list[Path]) -> None:
    """A Dataset artifact: a copy of the small split files plus the data hash as metadata."""
    import shutil

    from artflow.tracking import data_hash

    out = Path(dataset.path)
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.is_file():
            shutil.copy2(path, out / path.name)
    dataset.metadata.update(
        {
            "workdir": str(wd.root),
            "data_hash": data_hash(files),
            "files": [p.name for p in files if p.is_file()],
        }
    )


def publish_html(html: Any, title: str, body_markdown: str = "", source: str = "") -> None:
    """An HTML artifact: a copied report, or Markdown shown as preformatted text."""
    import html as html_lib
    import shutil

    out = Path(html.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if source and Path(source).is_file():
        shutil.copy2(source, out)
        return
    text = html_lib.escape(body_markdown or "(nothing to report)")
    out.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html_lib.escape(title)}</title>"
        f"<h1>{html_lib.escape(title)}</h1><pre>{text}</pre>\n"
    )
