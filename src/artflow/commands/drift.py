"""`artflow drift`: Evidently drift report of the prediction log, the style models' served
quality against their gate, and the retrain triggers.

artflow drift [--window 500|1d] [--log PATH] [--model-uri champion] [--store URL]
              [--check all|classifier|style]
              [--act [--force] [--host URL] [--source SRC] [--cooldown HOURS]]
artflow drift reference --model-uri REF       build + log a version's reference profile
artflow drift simulate --images DIR [--url URL | --log PATH] [--darken 0.3]
"""

from __future__ import annotations

import json
from enum import StrEnum
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
from artflow.errors import ConfigError, DataError

drift_app = typer.Typer(
    help="Drift of served images vs the training reference (Evidently), served style quality "
    "vs the gate, and retraining on either.",
    invoke_without_command=True,
    epilog=examples(
        "artflow drift --window 500 --log data/serving/predictions --workdir data",
        "artflow drift --window 1d --act --host http://localhost:8080 --fail-on-drift",
        "artflow drift --check style --window 500 --store sqlite:///data/serving/serving.db",
    ),
)


class Check(StrEnum):
    """What `artflow drift` looks at: the classifier's inputs, the style models' answers."""

    all = "all"
    classifier = "classifier"
    style = "style"


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
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Serving store URL, read for the style answers' scores and ratings (default: "
            "serve.store, ARTFLOW_SERVING_STORE[_FILE], else the SQLite file beside the log).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        Check,
        typer.Option(help="The classifier's drift, the style models' quality, or both."),
    ] = Check.all,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Report drift of the latest window of served predictions against the reference, and
    the style models' served quality against their gate."""
    if ctx.invoked_subcommand is not None:
        return
    if (force or host or source or cooldown is not None) and not act:
        raise ConfigError(
            "--force, --host, --source and --cooldown only apply with --act", "add --act"
        )
    cfg = settings(params, profile)
    wd = _workdir(workdir)
    quality = None if check == Check.classifier else _quality(cfg, wd, store, window, check)
    verdict, short = None, None
    if check != Check.style:
        try:
            verdict = _classifier(cfg, wd, _log_path(log, cfg), model_uri, window, quality)
        except DataError as exc:  # too few classifications: the style check still acts
            if quality is None:
                raise
            short = exc
    if quality is not None:
        _show_quality(quality)
    if act:
        _act(cfg, wd, verdict, quality, _log_path(log, cfg), host, force, source, cooldown)
    if short is not None:
        raise short
    _fail(fail_on_drift, verdict, quality)


def _classifier(
    cfg: Any, wd: Any, log_path: Path, model_uri: str, window: str | None, quality: Any
) -> dict[str, Any]:
    from artflow.monitor.check import check_drift

    verdict = check_drift(cfg, wd, log_path, model_uri, window, style_quality=quality)
    _show(verdict)
    return verdict


def _quality(
    cfg: Any, wd: Any, store: str | None, window: str | None, check: Check
) -> dict[str, Any] | None:
    """The style quality verdict; None (said so) when the store cannot be read and the
    classifier's check is asked for too."""
    from artflow.commands.ab import store_url
    from artflow.monitor.quality_check import check_quality
    from artflow.serve.store import ServingStore, StoreUnavailable, masked

    url = store_url(cfg, store)
    missing = url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file()
    why = f"no serving store at {masked(url)}" if missing else ""
    if not why:
        # read only: never create or migrate a store (a typo must not look like no answers)
        db = ServingStore(url, "drift", "report", auto_migrate=False)
        try:
            return check_quality(cfg, wd, db.style_window, window)
        except StoreUnavailable as exc:
            why = f"cannot read the serving store {masked(url)}: {exc}"
    if check == Check.style:
        raise DataError(why, "pass --store with the service's store URL")
    _console().print(f"[yellow]style quality not checked:[/] {why}")
    return None


def _act(
    cfg: Any,
    wd: Any,
    verdict: dict[str, Any] | None,
    quality: dict[str, Any] | None,
    log_path: Path,
    host: str | None,
    force: bool,
    source: str | None,
    cooldown: float | None,
) -> None:
    from artflow.commands.pipeline import retrain_runner
    from artflow.monitor.trigger import trigger_retrain, trigger_style_retrain

    if verdict is not None:
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
    if quality is not None:
        outcomes = trigger_style_retrain(
            cfg, wd, quality, retrain_runner, host=host, source=source, cooldown_h=cooldown
        )
        for outcome in outcomes:
            _show_trigger(outcome)
        if not outcomes:
            _console().print("--act: no style champion degraded; nothing to retrain")


def _fail(fail_on_drift: bool, verdict: dict[str, Any] | None, quality: Any) -> None:
    if not fail_on_drift:
        return
    from artflow.monitor.check import DriftDetected

    if verdict is not None and verdict["drifted"]:
        raise DriftDetected(
            f"drift detected: share {verdict['share']:.2f} of columns drifted",
            f"read {verdict['report']['html']}",
        )
    if quality is not None and quality["degraded"]:
        names = ", ".join(f"{d['model_name']} v{d['version']}" for d in quality["degraded"])
        raise DriftDetected(f"style quality degraded: {names}", f"read {quality['report']['html']}")


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


def _show_quality(quality: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    w = quality["window"]
    console.print(
        f"[bold]style quality[/]: {quality['answers']} answers in the window {w['spec']} "
        f"(since {w['since']})"
    )
    if not quality["versions"]:
        console.print(
            f"no style answers of a registered model; report: {quality['report']['html']}"
        )
        return
    from artflow import families
    from artflow.monitor.quality_page import change_text

    table = Table("model", "version", "measure", "window", "gate", "change", "answers")
    for v in quality["versions"]:
        declared = families.model(v["model_name"])
        short = declared.short if declared else v["model_name"]
        model = f"{short}{' (champion)' if v['champion'] else ''}"
        for key, m in v["scores"]["measures"].items():
            change = change_text(m)
            gate = "" if m.get("reference") is None else f"{m['reference']:.4g}"
            table.add_row(
                model, v["version"], key, f"{m['window']:.4g}", gate, change, str(m["answers"])
            )
        r = v["ratings"]
        mean = "" if r["mean"] is None else f"{r['mean']:.2f}"
        table.add_row(
            model, v["version"], "rating", mean, f"floor {r['floor']:g}", "", str(r["count"])
        )
    console.print(table)
    for v in quality["versions"]:
        for reason in v["reasons"]:
            colour = "red" if v["champion"] else "yellow"
            console.print(f"[{colour}]DEGRADED[/] {v['model_name']} v{v['version']}: {reason}")
    console.print(f"report: {quality['report']['html']}")


def _show_trigger(outcome: dict[str, Any]) -> None:
    console = _console()
    if not outcome["triggered"]:
        console.print(f"--act: {outcome['reason']}")
        return
    result = outcome["result"]
    where = outcome["where"]
    console.print(
        f"[bold]{outcome.get('pipeline', 'retrain')} pipeline started ({where})[/], trigger "
        f"{outcome['trigger']}: "
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
