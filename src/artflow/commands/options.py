"""Options shared by the commands, declared once, and the one place the CLI loads settings.

One name per concept across commands (tested in tests/hygiene/test_cli_conventions.py):
  --model-uri / -m  a registered model version: alias, version number or models:/ URI
                    (the short flag as in MLflow's CLI)
  --family          a classifier family (cnn | resnet50)
  --workdir / -w    the data version directory
  --profile / -p    the profile overlay;  --params  another params.yaml
Choices are Enums, so Typer lists them in --help and refuses other values. The options are
`Annotated` types: `workdir: WorkdirOption = DEFAULT_WORKDIR`, `profile: ProfileOption = None`.
Every command's registration passes `epilog=examples("artflow ...")`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from artflow import families
from artflow.config import PROJECT_ROOT, Settings, load_settings

DEFAULT_WORKDIR = PROJECT_ROOT / "data"


# Classifier families, as declared in artflow.families (one declaration per family).
Family = StrEnum("Family", {name: name for name in families.names("classifier")})


class Split(StrEnum):
    train = "train"
    val = "val"
    test = "test"


class PipelineName(StrEnum):
    """The pipelines of pipelines/ (the keys of pipelines.PIPELINES)."""

    training = "training"
    style = "style"
    retrain = "retrain"


ParamsOption = Annotated[
    Path | None,
    typer.Option(
        "--params", help="params.yaml to load (default: the project's).", show_default=False
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Profile overlay: smoke (tiny CPU) or full (GPU), or an overlay YAML. "
        "Env: ARTFLOW_PROFILE.",
        show_default=False,
    ),
]
WorkdirOption = Annotated[
    Path,
    typer.Option(
        "--workdir",
        "-w",
        help="Data version directory (raw/, interim/, splits/, ...).",
        show_default="data/ of the project",
    ),
]
ModelUriOption = Annotated[
    str,
    typer.Option(
        "--model-uri",
        "-m",
        help="Model version: an alias (champion, challenger), a version number or a models:/ URI "
        "(models:/NAME@alias, models:/NAME/N); stylize also takes a .keras file.",
    ),
]
FamilyOption = Annotated[Family, typer.Option("--family", help="Classifier family.")]
SplitOption = Annotated[Split, typer.Option("--split", help="Data split to score.")]
PipelineArgument = Annotated[PipelineName, typer.Argument(help="Pipeline (pipelines/).")]
KfpHostOption = Annotated[
    str,
    typer.Option("--host", help="Kubeflow Pipelines API URL, e.g. http://localhost:8080."),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="Data source of a pipeline's ingest step: a folder or zip, kaggle://, or "
        "dvc://REPO?path=P&rev=R. Default: data.source in params.yaml.",
        show_default=False,
    ),
]
PipelineArgsOption = Annotated[
    list[str],
    typer.Option(
        "--arg", "-a", help="Pipeline argument KEY=VALUE (repeatable), e.g. -a tune=true."
    ),
]
ExperimentOption = Annotated[str, typer.Option("--experiment", help="Kubeflow experiment.")]
ModelNameArgument = Annotated[
    str,
    typer.Argument(metavar="NAME", help="Registered model name, e.g. artflow-artist-classifier."),
]
PredictionLogOption = Annotated[
    Path | None,
    typer.Option(
        "--log",
        help="Prediction log (JSONL). Default: serve.prediction_log.",
        show_default=False,
    ),
]


def examples(*commands: str) -> str:
    """A command's --help epilog: example invocations, one paragraph each (Rich reflows)."""
    return "Examples:\n\n" + "\n\n".join(commands)


def settings(params: Path | None, profile: str | None) -> Settings:
    return load_settings(params, profile)
