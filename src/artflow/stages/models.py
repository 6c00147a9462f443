"""The model steps' work: train a family, search Gatys settings, pick the challenger,
calibrate a version's novelty model; a Model artifact's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artflow import families
from artflow.config import Settings
from artflow.data.layout import Workdir


def with_card(result: dict[str, Any]) -> dict[str, Any]:
    """Every version a pipeline registers gets its model card right away."""
    if result.get("model_name") and result.get("version"):
        from artflow.registry.modelcard import write_model_card

        write_model_card(result["model_name"], str(result["version"]))
    return result


def train(settings: Settings, wd: Workdir, family: str, tune: bool = False) -> dict[str, Any]:
    """Train (after its search when `tune`) and register one family as challenger: the one
    call a training step makes for the family's fit (`Family.run_training`)."""
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


def novelty(settings: Settings, wd: Workdir, model: dict[str, Any]) -> dict[str, Any]:
    """The novelty model of a registered classifier version ("this does not look like a
    painting"), fitted on its drift reference, calibrated on the val split, logged to its
    run and tagged on the version (artflow.monitor.novelty.build_novelty)."""
    if not settings.novelty.enabled:  # serving would not ask for it either
        return {"calibrated": False, "reason": "novelty is off in this profile"}
    if not (model.get("model_name") and model.get("version")):
        return {"calibrated": False, "reason": "no version was registered"}
    from artflow.monitor.novelty import build_novelty

    uri = f"models:/{model['model_name']}/{model['version']}"
    _, summary = build_novelty(settings, wd, uri)
    return {"calibrated": True, **summary}


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


def trained_versions(versions: list[str]) -> list[dict[str, Any]]:
    """The classifier versions the training steps registered (their outputs; '' for a family
    switched off), each with what its training run logged: validation and test scores, labels
    and validation confusion matrix, the same as its Model artifact holds. The evaluate step
    takes every family's version as one list of strings: kfp has no list input of artifacts
    from separate tasks (docs/stack-notes.md)."""
    return [_trained(families.CLASSIFIER, str(v)) for v in versions if v]


def _trained(name: str, version: str) -> dict[str, Any]:
    import mlflow

    from artflow.errors import ModelError
    from artflow.registry import tracking

    registered = tracking.model_version(name, version)
    run = tracking.get_run(registered.run_id) if registered else None
    if run is None:
        raise ModelError(f"{name} v{version} (a training step's output) has no training run")
    metrics = {k: v for k, v in run.data.metrics.items() if k.split("_")[0] in ("val", "test")}
    val = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/evaluation/metrics_val.json")
    return {
        "model_name": name,
        "version": version,
        "uri": tracking.model_uri(name, version),
        "family": registered.tags.get("family"),
        "labels": json.loads(registered.tags.get("labels") or "[]"),
        "metrics": metrics,
        "confusion": {"val": val["confusion_matrix"]},
    }


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


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
