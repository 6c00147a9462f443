"""`artflow train classifier`, `artflow tune cnn`, `artflow evaluate`: artist classification."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    Family,
    FamilyOption,
    ModelUriOption,
    ParamsOption,
    ProfileOption,
    Split,
    SplitOption,
    WorkdirOption,
    examples,
    settings,
)
from artflow.errors import DataError


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    train_app.command(
        "classifier",
        epilog=examples(
            "artflow train classifier --family cnn --workdir data --profile smoke",
            "artflow train classifier --family resnet50 --weights none -w data -p smoke",
            "artflow train classifier --workers 2 --workdir data --profile smoke",
        ),
    )(train_classifier)
    tune_app = typer.Typer(help="Hyperparameter searches.", no_args_is_help=True)
    tune_app.command("cnn", epilog=examples("artflow tune cnn --workdir data --profile smoke"))(
        tune_cnn
    )
    app.add_typer(tune_app, name="tune")
    app.command(
        "evaluate",
        epilog=examples(
            "artflow evaluate --model-uri models:/artflow-artist-classifier@challenger -w data",
            "artflow evaluate -m 3 --split val",
        ),
    )(evaluate)


def _check_workdir(workdir: Path, splits: tuple[str, ...] = tuple(Split)) -> object:
    """Fail fast (before TensorFlow loads) when the workdir lacks the sampled splits."""
    from artflow.data.layout import Workdir

    wd = Workdir.at(workdir)
    for path in [wd.split_csv(s) for s in splits] + [wd.labels]:
        if not path.is_file():
            raise DataError(
                f"{path} does not exist", "run `artflow data sample` (or `make demo`) first"
            )
    return wd


class Distribute(StrEnum):
    """training.distribute: the tf.distribute strategy (artflow.runtime)."""

    auto = "auto"
    none = "none"
    mirrored = "mirrored"
    multiworker = "multiworker"


def train_classifier(
    family: FamilyOption = Family.cnn,
    weights: Annotated[
        str | None,
        typer.Option(
            help="ResNet50 base weights: imagenet | none | <file> (resnet.weights).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train on N workers (training.workers): N local processes on 127.0.0.1, "
            "or a TFJob with N pods when run inside a cluster.",
            show_default=False,
        ),
    ] = None,
    distribute: Annotated[
        Distribute | None,
        typer.Option(help="tf.distribute strategy (training.distribute).", show_default=False),
    ] = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Train, evaluate and register an artist classifier (challenger alias)."""
    overrides: dict = {}
    if weights is not None:
        overrides["resnet"] = {"weights": weights}
    training = {"workers": workers, "distribute": distribute and distribute.value}
    if any(v is not None for v in training.values()):
        overrides["training"] = {k: v for k, v in training.items() if v is not None}
    if overrides:
        from artflow.config import load_settings

        cfg = load_settings(params, profile, overrides=overrides)
    else:
        cfg = settings(params, profile)
    wd = _check_workdir(workdir)
    from artflow.classify.train import train_classifier as train

    result = train(cfg, wd, family=family.value)
    if result.get("chief") is False:  # a worker of a multi-worker training: the chief reports
        typer.echo(f"worker {result['index']} done, weights sha256 {result['weights_sha256']}")
        return
    _summary(f"trained {family.value}", result)


def tune_cnn(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Random search over the CNN's dense units and learning rate; registers the best model."""
    cfg = settings(params, profile)
    wd = _check_workdir(workdir)
    from artflow.classify.tune import tune_cnn as tune

    result = tune(cfg, wd)
    _summary("tuned cnn", result)
    typer.echo(f"best: {result['best']} over {len(result['trials'])} trials")


def evaluate(
    model_uri: ModelUriOption = "champion",
    split: SplitOption = Split.test,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Score a registered classifier on a split: metrics, confusion matrix, MLflow run."""
    cfg = settings(params, profile)
    wd = _check_workdir(workdir, (split.value,))
    from artflow.classify.evaluate import evaluate as run_eval

    result = run_eval(cfg, wd, model_uri, split.value)
    typer.echo(
        f"{result['model_uri']} on {split.value} (n={result['n']}): "
        f"accuracy {result['accuracy']:.3f}, "
        f"macro-F1 {result['macro_f1']:.3f}, {result['latency_ms_per_image']:.1f} ms/image, "
        f"{result['model_size_mb']:.1f} MB"
    )
    typer.echo(f"report: {result['report_dir']}")


def _summary(title: str, result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.3f}")
    if result.get("version"):
        table.add_row("registered", f"{result['model_name']} v{result['version']} (challenger)")
    table.add_row("mlflow run", str(result.get("run_id")))
    Console().print(table)
