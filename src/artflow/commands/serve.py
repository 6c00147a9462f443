"""`artflow serve` (run the service locally) and `artflow bento build` (package it)."""

from __future__ import annotations

from typing import Annotated

import typer

from artflow.commands.options import ParamsOption, ProfileOption, examples, settings

bento_app = typer.Typer(help="Package the service as a Bento.", no_args_is_help=True)
store_app = typer.Typer(
    help="The serving store (answers, feedback, A/B, jobs, admin state).", no_args_is_help=True
)


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command(
        "serve", epilog=examples("artflow serve", "artflow serve --port 3001 --profile smoke")
    )(serve)
    app.add_typer(bento_app, name="bento")
    bento_app.command(
        "build", epilog=examples("artflow bento build", "artflow bento build --challenger")
    )(build)
    app.add_typer(store_app, name="store")
    store_app.command(
        "migrate",
        epilog=examples(
            "artflow store migrate",
            "artflow store migrate --store postgresql://artflow_serving@db:5432/artflow_serving",
        ),
    )(migrate)


def migrate(
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="Store URL (default: as the service resolves it).", show_default=False
        ),
    ] = None,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Create or upgrade the serving store's schema (Alembic); safe to run again."""
    from rich import print as rprint

    from artflow.commands.ab import store_url
    from artflow.errors import ConfigError
    from artflow.serve.store import masked
    from artflow.serve.store import migrate as upgrade

    url = store_url(settings(params, profile), store)
    try:
        revision = upgrade(url)
    except Exception as exc:  # noqa: BLE001 - one message naming the store
        raise ConfigError(
            f"cannot migrate the serving store {masked(url)}: {exc}",
            "check the URL, the role's rights and that the database exists",
        ) from None
    rprint(f"[green]serving store[/] {masked(url)} at revision {revision}")


def serve(
    port: Annotated[
        int | None,
        typer.Option(help="Port (default: serve.port in params).", show_default=False),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to bind (default: serve.host, 127.0.0.1).", show_default=False
        ),
    ] = None,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Serve classify / stylize / Monet with A/B routing on 127.0.0.1 (BentoML)."""
    from rich import print as rprint

    from artflow.serve.launch import preflight, run_server

    cfg = settings(params, profile)
    host = host or cfg.serve.host
    port = port or cfg.serve.port
    for line in preflight():
        rprint(line)
    rprint(f"[bold]artflow serve[/] on http://{host}:{port}  (web page: /ui, readiness: /readyz)")
    run_server(host, port, params, cfg.profile, cfg.serve.shutdown_grace_s)  # exec: no return


def build(
    params: ParamsOption = None,
    profile: ProfileOption = None,
    version: Annotated[
        str | None,
        typer.Option(
            help="Bento version (default: names the classifier versions).", show_default=False
        ),
    ] = None,
    challenger: Annotated[
        bool, typer.Option("--challenger", help="Carry the classifier challenger too (A/B).")
    ] = False,
) -> None:
    """Build the Bento carrying the promoted models (it serves without reaching MLflow)."""
    from rich import print as rprint

    from artflow.serve.bento import build_bento

    cfg = settings(params, profile)
    result = build_bento(cfg, version=version, with_challenger=challenger)
    rprint(f"[green]built[/] {result['tag']}")
    for key, tag in sorted(result["models"].items()):
        rprint(f"  carries {key}: {tag}")
    for key, value in sorted(result["labels"].items()):
        rprint(f"  {key} = {value}")
    rprint(f"serve it with: BENTOML_HOME={result['bentoml_home']} bentoml serve {result['tag']}")
