"""/classify against the model's own limit, with adaptive batching on and off.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 30] [--rounds 2] [--size 224]
                                               [--images photos|small]

Registers one untrained CNN (the serving cost does not depend on the weights) as champion in a
throw-away MLflow store. In one run:

* the limit: the model's own throughput in this process (the registered Keras model called on
  float batches of 1..32, no HTTP, no decode), at its best batch size;
* two `bentoml serve` on 127.0.0.1, serve.batching true and false, driven in alternating
  slices (`--rounds`) by the same closed loop of `--clients` clients posting real-sized
  photographs (photo-like JPEGs of 1.2 to 5 megapixels made in memory; `--images small`: one
  256x256 JPEG, the earlier set-up).

Prints requests/s, p50 and p99 per mode, writes bench_serve.json next to this file; the last
lines are served throughput as a fraction of the limit (goal: >= 0.8) and the batching ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LABELS = [f"Artist_{i}" for i in range(11)]


def register_model(size: int) -> str:
    from artflow import tracking
    from artflow.config import load_settings
    from artflow.models.classifier_io import register_classifier
    from artflow.models.cnn import build_cnn

    model = build_cnn(len(LABELS), size, dense_units=256)
    with tracking.start_run("artflow-bench-serve", "bench-cnn", load_settings()):
        version = register_classifier(model, LABELS, size, "cnn", challenger=False).version
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHAMPION, version)
    return version


def params_file(tmp: Path, batching: bool) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["serve"].update(batching=batching, challenger_weight=0.0)
    path = tmp / f"params-{'on' if batching else 'off'}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp: Path, batching: bool) -> tuple[subprocess.Popen, str]:
    from artflow.serve.launch import SERVICE, bentoml_exe

    port = free_port()
    env = {
        **os.environ,
        "ARTFLOW_PARAMS": str(params_file(tmp, batching)),
        "ARTFLOW_PREDICTION_LOG": str(tmp / f"pred-{batching}.jsonl"),
        # One BentoML home per server: BentoML clears its Prometheus files at start-up.
        "BENTOML_HOME": str(tmp / f"bentoml-{batching}"),
        "BENTOML_DO_NOT_TRACK": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("ARTFLOW_PROFILE", None)
    log = open(tmp / f"server-{batching}.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [bentoml_exe(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: see {log.name}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    sys.exit(f"server not ready after 300 s: see {log.name}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def jpeg() -> bytes:
    arr = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def photo(width: int, height: int, seed: int, noise: float = 6.0) -> np.ndarray:
    """A photo-like picture: smooth gradients and soft shapes, plus sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        a, b, f = rng.uniform(40, 200), rng.uniform(-80, 80), rng.uniform(1, 4)
        img[..., c] = a + b * x + 40 * np.sin(f * np.pi * y + c)
    for _ in range(6):  # soft blobs: objects in the scene
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-90, 90, 3)
    if noise:
        img += rng.normal(0, noise, img.shape).astype(np.float32)
    return img.clip(0, 255).astype(np.uint8)


PHOTO_SIZES = [(1280, 960), (1600, 1200), (2048, 1536), (2400, 1800), (2592, 1944)]


