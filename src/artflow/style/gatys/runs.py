"""Tracked Gatys runs: one stylization, or a random search over its hyperparameters.

Each run logs its params, the loss of every step, the content/style/result images, a loss
curve and the shared quality metrics (artflow.style.metrics) to the MLflow experiment
`artflow-style`; search candidates are child runs of one parent run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from artflow.config import NstCfg, Settings
from artflow.imageio import load_rgb, save_rgb

EXPERIMENT = "artflow-style"


def _progress(steps: int, label: str) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4g}"),
        TimeRemainingColumn(),
        transient=True,
    )


def _run_with_progress(
    content: np.ndarray, style: np.ndarray, cfg: NstCfg, seed: int, label: str
) -> Any:
    from artflow.style.gatys.transfer import run_gatys

    with _progress(cfg.steps, label) as bar:
        task = bar.add_task(label, total=cfg.steps, loss=float("nan"))
        return run_gatys(
            content,
            style,
            cfg,
            seed=seed,
            on_step=lambda _, losses: bar.update(task, advance=1, loss=losses["total"]),
        )


def _log_history(history: list[dict[str, float]]) -> None:
    """All steps in one batch write (sqlite is slow per call)."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(f"loss_{key}", value, now, step)
        for step, losses in enumerate(history)
        for key, value in losses.items()
    ]
    run_id = mlflow.active_run().info.run_id
    for i in range(0, len(metrics), 900):  # MLflow caps a batch at 1000 metrics
        mlflow.MlflowClient().log_batch(run_id, metrics=metrics[i : i + 900])


def _log_images(images: dict[str, np.ndarray]) -> None:
    import mlflow

    for name, image in images.items():
        mlflow.log_image(image, f"images/{name}.png")


def _nst_params(cfg: NstCfg) -> dict[str, Any]:
    skip = {"search_trials", "search_images", "presets"}
    return {f"nst.{k}": v for k, v in cfg.model_dump().items() if k not in skip}


def gatys_run(
    settings: Settings,
    content: np.ndarray,
    style: np.ndarray,
    out: Path,
    cfg: NstCfg | None = None,
    run_name: str = "gatys",
    nested: bool = False,
) -> dict[str, Any]:
    """Stylize, write `out` and `<out stem>.loss.png`, track everything; returns a summary."""
    import mlflow

    from artflow.registry import tracking
    from artflow.style.metrics import style_metrics
    from artflow.style.plots import loss_curve

    cfg = (cfg or settings.nst).for_backbone()
    params = {**_nst_params(cfg), "method": "gatys"}
    with tracking.start_run(EXPERIMENT, run_name, settings, params=params, nested=nested) as run:
        result = _run_with_progress(content, style, cfg, settings.seed, f"gatys {cfg.backbone}")
        save_rgb(result.image, out)
        curve = loss_curve(result.history, out.with_suffix(".loss.png"), f"Gatys {cfg.backbone}")
        metrics = style_metrics(result.image, content, style, weights=settings.nst.weights)
        baseline = style_metrics(content, content, style, weights=settings.nst.weights)
        _log_history(result.history)
        mlflow.log_metrics(
            {
                **metrics,
                "content_style_loss": baseline["style_loss"],
                "final_loss": result.final_loss,
                "seconds": result.seconds,
                "seconds_per_step": result.seconds / max(len(result.history), 1),
            }
        )
        _log_images({"content": content, "style": style, "result": result.image})
        mlflow.log_artifact(str(curve), "plots")
        return {
            "run_id": run.info.run_id,
            "out": str(out),
            "loss_curve": str(curve),
            "seconds": result.seconds,
            "final_loss": result.final_loss,
            "history": result.history,
            **metrics,
            "content_style_loss": baseline["style_loss"],
        }


def sample_candidate(cfg: NstCfg, rng: np.random.Generator) -> NstCfg:
    """One random-search candidate around the configured values (log-uniform scales)."""

    def around(value: float, spread: float) -> float:
        return float(value * 10 ** rng.uniform(-spread, spread))

    layer_w = rng.uniform(0.2, 1.0, len(cfg.style_layer_weights))
    return cfg.model_copy(
        update={
            "learning_rate": around(cfg.learning_rate, 0.5),
            "style_weight": around(cfg.style_weight, 1.0),
            "content_weight": around(cfg.content_weight, 1.0),
            "style_layer_weights": [round(float(w), 4) for w in layer_w / layer_w.mean()],
        }
    )


