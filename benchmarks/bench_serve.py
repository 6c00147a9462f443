"""/classify throughput and latency with adaptive batching on and off (16 concurrent clients).

    .venv/bin/python benchmarks/bench_serve.py [--seconds 20] [--clients 16] [--size 128]

Registers one untrained CNN (the serving cost does not depend on the weights) as champion in a
throw-away MLflow store, then starts `bentoml serve` twice on 127.0.0.1, once with
serve.batching true and once false, and drives each with the same closed loop of clients
posting a 256x256 JPEG. Prints requests/s, p50 and p99 per mode; the last line is the
throughput ratio (goal: >= 2x with p99 within 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import io
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
        "BENTOML_HOME": str(tmp / "bentoml"),
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


async def drive(url: str, clients: int, seconds: float) -> dict[str, float]:
    body, latencies, errors = jpeg(), [], 0

    async def client(i: int, stop_at: float) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                r = await c.post(
                    "/classify",
                    files={"image": ("x.jpg", body, "image/jpeg")},
                    headers={"X-Client-Key": f"bench-{i}"},
                )
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

    warm_until = time.monotonic() + 3  # let the batcher learn the model's cost first
    await asyncio.gather(*(client(i, warm_until) for i in range(clients)))
    latencies.clear()
    started = time.monotonic()
    await asyncio.gather(*(client(i, started + seconds) for i in range(clients)))
    elapsed = time.monotonic() - started
    lat = np.array(latencies) * 1000
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "n": len(lat),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="classifier input side (px)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="artflow-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        version = register_model(args.size)
        print(f"champion v{version}: CNN {args.size}px, {args.clients} clients, {args.seconds:g} s")
        results = {}
        for batching in (True, False):
            proc, url = start(tmp, batching)
            try:
                results[batching] = asyncio.run(drive(url, args.clients, args.seconds))
            finally:
                stop(proc)
            r = results[batching]
            print(
                f"batching {'on ' if batching else 'off'}: {r['rps']:7.1f} req/s  "
                f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
                f"({r['n']} ok, {r['errors']} errors)"
            )
        on, off = results[True], results[False]
        print(f"p99 ratio (on/off): {on['p99'] / off['p99']:.2f}x")
        print(f"throughput ratio (batching on/off): {on['rps'] / off['rps']:.2f}x")


if __name__ == "__main__":
    main()
