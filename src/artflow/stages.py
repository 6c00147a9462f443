"""Pipeline steps as orchestrator-neutral calls over artifact folders, with a content-key cache.

Kubeflow components (components/) are thin wrappers over these functions. A step reads only
its input artifact folders and parameters and writes everything later steps need into its
output artifact folders (the TFX / KFP v2 way), so on a cluster every step can be its own pod:

- `data` (Dataset): the ingested images with their manifests (`raw/`, `interim/`; every image's
  sha256 is in the manifest), written by `ingest` from the source parameter;
- `validation` (Dataset): `validation/` (summary, quarantine list, GX report);
- `splits` (Dataset): `splits/` (train/val/test and style CSVs, labels.json, class weights);
- models (Model): `model.json` (registry name, version, `models:/` URI, family) and
  `evaluation.json` (labels, confusion matrices); metadata carries the same.

Each artifact folder is a piece of one data-version layout (`artflow.data.layout.Workdir`), so a
step links its inputs into a fresh scratch folder and runs the library code on that.

Each step's cache key is declared once (`STEPS`, and `artflow.families` for training): the
settings sections its answer depends on. The key covers those, the parameters, the input
artifacts' contents and the MLflow URI. Kubeflow caches the steps marked `kfp_cache`; the local
runner passes `cache_dir`, where a finished step's outputs are kept by key and restored on an
unchanged re-run (its process then imports neither TensorFlow nor MLflow).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artflow import families, logs
from artflow.config import Settings, load_settings
from artflow.data.layout import Workdir

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Step:
    """sections: the settings its answer depends on (its cache key; seed always included).
    kfp_cache: whether Kubeflow may reuse a finished run with the same inputs."""

    sections: tuple[str, ...]
    kfp_cache: bool


STEPS: dict[str, Step] = {
    "ingest": Step(("data",), kfp_cache=False),  # the source may change under the same name
    "validate": Step(("validate",), kfp_cache=True),
    "sample": Step(("sample",), kfp_cache=True),
    "evaluate": Step((), kfp_cache=True),
    "gate": Step(("gate",), kfp_cache=False),  # the champion moves between runs
    "drift": Step(("drift",), kfp_cache=False),  # traffic changes between runs
    "gatys_search": Step(("nst",), kfp_cache=True),
}


def step(name: str, tune: bool = False) -> Step:
    """The declaration of step `name`; `train_<family>` comes from the family's declaration."""
    if name.startswith("train_"):
        return Step(families.get(name.removeprefix("train_")).key_sections(tune), kfp_cache=True)
    return STEPS[name]


# --------------------------------------------------------------------------- settings


def is_overlay_file(profile: str) -> bool:
    return profile.endswith((".yaml", ".yml"))


def settings_for(profile: str) -> Settings:
    """`profile` names profiles/<name>.yaml, or is the path of an overlay YAML of the same shape
    (a one-off variant, e.g. fewer epochs, without adding a profile to the project)."""
    if not is_overlay_file(profile):
        return load_settings(profile=profile or None)
    import yaml

    from artflow.errors import ConfigError

    path = Path(profile).expanduser()
    if not path.is_file():
        raise ConfigError(f"profile overlay {path} does not exist", "pass a profile name or a file")
    return load_settings(overrides=yaml.safe_load(path.read_text()) or {})


def begin(profile: str, mlflow_uri: str) -> Settings:
    """A step's entry: logging, the MLflow URI parameter, the settings."""
    logs.ensure_configured()  # a pipeline step's entry: its artflow lines show in the step's log
    if mlflow_uri:
        from artflow.registry import tracking

        tracking.use_tracking_uri(mlflow_uri)
    return settings_for(profile)


# --------------------------------------------------------------------------- artifact folders


def scratch(name: str, *inputs: Any) -> Workdir:
    """A fresh data-version folder for one step with its input artifacts linked in: real
    folders, each input file a symlink, so whatever the step writes lands in the scratch
    folder and never in an input artifact."""
    root = Path(tempfile.mkdtemp(prefix=f"artflow-{name}-"))
    for artifact in inputs:
        folder = Path(artifact.path)
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            target = root / child.name
            if target.exists():
                continue
            if child.is_dir():
                shutil.copytree(child, target, symlinks=True, copy_function=_symlink)
            else:
                _symlink(child, target)
    return Workdir.at(root)


def _symlink(src: str | Path, dst: str | Path) -> None:
    os.symlink(Path(src).resolve(), dst)


