"""Style commands: `artflow stylize`, `artflow train stylizer`, `artflow train cyclegan`."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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
from artflow.errors import ConfigError


class Method(StrEnum):
    fast = "fast"
    gatys = "gatys"
    monet = "monet"


class Backbone(StrEnum):
    vgg19 = "vgg19"
    resnet50 = "resnet50"


def stylize(
    content: Annotated[Path, typer.Option("--content", "-c", help="Image to restyle (any size).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output image; same size as the content.")
    ],
    style: Annotated[
        Path | None, typer.Option(help="Style image (fast, gatys).", show_default=False)
    ] = None,
    method: Annotated[Method, typer.Option(help="Fast AdaIN, Gatys or photo -> Monet.")] = (
        Method.fast
    ),
    backbone: Annotated[
        Backbone | None,
        typer.Option(help="Gatys feature network (nst.backbone).", show_default=False),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Gatys steps (nst.steps).", show_default=False)
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(min=32, help="Working size: longer side in px.", show_default=False),
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fast: style strength 0..1 (stylizer.strength).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Gatys: imagenet | none | <path> (nst.weights).", show_default=False),
    ] = None,
    search: Annotated[
        bool, typer.Option("--search", help="Gatys: random search (nst.search_trials).")
    ] = (False),
    model_uri: ModelUriOption = "champion",
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Restyle an image: real-time AdaIN (fast), Gatys optimisation, or photo -> Monet."""
    from rich import print as rprint

    from artflow.imageio import load_rgb, save_rgb

    cfg = settings(params, profile)
    nst_update = {
        "backbone": backbone.value if backbone else None,
        "steps": steps,
        "image_size": size,
        "weights": weights,
    }
    nst_update = {k: v for k, v in nst_update.items() if v is not None}
    if weights and weights not in {"imagenet", "none"} and not Path(weights).expanduser().is_file():
        from artflow.errors import ModelError

        raise ModelError(f"weights file not found: {weights}", "pass imagenet, none or a file path")
    if nst_update:
        from artflow.config import load_settings

        cfg = load_settings(params, profile, overrides={"nst": nst_update})
    photo = load_rgb(content)
    if method is not Method.monet and style is None:
        raise ConfigError(f"--method {method.value} needs --style", "pass --style PATH")
    style_img = load_rgb(style) if style is not None else None
    out = out.expanduser()
    start = time.perf_counter()
    if method is Method.gatys:
        from artflow.style.gatys.runs import gatys_run, gatys_search

        if search:
            summary = gatys_search(cfg, photo, style_img, out)
            best = summary["best"]
            rprint(
                f"[green]best of {len(summary['trials'])} trials[/] (fixed cost "
                f"{best['fixed_cost']:.4g}) -> {out}  run {summary['run_id']}"
            )
            return
        from artflow.style.gatys.settings import resolve

        chosen = resolve(cfg.nst)  # the style pipeline's registered best, else the preset
        summary = gatys_run(cfg, photo, style_img, out, chosen.cfg)
        rprint(
            f"[green]gatys {chosen.cfg.backbone}[/] ({chosen.label}) {cfg.nst.steps} steps in "
            f"{summary['seconds']:.1f} s, style loss {summary['style_loss']:.4g} (content "
            f"image: {summary['content_style_loss']:.4g}) -> {out}  run {summary['run_id']}"
        )
        return
    from artflow.style.inference import load_monet, load_stylizer

    if method is Method.fast:
        model = load_stylizer(model_uri)
        alpha = cfg.stylizer.strength if strength is None else strength
        result = model.stylize(photo, style_img, strength=alpha, size=size)
    else:
        model = load_monet(model_uri)
        result = model.translate(photo, size=size)
    save_rgb(result, out)
    if model.note:
        rprint(f"[yellow]note:[/] {model.note}")
    rprint(
        f"[green]{method.value}[/] {model.name} v{model.version or '-'} in "
        f"{time.perf_counter() - start:.2f} s -> {out}"
    )


def train_stylizer(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="The CPU-fast stylizer (stylizer.fast), taught by the registered VGG19 one.",
        ),
    ] = False,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Train the AdaIN decoder on the workdir's content and style images; register it."""
    from rich import print as rprint

    from artflow.data.layout import Workdir
    from artflow.style.adain.train import train_fast_stylizer, train_stylizer

    train = train_fast_stylizer if fast else train_stylizer
    result = train(settings(params, profile), Workdir.at(workdir))
    rprint(
        f"[green]{result['family']}[/] {result['model_name']} v{result['version']} (challenger): "
        f"style loss {result['metrics']['style_loss']:.4g} vs content image "
        f"{result['metrics']['content_style_loss']:.4g}, ssim {result['metrics']['ssim']:.3f}"
        f"  run {result['run_id']}"
    )


def train_cyclegan(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint.")
    ] = False,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Train the photo -> Monet CycleGAN (checkpoints under models/cyclegan); register it."""
    from rich import print as rprint

    from artflow.data.layout import Workdir
    from artflow.style.cyclegan.train import train_cyclegan as train

    result = train(settings(params, profile), Workdir.at(workdir), resume=resume)
    rprint(
        f"[green]cyclegan[/] steps {result['start_step']} -> {result['step']}, "
        f"{result['model_name']} v{result['version']} (challenger): cycle L1 "
        f"{result['metrics']['cycle_l1']:.4f}  run {result['run_id']}"
    )


def train_gatys(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    params: ParamsOption = None,
    profile: ProfileOption = None,
) -> None:
    """Search Gatys settings per backbone on held-out images; register each backbone's best."""
    from rich import print as rprint

    from artflow.data.layout import Workdir
    from artflow.style.gatys.runs import search_backbones

    result = search_backbones(settings(params, profile), Workdir.at(workdir))
    for backbone, found in result["backbones"].items():
        rprint(
            f"[green]gatys {backbone}[/] best of {len(found['trials'])} trials: trial "
            f"{found['best_trial']} (fixed cost {found['best_fixed_cost']:.4g}) -> "
            f"artflow-gatys-settings v{found['version']}  run {found['run_id']}"
        )


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command(
        "stylize",
        epilog=examples(
            "artflow stylize -c photo.jpg --style starry.jpg -o out.png",
            "artflow stylize -c photo.jpg --style starry.jpg -o out.png --method gatys --steps 100",
            "artflow stylize -c photo.jpg -o monet.png --method monet -m challenger",
        ),
    )(stylize)
    train_app.command(
        "stylizer",
        epilog=examples(
            "artflow train stylizer --workdir data --profile smoke",
            "artflow train stylizer --fast --workdir data --profile smoke",
        ),
    )(train_stylizer)
    train_app.command(
        "cyclegan", epilog=examples("artflow train cyclegan --workdir data --resume")
    )(train_cyclegan)
    train_app.command(
        "gatys", epilog=examples("artflow train gatys --workdir data --profile smoke")
    )(train_gatys)
