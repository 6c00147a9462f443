"""The fast (distilled) stylizer vs the VGG19 AdaIN stylizer vs Gatys, on one 512x512 pair.

    .venv/bin/python benchmarks/bench_stylize.py [--size 512] [--steps 100] [--probe-steps K]
        [--model REF] [--baseline REF] [--repeats 5] [--json PATH]

REF is what `artflow stylize --method fast --model-uri` takes (alias, version, models:/ URI
or .keras file); `--baseline teacher` is the VGG19 version the --model version was trained
from (its `teacher_version` tag). Without --model a freshly initialised distilled stylizer
(--encoder-width, --decoder-width, 1/4 each by default) is timed; without --baseline, a fresh
VGG19-encoder stylizer with the paper's decoder (weights do not change the speed). When both
are registered versions, the style gate's checks of --model against --baseline (the metrics
each version's training run logged on the held-out pairs, `gate.style_max_loss_ratio`) are
printed and recorded too. Backbone
weights are `none` by default (no download needed). With --probe-steps K only K Gatys steps
run (100 take 10-30 min on 2 cores) and the 100-step time is the median step time (the first,
tracing step excluded) x --steps. Every method runs in this one process; multiply-adds are
counted from the graphs (TF's profiler) as a load-independent figure. Ratios print last; the
results go to benchmarks/results/bench_stylize.json (or --json) with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
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


def stylizer(ref: str | None, encoder: str, enc_width: float, dec_width: float, weights: str):
    """A registered stylizer, or a fresh one of the given shape."""
    from artflow.style.inference import Stylizer, load_stylizer

    if ref:
        return load_stylizer(ref)
    from artflow.style.adain.networks import (
        build_decoder,
        build_encoder,
        build_student_encoder,
        build_stylizer,
        feature_channels,
    )

    enc = build_encoder(weights) if encoder == "vgg19" else build_student_encoder(enc_width)
    return Stylizer(build_stylizer(enc, build_decoder(dec_width, feature_channels(enc))))


def teacher_of(model_ref: str | None) -> str:
    """The `teacher_version` tag of the registered fast stylizer `model_ref`."""
    from artflow.style.inference import load_stylizer

    if not model_ref:
        sys.exit("--baseline teacher needs --model (a registered fast stylizer)")
    version = load_stylizer(model_ref).version
    from artflow.families import STYLIZER
    from artflow.registry import tracking

    mv = tracking.model_version(STYLIZER, version) if version else None
    teacher = mv.tags.get("teacher_version", "") if mv else ""
    if not teacher:
        sys.exit(f"--model {model_ref} (v{version}) was not trained from a teacher stylizer")
    return teacher


def gate(model: Any, baseline: Any) -> dict[str, Any] | None:
    """The style gate's checks of the fast version against the VGG19 one, as the gate runs
    them (artflow.promote.style_checks); None unless both are registered versions."""
    if not (model.version and baseline.version):
        return None
    from artflow.config import load_settings
    from artflow.families import STYLIZER
    from artflow.promote import style_checks

    checks, evaluations = style_checks(load_settings(), STYLIZER, model.version, baseline.version)
    return {
        "candidate": model.version,
        "champion": baseline.version,
        "passed": all(c.passed for c in checks),
        "checks": {c.name: {"value": c.value, "passed": c.passed} for c in checks},
        "evaluations": evaluations,
    }


def gmacs(model: Any, size: int) -> float:
    """Multiply-adds (G) of one stylize call at size x size: content path + style encoding."""
    import tensorflow as tf

    from artflow.style.inference import STYLE_SIDE

    channels = int(model.model.get_layer("encoder").outputs[-1].shape[-1])
    side = min(STYLE_SIDE, size)
    graphs = [
        tf.function(model._fn.python_function).get_concrete_function(
            tf.TensorSpec([1, size, size, 3]),
            tf.TensorSpec([1, side // 8, side // 8, channels]),
            tf.TensorSpec([1, 1]),
        ),
        tf.function(model._encode.python_function).get_concrete_function(
            tf.TensorSpec([1, side, side, 3])
        ),
    ]
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    flops = sum(
        tf.compat.v1.profiler.profile(g.graph, options=opts).total_float_ops for g in graphs
    )
    return flops / 2e9


def time_calls(model: Any, content: np.ndarray, style: np.ndarray, repeats: int) -> dict:
    """Median wall and CPU seconds per call after one tracing call; a new style each call."""
    model.stylize(content, style)
    wall, cpu = [], []
    for i in range(repeats):
        style_i = np.roll(style, i + 1, axis=1)  # no style-cache hits
        w, c = time.perf_counter(), time.process_time()
        model.stylize(content, style_i)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"seconds": statistics.median(wall), "cpu_seconds": statistics.median(cpu)}


def gatys(content: np.ndarray, style: np.ndarray, args: argparse.Namespace) -> dict:
    from artflow.config import load_settings
    from artflow.style.gatys.transfer import run_gatys

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
            print(f"  gatys step {step + 1}/{run_steps}: {spent:.0f} s", file=sys.stderr)

    result = run_gatys(content, style, nst, steps=run_steps, backbone="vgg19", on_step=progress)
    if run_steps < args.steps:
        per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        return {"seconds": per_step * args.steps, "per_step": per_step, "how": "estimated"}
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "per_step": result.seconds / args.steps, "how": "measured"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe-steps", type=int, default=None, help="run K Gatys steps")
    parser.add_argument("--model", default=None, help="fast stylizer ref (default: fresh)")
    parser.add_argument("--baseline", default=None, help="VGG19 stylizer ref (default: fresh)")
    parser.add_argument("--weights", default="none", help="VGG19 weights: none | imagenet | path")
    parser.add_argument("--encoder-width", type=float, default=0.25, help="fresh distilled")
    parser.add_argument("--decoder-width", type=float, default=0.25, help="fresh distilled")
    parser.add_argument("--content", default=None)
    parser.add_argument("--style", default=None)
    parser.add_argument("--json", default=None, help="default: benchmarks/results/<name>.json")
    args = parser.parse_args()

    info = benchlib.machine()
    content, style = pair(args.size, args.content, args.style)
    print(f"{benchlib.describe(info)}; {args.size}x{args.size} content/style")

    baseline = teacher_of(args.model) if args.baseline == "teacher" else args.baseline
    runs = {
        "vgg19": stylizer(baseline, "vgg19", 1.0, 1.0, args.weights),
        "fast": stylizer(args.model, "distilled", args.encoder_width, args.decoder_width, "none"),
    }
    labels = {
        "vgg19": f"v{runs['vgg19'].version} ({args.baseline})"
        if baseline
        else "fresh, VGG19 encoder, decoder_width 1.0",
        "fast": f"v{runs['fast'].version} ({args.model})"
        if args.model
        else f"fresh, distilled encoder x{args.encoder_width}, decoder x{args.decoder_width}",
    }
    results: dict[str, Any] = {"machine": info, "size": args.size, "repeats": args.repeats}
    for key, model in runs.items():
        results[key] = {"label": labels[key], "gmacs": gmacs(model, args.size)}
        results[key] |= time_calls(model, content, style, args.repeats)
        r = results[key]
        print(
            f"{key} stylizer ({r['label']}): {r['gmacs']:.1f} GMAC, median {r['seconds']:.3f} s "
            f"({r['cpu_seconds']:.3f} CPU-s) per image, {1 / r['seconds']:.2f} images/s"
        )
    results["gate"] = gate(runs["fast"], runs["vgg19"])
    results["gatys"] = gatys(content, style, args)
    g = results["gatys"]
    per_step = f"{g['per_step']:.2f} s/step, {g['how']}"
    print(f"gatys vgg19: {args.steps} steps {g['seconds']:.1f} s ({per_step})")
    fast, base = results["fast"], results["vgg19"]
    results["ratios"] = {
        "fast_images_per_s": 1 / fast["seconds"],
        "vgg19_over_fast_time": base["seconds"] / fast["seconds"],
        "vgg19_over_fast_gmacs": base["gmacs"] / fast["gmacs"],
        "gatys_over_fast_time": g["seconds"] / fast["seconds"],
        "gatys_over_vgg19_time": g["seconds"] / base["seconds"],
    }
    path = benchlib.write_json("bench_stylize", results, args.json)
    ratios = results["ratios"]
    print(f"results: {path}")
    print(f"fast stylizer: {ratios['fast_images_per_s']:.2f} images/s at {args.size}x{args.size}")
    print(
        f"speed ratio vgg19/fast: {ratios['vgg19_over_fast_time']:.1f}x time, "
        f"{ratios['vgg19_over_fast_gmacs']:.1f}x multiply-adds"
    )
    print(f"speed ratio gatys/vgg19: {ratios['gatys_over_vgg19_time']:.0f}x")
    verdict = results["gate"]
    if verdict:
        ev = verdict["evaluations"]
        for key in sorted(ev["candidate"]):
            print(f"  {key}: fast {ev['candidate'][key]:.4g} vs vgg19 {ev['champion'][key]:.4g}")
        word = "PASSES" if verdict["passed"] else "FAILS"
        print(f"style gate: fast v{verdict['candidate']} {word} against v{verdict['champion']}")
    print(f"speed ratio gatys/fast: {ratios['gatys_over_fast_time']:.0f}x")


if __name__ == "__main__":
    main()
