"""`artflow data ...`: demo set, ingest, validate, sample and the EDA report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from artflow.commands.options import (
    DEFAULT_WORKDIR,
    ParamsOption,
    ProfileOption,
    WorkdirOption,
    examples,
    settings,
)
from artflow.errors import ConfigError, DataError

data_app = typer.Typer(
    help="Data: demo set, ingest, validate, sample, EDA report.", no_args_is_help=True
)


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(data_app, name="data")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _workdir(path: Path):
    from artflow.data.layout import Workdir

    if path.exists() and not path.is_dir():
        raise DataError(f"--workdir {path} is a file, not a directory")
    return Workdir.at(path)


@data_app.command("demo", epilog=examples("artflow data demo --out data/demo_source -p smoke"))
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write artworks/ and monet/ to.")
    ],
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Generate the offline demo data in the Kaggle layouts (seeded, a few seconds)."""
    from artflow.data.demo import generate_demo

    cfg = settings(params, profile)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a directory")
    counts = generate_demo(out, cfg.data.demo, cfg.seed)
    artists = {k: v for k, v in counts.items() if k not in ("monet", "photo")}
    _console().print(
        f"demo data in [bold]{out}[/]: {sum(artists.values())} paintings of {len(artists)} "
        f"artists, {counts['monet']} Monet paintings, {counts['photo']} photos "
        f"({cfg.data.demo.image_size}px, seed {cfg.seed})"
    )


@data_app.command(
    "ingest",
    epilog=examples(
        "artflow data ingest --source data/demo_source --workdir data",
        "artflow data ingest -s ~/Downloads/archive.zip -s ~/Downloads/gan-getting-started.zip",
        "artflow data ingest --kaggle ikarus777/best-artworks-of-all-time",
    ),
)
def ingest(
    source: Annotated[
        list[Path] | None,
        typer.Option(
            "--source",
            "-s",
            help="Folder or .zip in the Kaggle layout (repeatable).",
            show_default=False,
        ),
    ] = None,
    kaggle: Annotated[
        list[str] | None,
        typer.Option(
            help="Download with the Kaggle API, e.g. "
            "ikarus777/best-artworks-of-all-time or gan-getting-started (repeatable).",
            show_default=False,
        ),
    ] = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Copy a data set into the workdir's raw/ and write the manifests and ingest report."""
    from artflow.data import kaggle as kaggle_api
    from artflow.data.ingest import ingest as run_ingest

    cfg = settings(params, profile)
    wd = _workdir(workdir)
    sources = list(source or [])
    for slug in kaggle or []:
        sources.append(kaggle_api.download(slug, wd.root / "downloads" / slug.replace("/", "__")))
    if not sources:
        raise ConfigError("nothing to ingest", "pass --source DIR|ZIP or --kaggle SLUG")
    report = run_ingest(sources, wd, cfg)
    _print_ingest(report, wd)


def _print_ingest(report: dict, wd) -> None:
    con = _console()
    art, monet = report["artworks"], report["monet"]
    if art:
        con.print(
            f"artworks: {art['files_ingested']} images of {len(art['per_artist'])} artists "
            f"({art['resized_skipped']} resized/ copies and "
            f"{len(art['duplicates_skipped']) - art['resized_skipped']} other duplicates "
            f"skipped, {art['undecodable']} undecodable)"
        )
        for how in ("normalized", "fuzzy"):
            for spelled, name in art[f"matched_{how}"].items():
                con.print(f"  matched {spelled!r} ({_spelling(spelled)}, {how}) -> {name!r}")
        for item in art["unmatched_folders"]:
            con.print(f"  [yellow]unmatched folder[/] {item['folder']} ({item['files']} files)")
        for name in art["unmatched_csv_rows"]:
            con.print(f"  [yellow]artists.csv row without images:[/] {name}")
    if monet:
        con.print(f"monet: {monet['per_domain']} ({monet['undecodable']} undecodable)")
    con.print(f"manifest: {wd.manifest}\nreport:   {wd.ingest_report}")


def _spelling(text: str) -> str:
    """Why a folder name differed from its csv name, in words a user recognises."""
    import unicodedata

    from artflow.data.names import fix_mojibake

    if fix_mojibake(text) != text:
        return "zip-tool mojibake"
    if not unicodedata.is_normalized("NFC", text):
        return "Unicode NFD"
    return "spelling"


@data_app.command("validate", epilog=examples("artflow data validate --workdir data"))
def validate(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Great Expectations gate: quarantine bad files, fail when the rest is unusable."""
    from artflow.data.validate import validate as run_validate

    wd, cfg = _workdir(workdir), settings(params, profile)
    summary = run_validate(wd, cfg)
    con = _console()
    for name, suite in summary["suites"].items():
        state = "[green]pass[/]" if suite["success"] else "[yellow]issues[/]"
        con.print(f"{name}: {state} ({suite['failed']} of {suite['expectations']} failed)")
    con.print(
        f"usable: {len(summary['chosen_classes'])} chosen classes, "
        f"{summary['quarantined']} quarantined, {len(summary['flagged'])} flagged"
    )
    con.print(f"report: {wd.validation_report}")


@data_app.command("sample", epilog=examples("artflow data sample --workdir data -p smoke"))
def sample(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Choose the artists and write the train/val/frozen-test and style splits."""
    from artflow.data.sample import sample as run_sample

    wd, cfg = _workdir(workdir), settings(params, profile)
    m = run_sample(wd, cfg)
    _console().print(
        f"{m['classes']} classes: train {m['train']}, val {m['val']}, test {m['test']} "
        f"(frozen by content hash); style train {m['style_train']}, held-out photos "
        f"{m['style_test']}\nsplits: {wd.splits}"
    )


@data_app.command("report", epilog=examples("artflow data report --workdir data"))
def report(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Render the EDA figures and their HTML page for this data version."""
    from artflow.data.eda import report as run_report

    index = run_report(_workdir(workdir), settings(params, profile))
    _console().print(f"EDA report: {index}")
