"""`artflow drift`: Evidently drift report of the prediction log, and the retrain trigger.

artflow drift [--window 500|1d] [--log PATH] [--model-uri champion]
              [--act [--force] [--host URL] [--source SRC] [--cooldown HOURS]]
artflow drift reference --model-uri REF       build + log a version's reference profile
artflow drift simulate --images DIR [--url URL | --log PATH] [--darken 0.3]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ModelUriOption,
    ParamsOption,
    PredictionLogOption,
    ProfileOption,
    SourceOption,
    WorkdirOption,
    examples,
    settings,
)
from artflow.errors import ConfigError

drift_app = typer.Typer(
    help="Drift of served images vs the training reference (Evidently), and retraining on drift.",
    invoke_without_command=True,
    epilog=examples(
        "artflow drift --window 500 --log data/serving/predictions --workdir data",
        "artflow drift --window 1d --act --host http://localhost:8080 --fail-on-drift",
    ),
)


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(drift_app, name="drift")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _workdir(path: Path):
    from artflow.data.layout import Workdir

    return Workdir.at(path)


def _log_path(log: Path | None, cfg: Any) -> Path:
    """--log, else the service's own resolution (ARTFLOW_PREDICTION_LOG, then params)."""
    if log is not None:
        return log
    from artflow.serve.predlog import resolve_log_path

    return resolve_log_path(cfg.serve.prediction_log)


@drift_app.callback()
def drift(
    ctx: typer.Context,
    window: Annotated[
        str | None,
        typer.Option(
            help="Last N requests (e.g. 500) or a duration (30m, 12h, 1d).", show_default=False
        ),
    ] = None,
    log: PredictionLogOption = None,
    model_uri: ModelUriOption = "champion",
    act: Annotated[
        bool,
        typer.Option(
            "--act", help="When drifted, start the retrain pipeline (locally or on --host)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --act: retrain even without drift.")
    ] = False,
    host: Annotated[
        str | None,
        typer.Option(
            help="With --act: submit to this Kubeflow Pipelines URL, not locally.",
            show_default=False,
        ),
    ] = None,
    source: SourceOption = None,
    cooldown: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="With --act: hours during which a retrain of the same model version is not "
            "started again. Default: drift.retrain_cooldown_h.",
            show_default=False,
        ),
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option("--fail-on-drift", help="Exit 1 when the window drifted (for cron / CI)."),
    ] = False,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Report drift of the latest window of served predictions against the reference."""
    if ctx.invoked_subcommand is not None:
        return
    if (force or host or source or cooldown is not None) and not act:
        raise ConfigError(
            "--force, --host, --source and --cooldown only apply with --act", "add --act"
        )
    from artflow.monitor.check import check_drift

    cfg = settings(params, profile)
    wd = _workdir(workdir)
    log_path = _log_path(log, cfg)
    verdict = check_drift(cfg, wd, log_path, model_uri, window)
    _show(verdict)
    if act:
        from artflow.commands.pipeline import retrain_runner
        from artflow.monitor.trigger import trigger_retrain

        outcome = trigger_retrain(
            cfg,
            wd,
            verdict,
            log_path,
            retrain_runner,
            host=host,
            force=force,
            source=source,
            cooldown_h=cooldown,
        )
        _show_trigger(outcome)
    if fail_on_drift and verdict["drifted"]:
        from artflow.monitor.check import DriftDetected

        raise DriftDetected(
            f"drift detected: share {verdict['share']:.2f} of columns drifted",
            f"read {verdict['report']['html']}",
        )


def _show(verdict: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    colour = "red" if verdict["drifted"] else "green"
    state = "DRIFT" if verdict["drifted"] else "no drift"
    w = verdict["window"]
    console.print(
        f"[bold {colour}]{state}[/]: {verdict['drifted_columns']}/{verdict['columns']} columns "
        f"drifted (share {verdict['share']:.2f}, threshold {verdict['drift_share_threshold']:.2f})"
        f" in a window of {w['records']} requests ({w['start']} .. {w['end']}), model "
        f"{verdict['model']['name']} v{verdict['model']['version']}"
    )
    drifted = [t for t in verdict["tests"] if t["drifted"]]
    if drifted:
        table = Table("column", "kind", "test", "score", "threshold")
        for t in drifted[:15]:
            score = "n/a" if t["score"] is None else f"{t['score']:.3g}"
            table.add_row(t["column"], t["kind"], t["test"], score, f"{t['threshold']:.3g}")
        console.print(table)
        if len(drifted) > 15:
            console.print(f"... and {len(drifted) - 15} more (see the JSON verdict)")
    console.print(f"report: {verdict['report']['html']}\nverdict: {verdict['report']['json']}")
    if verdict.get("mlflow_run_id"):
        console.print(f"MLflow run {verdict['mlflow_run_id']} (experiment artflow-drift)")


def _show_trigger(outcome: dict[str, Any]) -> None:
    console = _console()
    if not outcome["triggered"]:
        console.print(f"--act: {outcome['reason']}")
        return
    result = outcome["result"]
    where = outcome["where"]
    console.print(
        f"[bold]retrain pipeline started ({where})[/], trigger {outcome['trigger']}: "
        f"{outcome['reason']}\n  trigger run {outcome['trigger_run_id']} (experiment "
        f"artflow-retrain), report {outcome['report']}"
    )
    if "seconds" in result:
        console.print(f"  finished in {result['seconds']} s")
        for stem, decision in (result.get("gates") or {}).items():
            console.print(f"  gate {stem}: {json.dumps(decision, default=str)[:200]}")
    elif result.get("run_id"):
        console.print(f"  Kubeflow run {result['run_id']} on {result.get('host')}")


@drift_app.command(
    "reference", epilog=examples("artflow drift reference --model-uri champion --workdir data")
)
def reference(
    model_uri: ModelUriOption = "champion",
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Build a classifier version's reference profile and log it with the version."""
    from artflow.monitor.reference import build_reference

    cfg = settings(params, profile)
    path = build_reference(cfg, _workdir(workdir), model_uri)
    summary = json.loads((path.parent / "summary.json").read_text())
    _console().print(
        f"reference of {summary['model_name']} v{summary['model_version']}: "
        f"{summary['images']} {summary['split']} images, embedding {summary['embedding_dim']}"
        f" -> {summary['embedding_components']} components "
        f"({summary['explained_variance']:.0%} of variance)\n  {path}"
    )