def export(wd: Workdir, artifact: Any, parts: Iterable[str]) -> Path:
    """Copy the named top-level parts of a scratch folder into an output artifact folder."""
    out = Path(artifact.path)
    out.mkdir(parents=True, exist_ok=True)
    for part in parts:
        src = wd.root / part
        if src.is_dir():
            shutil.copytree(src, out / part, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, out / part)
    return out


_NOT_CONTENT = {"ingest_report.json"}  # names the source's path: the manifests say what came


def artifact_digest(path: str | Path) -> str:
    """sha256 over an artifact folder's files; images under raw/ are covered by the manifests
    (which carry each image's sha256), so they are not read again, and HTML reports (for
    people, with timestamps) do not count."""
    digest, root = hashlib.sha256(), Path(path)
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if (rel.parts[0] == "raw" and rel.name != "artists.csv") or rel.name in _NOT_CONTENT:
            continue
        if rel.suffix == ".html":
            continue
        digest.update(f"{rel.as_posix()}\n".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def tree_digest(root: str | Path) -> str:
    """Cheap fingerprint of a source folder or zip: relative paths, sizes and mtimes."""
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


# --------------------------------------------------------------------------- the cache


def cache_key(
    name: str,
    settings: Settings,
    inputs: dict[str, Any],
    params: dict[str, Any],
    tune: bool = False,
) -> str:
    """The content key of one step run: declared sections, params, input digests, MLflow URI."""
    from artflow.registry.tracking import tracking_uri

    dumped = settings.model_dump(by_alias=True)
    payload = {
        "step": name,
        "settings": {s: dumped[s] for s in step(name, tune).sections},
        "seed": settings.seed,
        "params": params,
        "inputs": {k: artifact_digest(v.path) for k, v in inputs.items()},
        "mlflow": tracking_uri(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cached(
    name: str,
    key: str,
    cache_dir: str,
    outputs: dict[str, Any],
    work: Callable[[], dict[str, Any]],
    force: bool = False,
    still_valid: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """work() fills `outputs` and returns the step's result; with `cache_dir` an earlier run
    with the same key is restored instead (its output folders, metadata and result)."""
    entry = Path(cache_dir) / name / key if cache_dir else None
    if entry is not None and not force and (entry / "result.json").is_file():
        saved = json.loads((entry / "result.json").read_text())
        if still_valid is None or still_valid(saved["result"]):
            _restore(entry, outputs, saved["metadata"])
            log.info("%s: inputs unchanged since %s: skipped", name, saved["finished"])
            return {**saved["result"], "skipped": True}
    start = time.perf_counter()
    result = json.loads(json.dumps(work(), default=_scalar))
    seconds = round(time.perf_counter() - start, 1)
    log.info("%s: done in %s s", name, seconds)
    if entry is not None:
        _save(entry, outputs, result, seconds)
    return {**result, "skipped": False}


def _save(entry: Path, outputs: dict[str, Any], result: dict[str, Any], seconds: float) -> None:
    tmp = entry.with_name(entry.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key, artifact in outputs.items():
        src = Path(artifact.path)
        if src.is_dir():
            shutil.copytree(src, tmp / key, copy_function=_link_or_copy)
        elif src.is_file():
            _link_or_copy(src, tmp / key)
    record = {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": seconds,
        "result": _slim(result),
        "metadata": {k: dict(a.metadata) for k, a in outputs.items()},
    }
    (tmp / "result.json").write_text(json.dumps(record, indent=2, default=_scalar))
    shutil.rmtree(entry, ignore_errors=True)
    tmp.rename(entry)


def _restore(entry: Path, outputs: dict[str, Any], metadata: dict[str, Any]) -> None:
    for key, artifact in outputs.items():
        src, dst = entry / key, Path(artifact.path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=_link_or_copy)
        elif src.is_file():
            _link_or_copy(src, dst)
        artifact.metadata.update(metadata.get(key, {}))


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard links: the cached images cost no space or time (a copy across file systems)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def cache_entries(cache_dir: str | Path) -> Iterable[tuple[Path, dict[str, Any]]]:
    """(entry folder, recorded result) of every cached step run."""
    for path in sorted(Path(cache_dir).glob("*/*/result.json")):
        try:
            yield path.parent, json.loads(path.read_text())
        except json.JSONDecodeError:
            continue


def _slim(result: dict[str, Any]) -> dict[str, Any]:
    """What the cache keeps: long per-epoch/per-image lists are dropped."""
    return {k: v for k, v in result.items() if not (isinstance(v, list) and len(v) > 50)}


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


# --------------------------------------------------------------------------- data


def fetch_source(source: str, dest: Path) -> str | Path:
    """A local folder/zip for `source`: a path, `kaggle://` (the configured data sets) or
    `dvc://REPO?path=P&rev=R[&remote=NAME][&endpointurl=URL]` (`dvc get` from a DVC remote)."""
    from urllib.parse import parse_qs, urlsplit

    from artflow.errors import ConfigError

    if source.startswith("dvc://"):
        from dvc.repo import Repo

        from artflow.errors import DataError

        parts = urlsplit(source)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        repo = source[len("dvc://") :].split("?", 1)[0]
        if not repo or "path" not in query:
            raise ConfigError(
                f"DVC source {source!r} needs a repository and a path",
                "e.g. dvc:///srv/artflow-data?path=data/demo_source&rev=v1",
            )
        out = dest / Path(query["path"]).name
        endpoint = {"endpointurl": query["endpointurl"]} if query.get("endpointurl") else None
        try:  # `dvc get`: the data at that revision, from the repository's remote
            Repo.get(
                repo,
                query["path"],
                out=str(out),
                rev=query.get("rev") or None,
                remote=query.get("remote") or None,
                remote_config=endpoint,
            )
        except Exception as exc:  # dvc raises many types (SCM, remote, path); all mean the same
            raise DataError(
                f"dvc get {repo} {query['path']} failed: {str(exc).strip()[-500:]}",
                "check the repository, rev, path and the remote's credentials (AWS_* variables)",
            ) from None
        return out
    return source


def source_key(source: str) -> str:
    """What identifies a source's content cheaply: a local tree's fingerprint, else the URL
    (a DVC rev pins content; pin a commit rather than a branch)."""
    return tree_digest(source) if Path(source).exists() else source


def ingest(settings: Settings, source: str, data: Any, dest: Workdir) -> dict[str, Any]:
    """The source (folder, zip, `kaggle://`, `dvc://...`) into the `data` artifact folder."""
    from artflow.data.ingest import ingest as do_ingest

    if source.startswith("kaggle://"):
        from artflow.data.kaggle import download

        fetched = tempfile.mkdtemp(prefix="artflow-kaggle-")
        slugs = [settings.data.kaggle_artworks, settings.data.kaggle_monet]
        local: Any = [download(slug, Path(fetched) / slug.replace("/", "_")) for slug in slugs]
    else:
        local = fetch_source(source, Path(tempfile.mkdtemp(prefix="artflow-source-")))
    report = do_ingest(local, dest, settings)
    data.metadata.update({"source": source, "content_hash": artifact_digest(dest.root)})
    return report


def validate(settings: Settings, wd: Workdir) -> dict[str, Any]:
    from artflow.data.validate import validate as do_validate

    return do_validate(wd, settings)


def sample(settings: Settings, wd: Workdir) -> dict[str, Any]:
    from artflow.data.sample import sample as do_sample

    return do_sample(wd, settings)


# --------------------------------------------------------------------------- models


def with_card(result: dict[str, Any]) -> dict[str, Any]:
    """Every version a pipeline registers gets its model card right away."""
    if result.get("model_name") and result.get("version"):
        from artflow.registry.modelcard import write_model_card

        write_model_card(result["model_name"], str(result["version"]))
    return result


def train(settings: Settings, wd: Workdir, family: str, tune: bool = False) -> dict[str, Any]:
    """Train (after its search when `tune`) and register one family as challenger."""
    return with_card(families.get(family).run_training(settings, wd, tune))


def gatys_search(settings: Settings, wd: Workdir) -> dict[str, Any]:
    """Gatys settings searched per backbone on held-out images, each backbone's best
    registered (artflow.style.gatys.runs.search_backbones); flat metrics per backbone."""
    from artflow.style.gatys.runs import search_backbones

    found = search_backbones(settings, wd)["metrics"]
    metrics = {
        f"{backbone}_{key}": float(value)
        for backbone, values in found.items()
        for key, value in values.items()
        if key in ("best_fixed_cost", "best_trial", "version")
    }
    versions = {backbone: str(values["version"]) for backbone, values in found.items()}
    return {"metrics": metrics, "versions": versions}


def publish_model(result: dict[str, Any], model: Any) -> None:
    """A Model artifact: model.json + evaluation.json; metadata: name, version, URI."""
    from artflow.registry import tracking

    name, version = result.get("model_name") or "", str(result.get("version") or "")
    uri = tracking.model_uri(name, version) if name and version else ""
    meta = {"model_name": name, "version": version, "uri": uri, "family": result.get("family")}
    model.metadata.update(meta)
    out = Path(model.path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    evaluation = {k: result.get(k) for k in ("labels", "confusion", "metrics")}
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2, default=_scalar))


def read_model(model: Any) -> dict[str, Any]:
    """What a Model artifact folder says (model.json + evaluation.json); {} when empty."""
    folder = Path(model.path)
    out: dict[str, Any] = {}
    for name in ("model.json", "evaluation.json"):
        if (folder / name).is_file():
            out.update(json.loads((folder / name).read_text()))
    return out


def select_candidate(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The freshly trained version with the best validation macro-F1 becomes challenger.

    Training scored each version on the validation split (in its Model artifact and on its
    run), so this reads those numbers rather than re-running the models. Selection never looks
    at the frozen test split: that is the gate's, and picking on it would leak.
    """
    from artflow.registry import tracking
    from artflow.registry.views import compare

    trained = [c for c in candidates if c.get("version")]
    if not trained:
        return {"model_name": families.CLASSIFIER, "version": "", "reason": "nothing was trained"}
    name = trained[0]["model_name"]

    def f1(c: dict[str, Any]) -> tuple[float, int]:
        return (float((c.get("metrics") or {}).get("val_macro_f1", -1.0)), int(c["version"]))

    best = max(trained, key=f1)
    tracking.mark_challenger(name, best["version"])
    return {
        **best,
        "comparison": compare(name).markdown(),
        "scores": {c["version"]: {"family": c.get("family"), **c["metrics"]} for c in trained},
        **{k: v for k, v in (best.get("metrics") or {}).items() if k.startswith("val_")},
    }


# --------------------------------------------------------------------------- decisions


def champion_left(result: dict[str, Any]) -> str | None:
    """The champion a recorded gate decision left behind."""
    left = result.get("candidate") if result.get("promoted") else result.get("champion")
    return str(left) if left else None


def champion_unmoved(model_name: str) -> Callable[[dict[str, Any]], bool]:
    """A recorded gate decision holds only while the champion is still what it left behind;
    after a rollback or a manual promotion the gate decides again."""

    def check(result: dict[str, Any]) -> bool:
        from artflow.registry.tracking import alias_version

        current = alias_version(model_name, "champion")
        same = champion_left(result) == (str(current.version) if current else None)
        if not same:
            log.info("gate %s: the champion moved since the last decision: deciding", model_name)
        return same

    return check


def gate(settings: Settings, wd: Workdir, model_name: str, candidate: str) -> dict[str, Any]:
    """The promotion gate inside a pipeline: the decision is an output, never an exception."""
    if not candidate:
        return {"passed": False, "promoted": False, "reason": "no candidate was trained"}
    from artflow.promote import promote

    decision = promote(settings, wd, model_name, candidate, strict=False)
    out = decision.to_dict()
    out.pop("evaluations", None)
    return {**out, "markdown": decision.markdown()}


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
    try:
        from artflow.monitor.check import check_drift

        log_file = log_path or settings.serve.prediction_log
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


# --------------------------------------------------------------------------- reports


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


# --------------------------------------------------------------------------- switched off

SKIPPED = "SKIPPED"  # marker file in a folder artifact that a disabled step left empty


def skip_outputs(outputs: dict[str, Any], reason: str) -> None:
    """Fill a disabled step's outputs so later steps see "nothing here" (decisions stay
    inside components: conditionals do not run in kfp's local runner)."""
    log.info("%s", reason)
    for artifact in outputs.values():
        kind = getattr(artifact, "schema_title", "")
        if kind == "system.Metrics":
            artifact.log_metric("skipped", 1.0)
        elif kind in ("system.Dataset", "system.Model"):
            Path(artifact.path).mkdir(parents=True, exist_ok=True)
            (Path(artifact.path) / SKIPPED).write_text(reason + "\n")
            artifact.metadata["skipped"] = reason
        elif kind in ("system.HTML", "system.Markdown"):
            Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
            Path(artifact.path).write_text(reason + "\n")


def is_skipped(artifact: Any) -> bool:
    return (Path(artifact.path) / SKIPPED).is_file()
