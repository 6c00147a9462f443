"""Served Gatys: seconds per step at 256 px (what sets serve.gatys_steps and serve.gatys_step_s)
and what working at a small upload's own size saves.

    .venv/bin/python benchmarks/bench_gatys.py [--steps 6] [--small 64] [--backbone vgg19]

In this one process, with the service's settings (params.yaml's nst section, weights none:
the speed does not depend on them): the baseline is what the service did with every upload,
the optimisation at serve.gatys_max_size (256 px, a 64 px image upscaled first); the fast path
works at the upload's own size (--small px). Each runs --steps steps after one warm-up run
(the first step traces the graph); the median step time is reported. Prints seconds per step
and steps/s at each size, the step counts that fit serve.timeout_s with the service's safety
share (artflow.serve.gatys_runs.SYNC_SHARE), writes benchmarks/results/bench_gatys.json with
the machine and its load, and ends with the speed-up of the own-size path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
import numpy as np  # noqa: E402


def step_times(size: int, steps: int, backbone: str) -> list[float]:
    """Seconds of each step of one run on a size x size pair (after a warm-up run)."""
    from artflow.config import load_settings
    from artflow.style.gatys.transfer import run_gatys

    cfg = load_settings().nst.model_copy(update={"weights": "none"})  # no download; same speed
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    run_gatys(content, style, cfg, steps=2, size=size, backbone=backbone)  # trace, warm up
    marks = [time.perf_counter()]
    run_gatys(
        content,
        style,
        cfg,
        steps=steps,
        size=size,
        backbone=backbone,
        on_step=lambda *_: marks.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(marks[1:], marks[2:], strict=False)] or [marks[-1] - marks[0]]


def main() -> None:
    from artflow.config import load_settings
    from artflow.serve.gatys_runs import SYNC_SHARE

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--small", type=int, default=64)
    parser.add_argument("--backbone", default="vgg19")
    args = parser.parse_args()
    serve = load_settings().serve
    info = benchlib.machine()
    print(f"machine: {benchlib.describe(info)}")
    result: dict = {"machine": info, "backbone": args.backbone, "steps": args.steps}
    for label, size in (("baseline", serve.gatys_max_size), ("own_size", args.small)):
        times = step_times(size, args.steps, args.backbone)
        median = statistics.median(times)
        fits = int(serve.timeout_s * SYNC_SHARE / median)
        result[label] = {"size": size, "s_per_step": round(median, 3), "steps_per_s": 1 / median}
        result[label]["steps_fit_timeout"] = fits
        print(
            f"{label:9s} {size:4d} px: {median:.3f} s/step ({1 / median:.2f} steps/s); "
            f"{fits} steps fit {serve.timeout_s} s x {SYNC_SHARE}"
        )
    result["served"] = {"gatys_steps": serve.gatys_steps, "gatys_step_s": serve.gatys_step_s}
    out = benchlib.write_json("bench_gatys", result)
    print(f"served defaults: {serve.gatys_steps} steps, estimate {serve.gatys_step_s} s/step")
    print(f"wrote {out}")
    ratio = result["baseline"]["s_per_step"] / result["own_size"]["s_per_step"]
    print(
        f"own size ({args.small} px) vs upscaled to {serve.gatys_max_size} px: {ratio:.1f}x faster"
    )


if __name__ == "__main__":
    main()
