"""A/B test and novelty commands: `artflow ab report`, `artflow novelty calibrate`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ModelUriOption,
    ParamsOption,
    ProfileOption,
    WorkdirOption,
    examples,
    settings,
)
from artflow.config import Settings

if TYPE_CHECKING:
    from artflow.abtest import Verdict

ab_app = typer.Typer(help="The online A/B test: feedback, accuracy per variant, verdict.")
novelty_app = typer.Typer(help='"This does not look like a painting": the novelty model.')


def store_url(cfg: Settings, given: str | None = None) -> str:
    """The serving store the service writes (artflow.serve.store.resolve_url)."""
    from artflow.serve.predlog import resolve_log_path
    from artflow.serve.store import resolve_url

    return resolve_url(given or cfg.serve.store, resolve_log_path(cfg.serve.prediction_log))


@ab_app.command(
    "report",
    epilog=examples(
        "artflow ab report",
        "artflow ab report --out reports/ab.md --no-track",
        "artflow ab report --store postgresql://artflow_serving@db:5432/artflow_serving",
    ),
)
def report(
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Serving store URL (default: serve.store, ARTFLOW_SERVING_STORE[_FILE], else "
            "the SQLite file beside the prediction log).",
            show_default=False,
        ),
    ] = None,
    out: Path = typer.Option(Path("ab_report.md"), "--out", "-o", help="Markdown report."),
    days: float = typer.Option(
        7.0, "--days", min=0.001, help="Window of the stylizations' ratings, in days."
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="Log an MLflow run."),
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Online accuracy per variant, the z-test and the verdict (keep / promote / not enough);
    the stylizations' and Monet paintings' ratings per model version in the window."""
    from rich import print as rprint

    from artflow import abtest
    from artflow.errors import DataError
    from artflow.serve.feedback import ab_outcomes
    from artflow.serve.store import ServingStore, StoreUnavailable, masked

    cfg = settings(params, profile)
    url = store_url(cfg, store)
    # the report reads; it never creates or migrates a store (a typo must not look empty)
    db = ServingStore(url, "ab-report", "report", auto_migrate=False)
    try:
        outcomes = ab_outcomes(db.feedback_rows(("champion", "challenger")))
        ratings = abtest.rating_summary(
            db.style_window(time.time() - days * 86400), cfg.abtest.alpha
        )
    except StoreUnavailable as exc:
        raise DataError(
            f"cannot read the serving store {masked(url)}: {exc}",
            "pass --store with the service's store URL, or run `artflow store migrate` first",
        ) from None
    verdict = abtest.verdict(outcomes["champion"], outcomes["challenger"], cfg.abtest)
    text = abtest.markdown(verdict)
    versions = outcomes["versions"]
    if versions:
        text += "\nVersions: " + ", ".join(f"{v} v{n}" for v, n in sorted(versions.items())) + "\n"
    text += abtest.ratings_markdown(ratings, days)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({**verdict.as_dict(), "versions": versions, "ratings": ratings}, indent=2)
    )
    if track:
        _track(cfg, verdict, out, versions)
    try:  # every pod exports the latest verdict in /metrics (artflow_ab_verdict)
        db.admin_set("ab_verdict", {"decision": verdict.decision, "versions": versions})
    except StoreUnavailable as exc:
        rprint(f"[yellow]warning:[/] verdict not recorded in the serving store: {exc}")
    rprint(text)
    rprint(f"[green]{verdict.decision}[/] -> {out}")


def _track(cfg: Settings, verdict: Verdict, out: Path, versions: dict[str, str]) -> None:
    import mlflow

    from artflow.registry import tracking

    params = {
        "min_samples": verdict.min_samples,
        "alpha": verdict.alpha,
        "test": "two-proportion z",
    }
    params.update({f"{k}_version": v for k, v in versions.items()})
    tags = {"artflow.stage": "ab-report", "artflow.ab_decision": verdict.decision}
    with tracking.start_run("artflow-ab", "ab-report", cfg, params=params, tags=tags):
        metrics: dict[str, float] = {}
        for variant in ("champion", "challenger"):
            acc = getattr(verdict, variant)
            metrics[f"{variant}_n"] = acc.n
            if acc.accuracy is not None:
                metrics.update(
                    {
                        f"{variant}_accuracy": acc.accuracy,
                        f"{variant}_lower": acc.lower,
                        f"{variant}_upper": acc.upper,
                    }
                )
        if verdict.p_value is not None and verdict.z is not None:
            metrics.update(p_value=verdict.p_value, z=verdict.z)
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(out))
        mlflow.log_artifact(str(out.with_suffix(".json")))


@novelty_app.command(
    "calibrate",
    epilog=examples("artflow novelty calibrate --model-uri champion --workdir data"),
)
def calibrate(
    model_uri: ModelUriOption = "champion",
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Fit the novelty score on the training reference and calibrate it on the val split."""
    from rich import print as rprint

    from artflow.data.layout import Workdir
    from artflow.monitor.novelty import build_novelty

    _, summary = build_novelty(settings(params, profile), Workdir.at(workdir), model_uri)
    rprint(
        f"[green]novelty[/] {summary['model_name']} v{summary['model_version']}: threshold "
        f"{summary['threshold']:.3f} (k {summary['k']}), {summary['validation_flagged']:.1%} "
        f"of {summary['validation']} validation paintings flagged"
    )


def gallery(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    out: Path | None = typer.Option(
        None, "--out", help="Folder (default: gallery/ beside the service's prediction log)."
    ),
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Write the web page's style gallery: one training painting per artist."""
    from rich import print as rprint

    from artflow.data.layout import Workdir
    from artflow.serve.gallery import FOLDER, build_gallery
    from artflow.serve.predlog import resolve_log_path

    cfg = settings(params, profile)
    folder = out or resolve_log_path(cfg.serve.prediction_log).parent / FOLDER
    files = build_gallery(Workdir.at(workdir), folder.expanduser())
    rprint(f"[green]gallery[/] {len(files)} artists -> {folder}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("gallery", epilog=examples("artflow gallery --workdir data"))(gallery)
    app.add_typer(ab_app, name="ab")
    app.add_typer(novelty_app, name="novelty")
