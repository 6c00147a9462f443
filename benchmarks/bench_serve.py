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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
import httpx
import numpy as np
import psutil
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LABELS = [f"Artist_{i}" for i in range(11)]


def register_model(size: int) -> str:
    return benchlib.register_model(LABELS, size, "artflow-bench-serve")


def params_file(tmp: Path, batching: bool, overrides: dict | None = None) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["serve"].update(overrides or {})
    raw["serve"].update(batching=batching, challenger_weight=0.0)
    path = tmp / f"params-{'on' if batching else 'off'}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start(tmp: Path, batching: bool, overrides: dict | None = None) -> tuple[subprocess.Popen, str]:
    env = {
        "ARTFLOW_PARAMS": str(params_file(tmp, batching, overrides)),
        "ARTFLOW_PREDICTION_LOG": str(tmp / f"pred-{batching}.jsonl"),
    }
    return benchlib.serve(tmp, "on" if batching else "off", env, ROOT)


stop = benchlib.stop
jpeg = benchlib.jpeg


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


def model_limit(
    size: int, batches: tuple[int, ...] = (1, 4, 8, 16, 32), streams: int = 1, label: str = ""
) -> dict[str, float]:
    """Images/s of the registered model itself at each batch size (no HTTP, no decode):
    `streams` threads each calling it on its own batch, all the time."""
    from concurrent.futures import ThreadPoolExecutor

    from artflow.classify.io import load_classifier

    model = load_classifier("champion").model
    out = {}
    for n in batches:
        x = np.random.default_rng(n).uniform(0, 255, (n, size, size, 3)).astype(np.float32)
        model(x, training=False)  # trace / warm up
        t0 = time.perf_counter()

        def loop(_: int, x: np.ndarray = x, t0: float = t0) -> int:
            calls = 0
            while time.perf_counter() - t0 < 3.0 or calls < 3:
                np.asarray(model(x, training=False))
                calls += 1
            return calls

        with ThreadPoolExecutor(streams) as pool:
            calls = sum(pool.map(loop, range(streams)))
        out[str(n)] = round(n * calls / (time.perf_counter() - t0), 2)
        print(f"model alone{label}, batch {n:2d}: {out[str(n)]:6.1f} images/s")
    return out


