"""`artflow pipeline compile|run|submit|schedule`: the Kubeflow pipelines (pipelines/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ExperimentOption,
    KfpHostOption,
    PipelineArgsOption,
    PipelineArgument,
    ProfileOption,
    SourceOption,
    WorkdirOption,
    examples,
)
from artflow.config import PROJECT_ROOT, Settings
from artflow.data.layout import Workdir, default_source
from artflow.errors import ConfigError
from artflow.logs import LogLevel

DEFAULT_OUT = PROJECT_ROOT / "build" / "pipelines"
MlflowUriOption = Annotated[
    str,
    typer.Option(
        "--mlflow-uri",
        help="MLflow tracking URI for the steps (on a cluster they read it from their Secret).",
    ),
]


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
            "artflow pipeline run training --local --source data/demo_source -p smoke",
            "artflow pipeline run training --local -a tune=true -a train_resnet=false",
        ),
    )(run_cmd)
    pipeline_app.command(
        "submit",
        epilog=examples(
            f"artflow pipeline submit training {host} -p full "
            "--source 'dvc://https://github.com/ORG/data?path=data/demo_source&rev=v3'"
        ),
    )(submit_cmd)
    pipeline_app.command(
        "schedule",
        epilog=examples(f"artflow pipeline schedule retrain --cron '0 3 * * 1' {host}"),
    )(schedule_cmd)
    app.add_typer(pipeline_app, name="pipeline")


def retrain_runner(
    name: str, *, settings: Settings, wd: Workdir, host: str | None, **arguments: Any
) -> dict[str, Any]:
    """The drift trigger's runner (artflow.monitor.trigger.Runner): pipeline `name` with kfp's
    local runner on `wd`, or submitted to `host`, given only the parameters it declares."""
    import pipelines

    built = pipelines.load(name, settings, local=not host)  # a local build needs no git commit
    spec = getattr(built, "component_spec", None)
    declared = set(getattr(spec, "inputs", None) or {})
    arguments = {k: v for k, v in arguments.items() if k in declared}
    profile = "" if settings.profile == "default" else settings.profile
    if host:
        from pipelines.kubeflow_runner import submit

        if "workdir" in declared:  # a pipeline that still shares a volume
            arguments["workdir"] = str(wd.root)
        return {
            "submitted": True,
            "host": host,
            "run_id": submit(name, host, {"profile": profile, **arguments}),
        }
    from pipelines.local_runner import run_local

    return run_local(name, wd.root, profile, settings=settings, **arguments)


def _arguments(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg {pair!r} is not KEY=VALUE", "e.g. --arg tune=true")
        lowered = value.lower()
        out[key] = lowered == "true" if lowered in ("true", "false") else value
    return out


def compile_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the YAML files.")] = (
        DEFAULT_OUT
    ),
    profile: ProfileOption = None,
) -> None:
    """Compile every pipeline to Kubeflow's YAML (IR), configured from params.yaml + profile."""
    from pipelines.kubeflow_runner import compile_all

    for path in compile_all(out, _settings(profile)):
        typer.echo(f"compiled {path}")


def _settings(profile: str | None) -> Settings:
    """params.yaml + the profile (a name, or an overlay YAML), passed on explicitly."""
    from artflow.stages import settings_for

    return settings_for(profile or "")


def _cluster_run(
    name: str, source: str | None, mlflow_uri: str, profile: str | None, args: list[str] | None
) -> tuple[Settings, dict[str, object]]:
    """A cluster run's settings and parameters; an unknown pipeline fails before any network
    call, and the steps read MLflow from their Secret unless a URI is given."""
    cfg = _settings(profile)
    import pipelines

    pipelines.load(name, cfg)
    arguments: dict[str, object] = {
        "source": default_source(cfg, source, local=False),
        "profile": profile or "",
        **_arguments(args or []),
    }
    if mlflow_uri:
        arguments["mlflow_uri"] = mlflow_uri
    return cfg, arguments


def run_cmd(
    name: PipelineArgument,
    local: Annotated[
        bool, typer.Option("--local", help="Run here with kfp's SubprocessRunner.")
    ] = False,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    source: SourceOption = None,
    mlflow_uri: MlflowUriOption = "",
    profile: ProfileOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run every step (forget the local cache first).")
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            help="The steps' log level, and the least severe of their records shown here "
            "(default: artflow's --log-level). Their whole output is always in the log file.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Same as --log-level debug.")
    ] = False,
    args: PipelineArgsOption = None,
) -> None:
    """Run a pipeline on this machine (--local); for a cluster use `pipeline submit`.

    Its artifacts, cache and logs go under <workdir>/pipeline/; the steps see none of it."""
    if not local:
        raise ConfigError(
            "`artflow pipeline run` runs on this machine only",
            "add --local, or use `artflow pipeline submit NAME --host URL` for a cluster",
        )
    cfg = _settings(profile)
    from pipelines.local_runner import run_local

    arguments = {"source": default_source(cfg, source), **_arguments(args or [])}
    if mlflow_uri:
        arguments["mlflow_uri"] = mlflow_uri
    result = run_local(
        name.value,
        workdir,
        profile or "",
        settings=cfg,
        log_level=LogLevel.debug if verbose else log_level,
        force=force,
        **arguments,
    )
    typer.secho(f"pipeline {name.value}: finished in {result['seconds']} s", fg="green")
    ran, restored = result["ran"], result["restored"]
    typer.echo(f"  ran: {', '.join(ran) or 'nothing'}; restored from the cache: {len(restored)}")
    for model, decision in result["gates"].items():
        verdict = (
            "promoted"
            if decision.get("promoted")
            else ("passed" if decision.get("passed") else "refused")
        )
        typer.echo(f"  gate {model}: {verdict} ({decision.get('reason')})")
        typer.echo(f"    report: {decision.get('report')}")
    typer.echo(f"artifacts (data, splits, models, reports): {result['outputs']}")
    summary = Path(workdir) / "pipeline" / f"last_run_{name.value}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(result, indent=2, default=str))
    typer.echo(f"summary: {summary}\nsteps' whole output: {result['log']}")


def submit_cmd(
    name: PipelineArgument,
    host: KfpHostOption,
    source: SourceOption = None,
    mlflow_uri: MlflowUriOption = "",
    experiment: ExperimentOption = "artflow",
    profile: ProfileOption = None,
    args: PipelineArgsOption = None,
) -> None:
    """Submit one run of a pipeline to a Kubeflow Pipelines endpoint."""
    from pipelines.kubeflow_runner import submit

    cfg, arguments = _cluster_run(name, source, mlflow_uri, profile, args)
    run_id = submit(name, host, arguments, experiment, cfg)
    typer.secho(f"submitted {name}: run {run_id} on {host}", fg="green")


def schedule_cmd(
    name: PipelineArgument,
    cron: Annotated[str, typer.Option(help="Cron expression, e.g. '0 3 * * 1' (5 or 6 fields).")],
    host: KfpHostOption,
    source: SourceOption = None,
    mlflow_uri: MlflowUriOption = "",
    experiment: ExperimentOption = "artflow",
    profile: ProfileOption = None,
    args: PipelineArgsOption = None,
) -> None:
    """Create a recurring run of a pipeline (e.g. the weekly retrain)."""
    from pipelines.kubeflow_runner import kfp_cron, schedule

    kfp_cron(cron)  # a bad expression fails before any network call
    cfg, arguments = _cluster_run(name, source, mlflow_uri, profile, args)
    job = schedule(name, cron, host, arguments, DEFAULT_OUT, experiment, cfg)
    typer.secho(f"scheduled {name} ({cron}): recurring run {job} on {host}", fg="green")
