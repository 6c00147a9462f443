"""`artflow ...`: every stage and operation, one sub-command each.

Each command module under `artflow.commands` registers its own commands; heavy libraries
(TensorFlow, MLflow, GX, Evidently, BentoML) are imported inside the commands so that
`artflow --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import click
import typer
from typer.exceptions import TyperException

from artflow import logs
from artflow.errors import ArtflowError
from artflow.logs import LogFormat, LogLevel

COMMAND_MODULES = ("data", "classify", "style", "registry", "pipeline", "drift", "serve", "ab")

app = typer.Typer(
    name="artflow",
    help="MLOps for artworks: data, training, style transfer, registry, drift and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _logging(
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            help="How the library's log lines look: auto is rich on a terminal, plain lines"
            " otherwise. Env: ARTFLOW_LOG_FORMAT.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(help="Least severe log level shown (default info). Env: ARTFLOW_LOG_LEVEL."),
    ] = None,
) -> None:
    """MLOps for artworks: data, training, style transfer, registry, drift and serving."""
    logs.configure(log_format, log_level)


train_app = typer.Typer(help="Train models (classifier, stylizer, CycleGAN).", no_args_is_help=True)
app.add_typer(train_app, name="train")

for _name in COMMAND_MODULES:
    importlib.import_module(f"artflow.commands.{_name}").register(app, train_app)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors print one message, no traceback."""
    try:
        # Without standalone mode, click returns (rather than raises) a `typer.Exit(n)` code.
        code = app(args=argv, standalone_mode=False)
    except ArtflowError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return exc.exit_code
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except (click.ClickException, TyperException) as exc:
        # typer >= 0.20 vendors click (typer._click): its usage errors are TyperExceptions
        if hasattr(exc, "show"):
            exc.show()
        else:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return exc.exit_code
    except (click.exceptions.Abort, typer.Abort):
        typer.secho("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        return 130
    except Exception as exc:
        refused = _refused(exc)
        if refused is None:
            raise
        typer.secho(f"error: {refused}", err=True, fg=typer.colors.RED)
        return refused.exit_code
    return code if isinstance(code, int) else 0


def _refused(exc: Exception) -> ArtflowError | None:
    """A 401/403 of the MLflow server met outside artflow's registry layer (a run, a logged
    model): "not allowed: <identity> may not <action>", not a traceback."""
    if getattr(exc, "error_code", None) not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return None
    from artflow.registry import tracking

    return tracking.refused(exc)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