def gatys_search(
    settings: Settings, content: np.ndarray, style: np.ndarray, out: Path
) -> dict[str, Any]:
    """settings.nst.search_trials candidates as child runs; the lowest fixed cost wins.

    The winner's image is written to `out` and its settings to `<out stem>.search.json`.
    """
    import mlflow

    from artflow.registry import tracking
    from artflow.style.gatys.transfer import fixed_cost

    base = settings.nst.for_backbone()
    rng = np.random.default_rng(settings.seed)
    trials: list[dict[str, Any]] = []
    params = {**_nst_params(base), "method": "gatys-search", "trials": base.search_trials}
    with tracking.start_run(EXPERIMENT, "gatys-search", settings, params=params) as parent:
        for i in range(base.search_trials):
            cand = sample_candidate(base, rng)
            trial_out = out.with_name(f"{out.stem}.trial{i}{out.suffix}")
            summary = gatys_run(settings, content, style, trial_out, cand, f"trial-{i}", True)
            cost = fixed_cost(load_rgb(trial_out), content, style, base, settings.seed)
            mlflow.MlflowClient().log_metric(summary["run_id"], "fixed_cost", cost)
            trials.append(
                {
                    "trial": i,
                    "run_id": summary["run_id"],
                    "fixed_cost": cost,
                    "final_loss": summary["final_loss"],
                    "out": str(trial_out),
                    "params": cand.model_dump(),
                }
            )
        best = min(trials, key=lambda t: t["fixed_cost"])
        for t in trials:  # every candidate's image and curve stay in its child run
            trial_out = Path(t["out"])
            if t is best:
                trial_out.replace(out)
                trial_out.with_suffix(".loss.png").replace(out.with_suffix(".loss.png"))
            else:
                trial_out.unlink(missing_ok=True)
                trial_out.with_suffix(".loss.png").unlink(missing_ok=True)
        best["out"] = str(out)
        mlflow.log_metric("best_fixed_cost", best["fixed_cost"])
        mlflow.log_params({f"best.{k}": json.dumps(v) for k, v in best["params"].items()})
        mlflow.log_image(load_rgb(out), "images/best.png")
        report = out.with_suffix(".search.json")
        report.write_text(json.dumps({"best": best, "trials": trials}, indent=2))
        mlflow.log_artifact(str(report))
        return {"run_id": parent.info.run_id, "best": best, "trials": trials, "out": str(out)}


def _score_trial(
    cand: NstCfg, base: NstCfg, pairs: list[tuple[np.ndarray, np.ndarray]], seed: int
) -> tuple[float, list[np.ndarray]]:
    """Mean fixed cost of `cand`'s results over the pairs (scored with `base`'s weights)."""
    from artflow.style.gatys.transfer import fixed_cost, run_gatys

    costs, images = [], []
    for content, style in pairs:
        result = run_gatys(content, style, cand, seed=seed)
        costs.append(fixed_cost(result.image, content, style, base, seed))
        images.append(result.image)
    return float(np.mean(costs)), images


def search_backbone(
    settings: Settings, backbone: str, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """Random search for one backbone: trial 0 is its preset, the rest sampled around it.

    One parent run per backbone, one child run per trial (params, mean fixed cost, the
    first pair's result); the winner is registered (artflow.style.gatys.settings).
    """
    import mlflow

    from artflow.registry import tracking
    from artflow.style.gatys.settings import register_best

    base = settings.nst.for_backbone(backbone)
    rng = np.random.default_rng(settings.seed)
    params = {**_nst_params(base), "method": "gatys-search", "pairs": len(pairs)}
    trials: list[dict[str, Any]] = []
    with tracking.start_run(EXPERIMENT, f"gatys-search-{backbone}", settings, params=params) as run:
        for i in range(base.search_trials):
            cand = base if i == 0 else sample_candidate(base, rng)
            with mlflow.start_run(run_name=f"trial-{i}", nested=True) as child:
                mlflow.log_params({**_nst_params(cand), "trial": i})
                cost, images = _score_trial(cand, base, pairs, settings.seed)
                mlflow.log_metric("fixed_cost", cost)
                _log_images({"result": images[0]})
            trials.append(
                {"trial": i, "run_id": child.info.run_id, "fixed_cost": cost, "cfg": cand}
            )
        best = min(trials, key=lambda t: t["fixed_cost"])
        mlflow.log_metric("best_fixed_cost", best["fixed_cost"])
        mlflow.log_param("best_trial", best["trial"])
        version = register_best(best["cfg"], run.info.run_id, best["fixed_cost"])
        return {
            "backbone": backbone,
            "run_id": run.info.run_id,
            "version": version,
            "best_trial": best["trial"],
            "best_fixed_cost": best["fixed_cost"],
            "best": {k: v for k, v in best["cfg"].model_dump().items() if k != "presets"},
            "trials": [{k: v for k, v in t.items() if k != "cfg"} for t in trials],
        }


def search_pairs(settings: Settings, wd: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """nst.search_images (photo, painting) pairs of held-out images: photos of the style test
    split as content, paintings of the classifier's frozen test split as style (one artist
    after another), so the search never scores itself on what the models trained on."""
    import pandas as pd

    from artflow.style.data import require, style_images

    n = settings.nst.search_images
    photos = require(style_images(wd, "test", "photo"), "style test photo", wd)[:n]
    test = pd.read_csv(wd.split_csv("test"))
    one_each = test.groupby("artist", sort=True).head(1)  # first painting of every artist
    paintings = [str(wd.abs(p)) for p in one_each["path"]][:n]
    require(paintings, "test painting", wd)
    return [(load_rgb(p), load_rgb(paintings[i % len(paintings)])) for i, p in enumerate(photos)]


def search_backbones(
    settings: Settings, wd: Any, backbones: tuple[str, ...] = ("vgg19", "resnet50")
) -> dict[str, Any]:
    """The style pipeline's Gatys stage: search and register each backbone's best settings."""
    pairs = search_pairs(settings, wd)
    results = {b: search_backbone(settings, b, pairs) for b in backbones}
    wd.metrics.mkdir(parents=True, exist_ok=True)
    summary = {
        b: {k: r[k] for k in ("version", "best_trial", "best_fixed_cost", "run_id")}
        for b, r in results.items()
    }
    (wd.metrics / "gatys_search.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {"backbones": results, "metrics": summary}
