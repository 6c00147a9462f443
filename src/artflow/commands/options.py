"""Options shared by every command, and the one place the CLI loads settings."""

from __future__ import annotations

from pathlib import Path

import typer

from artflow.config import PROJECT_ROOT, Settings, load_settings

DEFAULT_WORKDIR = PROJECT_ROOT / "data"

ParamsOpt = typer.Option(None, "--params", help="params.yaml to load (default: the project's).")
ProfileOpt = typer.Option(
    None,
    "--profile",
    "-p",
    help="Profile overlay: smoke (tiny CPU) or full (GPU). Env: ARTFLOW_PROFILE.",
)
WorkdirOpt = typer.Option(
    DEFAULT_WORKDIR,
    "--workdir",
    "-w",
    help="Data version directory (raw/, interim/, splits/, ...).",
)


def settings(params: Path | None, profile: str | None) -> Settings:
    return load_settings(params, profile)
