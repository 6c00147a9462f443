"""`artflow models list|compare`, `artflow promote`, `artflow rollback`: registry and gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ModelNameArgument,
    ParamsOption,
    ProfileOption,
    WorkdirOption,
    examples,
    settings,
)
from artflow.registry.tracking import CLASSIFIER


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    models_app = typer.Typer(
        help="Registered models: versions, aliases, metrics.", no_args_is_help=True
    )
    models_app.command("list", epilog=examples("artflow models list"))(list_models)
    models_app.command(
        "compare", epilog=examples(f"artflow models compare {CLASSIFIER} --markdown models.md")
    )(compare)
    app.add_typer(models_app, name="models")
    app.command(
        "promote",
        epilog=examples(
            f"artflow promote {CLASSIFIER} --candidate challenger --workdir data",
            f"artflow promote {CLASSIFIER} --candidate 4 --report-dir build/gate",
        ),
    )(promote)
    app.command("rollback", epilog=examples(f"artflow rollback {CLASSIFIER}"))(rollback)


def list_models() -> None:
    """List registered models with their versions and aliases."""
    from rich.table import Table

    from artflow.registry import views as registry

    models = registry.list_models()
    if not models:
        typer.echo("no registered models yet: train one (artflow train ...) or run a pipeline")
        return
    table = Table(title="registered models")
    for col in ("model", "versions", "aliases", "latest"):
        table.add_column(col)
    for model in models:
        rows = registry.versions(model.name)
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(model.aliases.items())) or "-"
        latest = rows[0].version if rows else "-"
        table.add_row(model.name, str(len(rows)), aliases, latest)
    _console().print(table)


def _console():
    """Rich console; wide enough for the comparison when output is not a terminal (CI logs)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def compare(
    name: ModelNameArgument,
    markdown: Annotated[
        Path | None,
        typer.Option(help="Also write the table as Markdown (a PR comment).", show_default=False),
    ] = None,
) -> None:
    """Show every version of NAME side by side: family, aliases, metrics, data, gate."""
    from artflow.registry import views as registry

    comparison = registry.compare(name)
    _console().print(comparison.table())
    if markdown:
        typer.echo(f"markdown: {comparison.write_markdown(markdown)}")


def promote(
    name: ModelNameArgument,
    candidate: Annotated[
        str, typer.Option(help="Version number or alias to judge.")
    ] = "challenger",
    report_dir: Annotated[
        Path | None,
        typer.Option(help="Also write the decision (JSON + Markdown) here.", show_default=False),
    ] = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Run the gate on a candidate; promote it to champion only if it passes (exit 1 if not)."""
    from artflow.data.layout import Workdir
    from artflow.promote import promote as run_gate
    from artflow.promote import refusal

    cfg, wd = settings(params, profile), Workdir.at(workdir)
    decision = run_gate(cfg, wd, name, candidate, report_dir, strict=False)
    verdict = "promoted to champion" if decision.promoted else "not promoted"
    colour = "green" if decision.passed else "red"
    typer.secho(f"{name} v{decision.candidate}: {verdict} ({decision.reason})", fg=colour)
    for check in decision.checks:
        mark = {"pass": "ok  ", "FAIL": "FAIL", "recorded": "info"}[check.verdict]
        typer.echo(f"  {mark} {check.name}: {_num(check.value)} {check.op} {_num(check.threshold)}")
    if decision.reports:
        typer.echo(f"report: {decision.reports.get('markdown')}")
    if not decision.passed:
        raise refusal(decision)  # exit 1: CI gates on it


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def rollback(name: ModelNameArgument) -> None:
    """Restore the previous champion of NAME (from its champion history)."""
    from artflow.promote import rollback as run_rollback

    demoted, restored = run_rollback(name)
    typer.secho(f"{name}: champion v{demoted} -> v{restored} (rolled back)", fg="yellow")