def model_limit_threads(size: int, intra: int, streams: int) -> dict[str, float]:
    """model_limit in a fresh process whose TensorFlow pools have `intra` threads (they can
    only be set before TensorFlow's first operation), with `streams` concurrent callers."""
    out = subprocess.run(
        [sys.executable, __file__, "--limit-only", str(intra), str(streams), "--size", str(size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(out.strip().rsplit("\n", 1)[0])
    return json.loads(out.strip().splitlines()[-1])


def multipart(body: bytes) -> tuple[bytes, str]:
    """(body, content type) of a multipart upload as httpx would send it, built once."""
    request = httpx.Request(
        "POST", "http://x/classify", files={"image": ("x.jpg", body, "image/jpeg")}
    )
    return request.read(), request.headers["content-type"]


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Status of one HTTP/1.1 response; its body is read and dropped (Content-Length or
    chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    return status


async def drive(
    url: str,
    clients: int,
    seconds: float,
    warmup: float,
    bodies: list[bytes] | None = None,
    raw: bool = False,
    server_pid: int | None = None,
) -> dict[str, list]:
    """A closed loop of `clients` keep-alive connections posting `bodies` in turn.

    The load generator shares the server's two cores here, where a real client would run on
    another machine, so it is kept lean: each request (headers and multipart body) is built
    once and written to the socket as bytes (what wrk or h2load do), no HTTP library per
    request. `raw`: the image itself as the body (Content-Type: image/jpeg)."""
    host, port = url.removeprefix("http://").split(":")
    shaped = [(b, "image/jpeg") if raw else multipart(b) for b in bodies or [jpeg()]]
    latencies, errors = [], [0]

    def request(i: int, body: bytes, content_type: str) -> bytes:
        head = (
            f"POST /classify HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"X-Client-Key: bench-{i}\r\n\r\n"
        )
        return head.encode() + body

    async def client(i: int, stop_at: float, record: bool) -> None:
        requests = [request(i, body, ctype) for body, ctype in shaped]
        reader, writer = await asyncio.open_connection(host, int(port))
        k = i
        try:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                writer.write(requests[k % len(requests)])
                k += 1
                status = await _read_response(reader)
                if not record:
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1
        finally:
            writer.close()

    warm_until = time.monotonic() + warmup  # the batcher learns the model's cost first
    await asyncio.gather(*(client(i, warm_until, False) for i in range(clients)))
    server_cpu = (lambda: tree_cpu(server_pid)) if server_pid else (lambda: 0.0)
    started, cpu0, server0 = time.monotonic(), _own_cpu(), server_cpu()
    await asyncio.gather(*(client(i, started + seconds, True) for i in range(clients)))
    return {
        "latencies": latencies,
        "elapsed": [time.monotonic() - started],
        "errors": errors,
        "client_cpu": [_own_cpu() - cpu0],
        "server_cpu": [server_cpu() - server0],
    }


def _own_cpu() -> float:
    """CPU seconds (user + system) of this process: the load generator while it drives."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server's whole process tree (BentoML's arbiter and its worker)."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


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
    client = sum(p["client_cpu"][0] for p in parts)
    server = sum(p["server_cpu"][0] for p in parts)
    n = max(len(lat), 1)
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "n": len(lat),
        "errors": sum(p["errors"][0] for p in parts),
        # CPU per answered request: the server's process tree, and this load generator
        "server_cpu_ms_per_request": round(server / n * 1000, 1),
        "client_cpu_ms_per_request": round(client / n * 1000, 1),
        "client_cpu_share": round(client / max(client + server, 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per mode")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="classifier input side (px)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating slices per mode")
    parser.add_argument("--images", choices=["photos", "small"], default="photos")
    parser.add_argument(
        "--upload",
        choices=["multipart", "raw"],
        default="multipart",
        help="multipart form (field image) or the image itself as the body",
    )
    parser.add_argument(
        "--serve",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a serve: setting for both servers (YAML value), e.g. max_batch_size=32",
    )
    parser.add_argument("--limit-only", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.limit_only:  # the child process of model_limit_threads
        import tensorflow as tf

        intra, streams = args.limit_only
        if intra:  # 0: TensorFlow's default pools (one thread per core, shared by all callers)
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(intra)
        threads = f"{intra} thread{'s' if intra > 1 else ''} each" if intra else "default threads"
        label = f" ({streams} callers, {threads})"
        print(json.dumps(model_limit(args.size, (4, 8, 16), streams, label)))
        return
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.serve)}
    load_before = os.getloadavg()[0]
    bodies = photos() if args.images == "photos" else [jpeg()]
    with tempfile.TemporaryDirectory(prefix="artflow-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        version = register_model(args.size)
        print(f"champion v{version}: CNN {args.size}px, {args.clients} clients, {args.seconds:g} s")
        # Both servers run side by side and are driven in alternating slices, so a change in
        # the machine's background load hits both modes alike (CPU here is shared).
        servers = {batching: start(tmp, batching, overrides) for batching in (True, False)}
        parts: dict[bool, list] = {True: [], False: []}
        try:
            # the servers are idle meanwhile
            limit_by_batch = model_limit(args.size)
            # the same model, two callers of one thread each (TensorFlow's pools otherwise
            # split every operation over both cores): the limit is the better of the two
            cpus = os.cpu_count() or 1
            limit_split = model_limit_threads(args.size, 1, cpus) if cpus > 1 else {}
            raw = args.upload == "raw"
            for _ in range(args.rounds):
                for batching, (proc, url) in servers.items():
                    slice_s = args.seconds / args.rounds
                    part = asyncio.run(
                        drive(url, args.clients, slice_s, 2.0, bodies, raw, proc.pid)
                    )
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
                f"({r['n']} ok, {r['errors']} errors)  CPU per request: server "
                f"{r['server_cpu_ms_per_request']:.1f} ms, load generator "
                f"{r['client_cpu_ms_per_request']:.1f} ms"
            )
        on, off = results[True], results[False]
        ways = {
            ("one caller, TensorFlow's default threads", b): v for b, v in limit_by_batch.items()
        }
        ways.update({(f"{cpus} callers, 1 thread each", b): v for b, v in limit_split.items()})
        how, best = max(ways, key=ways.get)
        limit = ways[how, best]
        report = {
            "machine": {
                "cpu": benchlib.cpu_model(),
                "cpus": os.cpu_count(),
                "load_average_1m_before": round(load_before, 1),
                "load_average_1m": round(os.getloadavg()[0], 1),
            },
            "images": args.images,
            "upload": args.upload,
            "serve_overrides": overrides,
            "clients": args.clients,
            "seconds": args.seconds,
            "model_images_per_s_by_batch": limit_by_batch,
            "model_images_per_s_by_batch_split_threads": limit_split,
            "limit": {"batch": int(best), "images_per_s": limit, "how": how},
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
            f"served / model limit ({limit:.1f} images/s at batch {best}, {how}): batching on "
            f"{on['rps'] / limit:.2f}, off {off['rps'] / limit:.2f} (goal >= 0.80)"
        )


if __name__ == "__main__":
    main()
