"""Gatys (100 steps, VGG19) vs the real-time AdaIN stylizer on the same 512x512 pair.

    .venv/bin/python benchmarks/bench_stylize.py [--size 512] [--steps 100] [--model REF]
        [--probe-steps K]

REF is what `artflow stylize --method fast --model-uri` takes (alias, version, models:/ URI
or .keras file); without it a freshly initialised stylizer is timed (the decoder's weights
do not change its speed). Backbone weights are `none` by default (no download needed; speed
does not depend on weight values). Both run in this one process; the speed ratio prints last.
With --probe-steps K only K Gatys steps run (100 take 20-30 min on 2 cores) and the 100-step
time is estimated as the median step time (the first, tracing step excluded) x --steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def pair(size: int, content: str | None, style: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The given images resized to size x size, or smooth synthetic ones (seeded)."""
    from artflow.imageio import load_rgb

    if content and style:
        return load_rgb(content, size), load_rgb(style, size)
    y, x = np.mgrid[0:size, 0:size] / size
    content_img = np.stack([x, y, 1 - x * y], -1) * 255
    stripes = (np.sin(40 * (x + 0.5 * y)) + 1) / 2
    style_img = np.stack([stripes, 1 - stripes, stripes * 0.5], -1) * 255
    return content_img.astype(np.uint8), style_img.astype(np.uint8)


def fast_stylizer(ref: str | None, weights: str, width: float) -> object:
    from artflow.style.inference import Stylizer, load_stylizer

    if ref:
        return load_stylizer(ref)
    from artflow.models.fast_style import build_decoder, build_encoder, build_stylizer

    return Stylizer(build_stylizer(build_encoder(weights), build_decoder(width)))


def time_fast(stylizer: object, content: np.ndarray, style: np.ndarray, repeats: int) -> float:
    """Median seconds per call after one tracing call; a new style each call (no cache hits)."""
    stylizer.stylize(content, style)
    times = []
    for i in range(repeats):
        style_i = np.roll(style, i + 1, axis=1)
        start = time.perf_counter()
        stylizer.stylize(content, style_i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--probe-steps", type=int, default=None, help="run K Gatys steps, estimate --steps"
    )
    parser.add_argument("--model", default=None, help="stylizer ref (default: fresh weights)")
    parser.add_argument("--weights", default="none", help="VGG19 weights: none | imagenet | path")
    parser.add_argument(
        "--decoder-width", type=float, default=None, help="default: stylizer.decoder_width"
    )
    parser.add_argument("--content", default=None)
    parser.add_argument("--style", default=None)
    args = parser.parse_args()

    import tensorflow as tf

    from artflow.config import load_settings
    from artflow.style.gatys import run_gatys

    if args.decoder_width is None:
        args.decoder_width = load_settings().stylizer.decoder_width
    content, style = pair(args.size, args.content, args.style)
    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs, {args.size}x{args.size} content/style")

    widths = [None] if args.model else sorted({1.0, 0.5, args.decoder_width})
    fast: dict[float | None, float] = {}
    for width in widths:  # the configured width last, so its ratio is the last line
        if width == args.decoder_width and len(widths) > 1:
            continue
        fast[width] = time_fast(
            fast_stylizer(args.model, args.weights, width or 1.0), content, style, args.repeats
        )
    if not args.model:
        fast[args.decoder_width] = time_fast(
            fast_stylizer(None, args.weights, args.decoder_width), content, style, args.repeats
        )
    for width, seconds in fast.items():
        label = args.model or f"fresh, decoder_width {width}"
        print(f"fast stylizer ({label}): median of {args.repeats} {seconds:.3f} s/image")

    nst = load_settings().nst.model_copy(
        update={"weights": args.weights, "steps": args.steps, "image_size": args.size}
    )
    run_steps = min(max(args.probe_steps, 2) if args.probe_steps else args.steps, args.steps)
    start = time.perf_counter()
    stamps: list[float] = []

    def progress(step: int, losses: dict[str, float]) -> None:  # long: show it is alive
        stamps.append(time.perf_counter())
        if (step + 1) % 10 == 0:
            spent = time.perf_counter() - start
            print(
                f"  gatys step {step + 1}/{run_steps}: {spent:.0f} s", file=sys.stderr, flush=True
            )

    result = run_gatys(content, style, nst, steps=run_steps, backbone="vgg19", on_step=progress)
    if run_steps < args.steps:
        per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        gatys = per_step * args.steps
        how = f"estimated from {run_steps} steps"
    else:
        gatys, per_step, how = time.perf_counter() - start, result.seconds / args.steps, "measured"
    print(f"gatys vgg19: {args.steps} steps {gatys:.1f} s ({per_step:.2f} s/step, {how})")
    for width, seconds in fast.items():
        label = args.model or f"decoder_width {width}"
        print(f"speed ratio gatys/fast ({label}): {gatys / seconds:.0f}x")


if __name__ == "__main__":
    main()
