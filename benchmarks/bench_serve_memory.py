"""Server memory under large uploads, and a load test with real-sized photographs.

    .venv/bin/python benchmarks/bench_serve_memory.py [--seconds 30] [--clients 32]

Registers one untrained 224 px CNN as champion in a throw-away MLflow store and starts one
`bentoml serve` (batching on). Resident memory is the sum of VmRSS over the server's
process tree, read from /proc every 50 ms.

1. Burst: 8 concurrent uploads of one 40-megapixel image (a smooth photo-like gradient that
   compresses to ~110-130 KB as PNG, and as a JPEG); the peak rise over the idle server and
   how long memory takes to come back (goal: rise < 1 GiB, back within 60 s).
2. Load: `--clients` closed-loop clients for `--seconds` s sending photo-like JPEGs of 1-5
   megapixels (gradients, shapes and sensor noise, made in memory), after `--warmup` s of the
   same load; errors and resident memory at the end against the start of the measured part
   (goal: zero errors, within 20%). The idle figure before the warm-up is reported too.

Writes bench_serve_memory.json next to this file; the last line is the peak rise in GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import bench_serve as base  # noqa: E402 - the shared server helpers
import httpx
import numpy as np
from PIL import Image

OUT = Path(__file__).with_suffix(".json")
GIB = 2**30


# --------------------------------------------------------------------------- memory


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def rss(pid: int) -> int:
    """Bytes resident over the process tree."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Sampler:
    """Peak resident memory of a process tree, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- images


def encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def big_images() -> dict[str, bytes]:
    """One 40-megapixel picture (7600x5200: a horizontal ramp on a flat colour, ~130 KB as
    PNG), as PNG and JPEG: tiny uploads that decode to a lot of pixels."""
    arr = np.empty((5200, 7600, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, 7600, dtype=np.float32)[None, :].astype(np.uint8)
    arr[..., 1], arr[..., 2] = 128, 64
    return {"png": encode(arr, "PNG"), "jpeg": encode(arr, "JPEG")}


# --------------------------------------------------------------------------- runs


async def burst(url: str, data: bytes, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        rs = await asyncio.gather(
            *(
                client.post(
                    "/classify", files={"image": ("big", data)}, headers={"X-Client-Key": f"b{i}"}
                )
                for i in range(n)
            )
        )
    return [r.status_code for r in rs]


def measure_burst(pid: int, url: str, name: str, data: bytes, n: int) -> dict:
    before = rss(pid)
    with Sampler(pid) as sampler:
        t0 = time.perf_counter()
        statuses = asyncio.run(burst(url, data, n))
        seconds = time.perf_counter() - t0
    back_after, after = None, rss(pid)
    t1 = time.monotonic()
    while time.monotonic() - t1 < 60:
        after = rss(pid)
        if after - before < 0.1 * GIB:
            back_after = time.monotonic() - t1
            break
        time.sleep(1)
    row = {
        "image": name,
        "bytes": len(data),
        "requests": n,
        "statuses": sorted(set(statuses)),
        "seconds": round(seconds, 2),
        "rss_before_gib": round(before / GIB, 3),
        "rss_peak_gib": round(sampler.peak / GIB, 3),
        "peak_rise_gib": round((sampler.peak - before) / GIB, 3),
        "rss_after_gib": round(after / GIB, 3),
        "back_within_s": None if back_after is None else round(back_after, 1),
    }
    print(
        f"burst {n}x {name} ({len(data) / 1024:.0f} KB, 40 MP): statuses {row['statuses']}, "
        f"{seconds:.1f} s, RSS {row['rss_before_gib']:.2f} -> peak {row['rss_peak_gib']:.2f} "
        f"GiB (+{row['peak_rise_gib']:.2f}), after {row['rss_after_gib']:.2f} GiB, "
        f"back within {row['back_within_s']} s"
    )
    return row


async def load(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def client(i: int, stop_at: float) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            k = i
            while time.monotonic() < stop_at:
                body = bodies[k % len(bodies)]
                k += 1
                t0 = time.perf_counter()
                try:
                    r = await c.post(
                        "/classify",
                        files={"image": ("photo.jpg", body, "image/jpeg")},
                        headers={"X-Client-Key": f"load-{i}"},
                    )
                    key = None if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key is None:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[key] = errors.get(key, 0) + 1

    start = time.monotonic()
    await asyncio.gather(*(client(i, start + seconds) for i in range(clients)))
    elapsed = time.monotonic() - start
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load first")
    args = parser.parse_args()
    big, bodies = big_images(), base.photos()
    print(
        "photos: "
        + ", ".join(
            f"{w}x{h} {len(b) // 1024} KB"
            for (w, h), b in zip(base.PHOTO_SIZES, bodies, strict=True)
        )
    )
    with tempfile.TemporaryDirectory(prefix="artflow-bench-mem-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        base.register_model(224)
        proc, url = base.start(tmp, batching=True)
        try:
            asyncio.run(load(url, bodies[:1], 2, 3.0))  # warm up: graphs traced, pools filled
            time.sleep(2)
            bursts = [measure_burst(proc.pid, url, n, d, args.burst) for n, d in big.items()]
            idle_rss = rss(proc.pid)
            # The same load for --warmup s first: TensorFlow sizes its buffers for batches of
            # up to serve.max_batch_size, and the thread pool grows to the clients' number;
            # the test is whether memory keeps growing after that, under sustained load.
            asyncio.run(load(url, bodies, args.clients, args.warmup))
            start_rss = rss(proc.pid)
            result = asyncio.run(load(url, bodies, args.clients, args.seconds))
            time.sleep(2)
            end_rss = rss(proc.pid)
        finally:
            base.stop(proc)
    result.update(
        clients=args.clients,
        seconds=args.seconds,
        warmup_s=args.warmup,
        rss_idle_before_warmup_gib=round(idle_rss / GIB, 3),
        rss_start_gib=round(start_rss / GIB, 3),
        rss_end_gib=round(end_rss / GIB, 3),
        rss_change=round(end_rss / start_rss - 1, 3),
    )
    print(
        f"load {args.clients} clients x {args.seconds:g} s, 1-5 MP JPEGs: {result['requests']} ok "
        f"({result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms), errors "
        f"{result['errors'] or 0}; RSS {result['rss_start_gib']:.2f} -> "
        f"{result['rss_end_gib']:.2f} GiB ({result['rss_change']:+.0%})"
    )
    report = {"machine": machine(), "bursts": bursts, "load": result}
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")
    print(f"peak rise over the burst: {max(b['peak_rise_gib'] for b in bursts):.2f} GiB (goal < 1)")


def machine() -> dict:
    load_avg = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_average_1m": round(load_avg[0], 1)}


if __name__ == "__main__":
    main()