@drift_app.command(
    "simulate",
    epilog=examples(
        "artflow drift simulate --images data/splits/val.csv --url http://127.0.0.1:3000",
        "artflow drift simulate -i photos/ --darken 0.3 --log data/serving/predictions -n 200",
    ),
)
def simulate(
    images: Annotated[
        Path,
        typer.Option(
            "--images", "-i", help="Folder of images, or a split CSV (e.g. splits/val.csv)."
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            help="Send to the running service (e.g. http://127.0.0.1:3000).", show_default=False
        ),
    ] = None,
    log: PredictionLogOption = None,
    model_uri: ModelUriOption = "champion",
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Sample this many.", show_default=False),
    ] = None,
    dim: Annotated[
        float | None,
        typer.Option(
            "--darken",
            min=0.0,
            max=1.0,
            help="Scale brightness, e.g. 0.3 (underexposed).",
            show_default=False,
        ),
    ] = None,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Send images to the service (--url), or classify them here and append to the log."""
    from artflow.monitor import simulate as sim

    cfg = settings(params, profile)
    paths = sim.image_paths(images, limit, seed=cfg.seed)
    console = _console()
    if url:
        out = sim.send_images(url, paths, dim=dim)
        console.print(f"sent {out['sent']} images to {url}: statuses {out['statuses']}")
    else:
        from artflow.classify.io import load_classifier
        from artflow.serve.predlog import PredictionLog

        writer = PredictionLog(_log_path(log, cfg), pod="simulate")
        out = sim.log_images(load_classifier(model_uri), paths, writer, dim=dim)
        console.print(f"logged {out['logged']} predictions to {out['log']}")
    top = sorted(out["artists"].items(), key=lambda kv: -kv[1])[:5]
    console.print("predicted: " + ", ".join(f"{a} x{n}" for a, n in top))
