"""`artflow pipeline compile|run|submit|schedule`: the Kubeflow pipelines (pipelines/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ExperimentOption,
    KfpHostOption,
    PipelineArgsOption,
    PipelineArgument,
    ProfileOption,
    WorkdirOption,
    examples,
)
from artflow.config import PROJECT_ROOT
from artflow.errors import ConfigError

DEFAULT_OUT = PROJECT_ROOT / "build" / "pipelines"
CLUSTER_WORKDIR = Path("/data/artflow")  # the data volume's mount path inside the steps


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    pipeline_app = typer.Typer(
        help="Kubeflow pipelines: compile, run locally, submit, schedule.", no_args_is_help=True
    )
    host = "--host http://localhost:8080"
    pipeline_app.command(
        "compile", epilog=examples("artflow pipeline compile --out build/pipelines")
    )(compile_cmd)
    pipeline_app.command(
        "run",
        epilog=examples(
            "artflow pipeline run training --local --workdir data -p smoke",
            "artflow pipeline run training --local -a tune=true -a train_resnet=false",
        ),
    )(run_cmd)
    pipeline_app.command(
        "submit", epilog=examples(f"artflow pipeline submit training {host} -p full")
    )(submit_cmd)
    pipeline_app.command(
        "schedule",
        epilog=examples(f"artflow pipeline schedule retrain --cron '0 3 * * 1' {host}"),
    )(schedule_cmd)
    app.add_typer(pipeline_app, name="pipeline")


def _pipelines():
    """pipelines/ and components/ live at the project root, beside src/."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import pipelines

    return pipelines


def _arguments(pairs: list[str], workdir: Path | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg {pair!r} is not KEY=VALUE", "e.g. --arg tune=true")
        lowered = value.lower()
        out[key] = lowered == "true" if lowered in ("true", "false") else value
    if workdir is not None:
        out.setdefault("workdir", str(workdir))
    return out


def compile_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the YAML files.")] = (
        DEFAULT_OUT
    ),
    profile: ProfileOption = None,
) -> None:
    """Compile every pipeline to Kubeflow's YAML (IR)."""
    _set_profile(profile)
    from pipelines.kubeflow_runner import compile_all

    _pipelines()
    for path in compile_all(out):
        typer.echo(f"compiled {path}")


def _set_profile(profile: str | None) -> None:
    import os

    _pipelines()
    if profile and not profile.endswith((".yaml", ".yml")):  # a file is an overlay (stages.py)
        os.environ["ARTFLOW_PROFILE"] = profile


def run_cmd(
    name: PipelineArgument,
    local: Annotated[
        bool, typer.Option("--local", help="Run here with kfp's SubprocessRunner.")
    ] = False,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    profile: ProfileOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run every stage (ignore stamps).")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Print the steps' whole output (it is always in the log)."
        ),
    ] = False,
    args: PipelineArgsOption = None,
) -> None:
    """Run a pipeline on this machine (--local); for a cluster use `pipeline submit`."""
    if not local:
        raise ConfigError(
            "`artflow pipeline run` runs on this machine only",
            "add --local, or use `artflow pipeline submit NAME --host URL` for a cluster",
        )
    _set_profile(profile)
    from pipelines.local_runner import run_local

    result = run_local(
        name.value, workdir, profile or "", verbose=verbose, force=force, **_arguments(args or [])
    )
    typer.secho(f"pipeline {name.value}: finished in {result['seconds']} s", fg="green")
    for stem, decision in result["gates"].items():
        verdict = (
            "promoted"
            if decision.get("promoted")
            else ("passed" if decision.get("passed") else "refused")
        )
        typer.echo(f"  gate {stem}: {verdict} ({decision.get('reason')})")
    summary = Path(workdir) / "pipeline" / f"last_run_{name.value}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(result, indent=2, default=str))
    typer.echo(f"summary: {summary}\nsteps' whole output: {result['log']}")


def submit_cmd(
    name: PipelineArgument,
    host: KfpHostOption,
    workdir: WorkdirOption = CLUSTER_WORKDIR,
    experiment: ExperimentOption = "artflow",
    profile: ProfileOption = None,
    args: PipelineArgsOption = None,
) -> None:
    """Submit one run of a pipeline to a Kubeflow Pipelines endpoint."""
    _set_profile(profile)
    from pipelines import load
    from pipelines.kubeflow_runner import submit

    load(name)  # unknown names fail before any network call
    arguments = {"profile": profile or "", **_arguments(args or [], workdir)}
    run_id = submit(name, host, arguments, experiment)
    typer.secho(f"submitted {name}: run {run_id} on {host}", fg="green")


def schedule_cmd(
    name: PipelineArgument,
    cron: Annotated[str, typer.Option(help="Cron expression, e.g. '0 3 * * 1' (5 or 6 fields).")],
    host: KfpHostOption,
    workdir: WorkdirOption = CLUSTER_WORKDIR,
    experiment: ExperimentOption = "artflow",
    profile: ProfileOption = None,
    args: PipelineArgsOption = None,
) -> None:
    """Create a recurring run of a pipeline (e.g. the weekly retrain)."""
    _set_profile(profile)
    from pipelines import load
    from pipelines.kubeflow_runner import kfp_cron, schedule

    load(name)
    kfp_cron(cron)  # a bad expression fails before any network call
    arguments = {"profile": profile or "", **_arguments(args or [], workdir)}
    job = schedule(name, cron, host, arguments, DEFAULT_OUT, experiment)
    typer.secho(f"scheduled {name} ({cron}): recurring run {job} on {host}", fg="green")