def photos() -> list[bytes]:
    """Five photo-like JPEGs (quality 90) of 1.2 to 5 megapixels."""
    out = []
    for i, (w, h) in enumerate(PHOTO_SIZES):
        buf = io.BytesIO()
        Image.fromarray(photo(w, h, seed=i)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def model_limit(size: int, batches: tuple[int, ...] = (1, 4, 8, 16, 32)) -> dict[str, float]:
    """Images/s of the registered model itself at each batch size (no HTTP, no decode)."""
    from artflow.models.classifier_io import load_classifier

    model = load_classifier("champion").model
    out = {}
    for n in batches:
        x = np.random.default_rng(n).uniform(0, 255, (n, size, size, 3)).astype(np.float32)
        model(x, training=False)  # trace / warm up
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0 or calls < 3:
            np.asarray(model(x, training=False))
            calls += 1
        out[str(n)] = round(n * calls / (time.perf_counter() - t0), 2)
        print(f"model alone, batch {n:2d}: {out[str(n)]:6.1f} images/s")
    return out


async def drive(
    url: str, clients: int, seconds: float, warmup: float, bodies: list[bytes] | None = None
) -> dict[str, list]:
    bodies = bodies or [jpeg()]
    latencies, errors = [], [0]

    async def client(i: int, stop_at: float, record: bool) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            k = i
            while time.monotonic() < stop_at:
                body = bodies[k % len(bodies)]
                k += 1
                t0 = time.perf_counter()
                r = await c.post(
                    "/classify",
                    files={"image": ("x.jpg", body, "image/jpeg")},
                    headers={"X-Client-Key": f"bench-{i}"},
                )
                if not record:
                    continue
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1

    warm_until = time.monotonic() + warmup  # the batcher learns the model's cost first
    await asyncio.gather(*(client(i, warm_until, False) for i in range(clients)))
    started = time.monotonic()
    await asyncio.gather(*(client(i, started + seconds, True) for i in range(clients)))
    return {"latencies": latencies, "elapsed": [time.monotonic() - started], "errors": errors}


def batch_size(url: str) -> float:
    """Mean images per classifier call, from the service's artflow_batch_size histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"artflow_batch_size_sum": 0.0, "artflow_batch_size_count": 0.0}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["artflow_batch_size_sum"] / max(totals["artflow_batch_size_count"], 1.0)


def summary(parts: list[dict[str, list]]) -> dict[str, float]:
    lat = np.array([x for p in parts for x in p["latencies"]]) * 1000
    elapsed = sum(p["elapsed"][0] for p in parts)
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "n": len(lat),
        "errors": sum(p["errors"][0] for p in parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per mode")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="classifier input side (px)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating slices per mode")
    parser.add_argument("--images", choices=["photos", "small"], default="photos")
    args = parser.parse_args()
    bodies = photos() if args.images == "photos" else [jpeg()]
    with tempfile.TemporaryDirectory(prefix="artflow-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        version = register_model(args.size)
        print(f"champion v{version}: CNN {args.size}px, {args.clients} clients, {args.seconds:g} s")
        # Both servers run side by side and are driven in alternating slices, so a change in
        # the machine's background load hits both modes alike (CPU here is shared).
        servers = {batching: start(tmp, batching) for batching in (True, False)}
        parts: dict[bool, list] = {True: [], False: []}
        try:
            limit_by_batch = model_limit(args.size)  # the servers are idle meanwhile
            for _ in range(args.rounds):
                for batching, (_, url) in servers.items():
                    slice_s = args.seconds / args.rounds
                    part = asyncio.run(drive(url, args.clients, slice_s, 2.0, bodies))
                    parts[batching].append(part)
            mean_batch = batch_size(servers[True][1])
        finally:
            for proc, _ in servers.values():
                stop(proc)
        print(f"mean classifier batch with batching on: {mean_batch:.1f} images")
        results = {batching: summary(p) for batching, p in parts.items()}
        for batching, r in results.items():
            print(
                f"batching {'on ' if batching else 'off'}: {r['rps']:7.1f} req/s  "
                f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
                f"({r['n']} ok, {r['errors']} errors)"
            )
        on, off = results[True], results[False]
        best = max(limit_by_batch, key=limit_by_batch.get)
        limit = limit_by_batch[best]
        report = {
            "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1)},
            "images": args.images,
            "clients": args.clients,
            "seconds": args.seconds,
            "model_images_per_s_by_batch": limit_by_batch,
            "limit": {"batch": int(best), "images_per_s": limit},
            "batching_on": on,
            "batching_off": off,
            "mean_batch_on": round(mean_batch, 2),
            "fraction_of_limit": {"on": on["rps"] / limit, "off": off["rps"] / limit},
        }
        out = Path(__file__).with_suffix(".json")
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {out}")
        print(f"p99 ratio (on/off): {on['p99'] / off['p99']:.2f}x")
        print(f"throughput ratio (batching on/off): {on['rps'] / off['rps']:.2f}x")
        print(
            f"served / model limit ({limit:.1f} images/s at batch {best}): batching on "
            f"{on['rps'] / limit:.2f}, off {off['rps'] / limit:.2f} (goal >= 0.80)"
        )


if __name__ == "__main__":
    main()
