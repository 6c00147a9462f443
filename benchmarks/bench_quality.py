"""/stylize latency with the sampled quality scoring off and on, in one run.

    .venv/bin/python benchmarks/bench_quality.py [--requests 20] [--rounds 5] [--size 256]
        [--share 1.0] [--json PATH]

Two `bentoml serve` processes over the same registered models (an untrained 224 px CNN as the
classifier champion, which /readyz needs, and an untrained VGG19 AdaIN stylizer): one with
`serve.quality_sample` 0 (off), one with `--share` (1.0 by default: every answer is scored,
the honest worst case; the worker is then busy all the time and the queue drops the rest).
Rounds alternate off / on with one sequential client posting a --size px content and style
image. Before every round the "on" server's scoring has drained (its worker finished or
dropped every sample), so the "off" rounds run on a machine without scoring and the "on"
rounds with it, as a pod with sampling runs. The ratio of the p50s prints last (acceptance:
within 5%); the results go to benchmarks/results/bench_quality.json with the machine and its
load.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
import httpx  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-admin-token"
DRAIN_S = 600
WARM_UP = 5


def register_models() -> str:
    """The classifier champion and an untrained VGG19 AdaIN stylizer (the challenger: served
    while none is champion); the stylizer's version."""
    from artflow.config import load_settings
    from artflow.registry import tracking
    from artflow.style.adain.networks import build_decoder, build_encoder, build_stylizer

    benchlib.register_model(["a", "b", "c", "d"], 224, "artflow-bench-quality")
    with tracking.start_run("artflow-bench-quality", "bench-stylizer", load_settings()):
        info = tracking.log_keras_model(
            build_stylizer(build_encoder("none"), build_decoder()), tracking.STYLIZER
        )
    version = str(info.registered_model_version)
    tracking.mark_challenger(tracking.STYLIZER, version)
    return version


def params(tmp: Path, name: str, share: float) -> Path:
    import yaml

    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    doc["serve"].update(quality_sample=share, admin_max_failures=1000)
    doc["nst"]["weights"] = "none"  # the metric extractor, as in the tests (no download)
    path = tmp / f"params-{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def png(size: int, seed: int) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def timed(client: httpx.Client, files: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        r = client.post("/stylize", files=files)
        if r.status_code != 200:
            sys.exit(f"/stylize answered {r.status_code}: {r.text[:300]}")
        out.append((time.perf_counter() - started) * 1000)
    return out


def quality(client: httpx.Client) -> dict:
    status = client.post("/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    return status.json()["quality"]


def drain(client: httpx.Client, sampled: int) -> dict:
    """Wait until the server has scored, dropped or failed every one of `sampled` answers."""
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        q = quality(client)
        if q["scored"] + q["dropped"] + q["failed"] >= sampled:
            return q
        time.sleep(0.5)
    sys.exit(f"the scoring did not drain in {DRAIN_S} s: {q}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--share", type=float, default=1.0, help="serve.quality_sample when on")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = benchlib.machine()
    print(f"machine: {benchlib.describe(info)}")
    files = {
        "content": ("c.png", png(args.size, 1), "image/png"),
        "style": ("s.png", png(args.size, 2), "image/png"),
    }
    times: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="artflow-bench-quality-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        version = register_models()
        print(f"stylizer v{version}; {args.size} px; share on: {args.share}")
        servers = {}
        try:
            for mode, share in (("off", 0.0), ("on", args.share)):
                env = {
                    "ARTFLOW_PARAMS": str(params(tmp, mode, share)),
                    "ARTFLOW_ADMIN_TOKEN": TOKEN,
                    "ARTFLOW_PREDICTION_LOG": str(tmp / f"predictions-{mode}"),
                }
                servers[mode] = benchlib.serve(tmp, mode, env, ROOT)
            with (
                httpx.Client(base_url=servers["off"][1], timeout=120) as off,
                httpx.Client(base_url=servers["on"][1], timeout=120) as on,
            ):
                timed(off, files, WARM_UP)  # traced functions, first allocations
                timed(on, files, WARM_UP)
                sampled = WARM_UP
                q = drain(on, sampled)  # the worker has started and scored: it is warm
                for _ in range(args.rounds):
                    times["off"] += timed(off, files, args.requests)
                    times["on"] += timed(on, files, args.requests)
                    sampled += args.requests
                    q = drain(on, sampled) if args.share >= 1.0 else quality(on)
        finally:
            for proc, _ in servers.values():
                benchlib.stop(proc)
    result = {"machine": info, "size": args.size, "share": args.share, "scoring": q}
    for mode in ("off", "on"):
        result[mode] = benchlib.latency_summary(times[mode])
        p50, p90 = result[mode]["p50_ms"], result[mode]["p90_ms"]
        print(f"sampling {mode:3s} p50 {p50:7.1f} ms  p90 {p90:7.1f} ms")
    print(f"scoring: {q['scored']} scored, {q['dropped']} dropped, {q['failed']} failed")
    out = benchlib.write_json("bench_quality", result, args.json)
    print(f"wrote {out}")
    ratio = result["on"]["p50_ms"] / result["off"]["p50_ms"]
    print(f"/stylize p50 sampling on ({args.share:g}) / off: {ratio:.3f}x")


if __name__ == "__main__":
    main()
