"""Load: 32 concurrent clients for 15 s on loopback, every answer a 200 (each answer is
also committed to the serving store before it is sent). Four of the clients stylize and
paint Monets while the session server scores every such answer (serve.quality_sample 1.0):
the scoring queue stays within serve.quality_queue (the rest is dropped and counted, never
waited for), and the memory of the server's processes, the scoring worker's included, stays
bounded."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import psutil
import pytest

from tests.serve import images

pytestmark = pytest.mark.slow

CLIENTS, SECONDS = 32, 15.0  # ~500 requests at ~35/s: sustained concurrency, half the time
STYLE_CLIENTS = 4  # of the CLIENTS: /stylize and /monet in turn, each answer scored
RSS_GROWTH_MB = 300  # the server's process tree after the load vs after a warm-up


def _request(client: httpx.AsyncClient, i: int, n: int, body: bytes):  # noqa: ANN202
    if i >= STYLE_CLIENTS:
        return client.post(
            "/classify",
            files={"image": ("x.png", body, "image/png")},
            headers={"X-Client-Key": f"load-{i}"},
        )
    if n % 2:
        return client.post("/monet", files={"photo": ("p.png", body, "image/png")})
    files = {"content": ("c.png", body, "image/png"), "style": ("s.png", body, "image/png")}
    return client.post("/stylize", files=files)


async def _client(
    url: str, i: int, stop: float, statuses: Counter, latencies: list, styled: Counter
) -> None:
    body = images.png(i)
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                r = await _request(client, i, n, body)
                statuses[r.status_code] += 1
                styled[i < STYLE_CLIENTS and r.status_code == 200] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.monotonic() - started)
            n += 1


def _tree_rss_mb(pid: int) -> float:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _quality(server, admin_headers) -> dict:
    status = httpx.post(f"{server.url}/admin/status", headers=admin_headers, timeout=30)
    return status.json()["quality"]


def test_32_concurrent_clients_for_15_seconds_without_errors(server, admin_headers):
    statuses: Counter = Counter()
    styled: Counter = Counter()  # True: a style answer (each one sampled)
    latencies: list[float] = []

    async def main(seconds: float) -> None:
        stop = time.monotonic() + seconds
        await asyncio.gather(
            *(_client(server.url, i, stop, statuses, latencies, styled) for i in range(CLIENTS))
        )

    asyncio.run(main(2.0))  # warm-up: every path traced, the scoring worker started
    before_mb, before = _tree_rss_mb(server.proc.pid), _quality(server, admin_headers)
    statuses.clear()
    latencies.clear()
    styled.clear()
    asyncio.run(main(SECONDS))
    total = sum(statuses.values())
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    after_mb, after = _tree_rss_mb(server.proc.pid), _quality(server, admin_headers)
    print(
        f"\nload: {total} requests, {total / SECONDS:.1f}/s, p99 {p99 * 1000:.0f} ms, {statuses}; "
        f"RSS {before_mb:.0f} -> {after_mb:.0f} MB; scoring {before} -> {after}"
    )
    assert statuses == Counter({200: total}), statuses
    assert total >= CLIENTS  # every client got answers
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
    # every style answer was sampled and is accounted for: scored, dropped, or still waiting
    # (at most the queue's size, one more in the worker): no backlog grows behind the queue
    assert after["max_queued"] <= after["queue_size"]
    handled = sum(after[k] - before[k] for k in ("scored", "dropped", "failed"))
    waiting = after["queued"] - before["queued"]
    assert styled[True] > 0 and abs(handled + waiting - styled[True]) <= 1, (styled, after)
    assert after["dropped"] > before["dropped"]  # the worker cannot keep up: it sheds
    assert after["failed"] == 0
    assert after_mb - before_mb < RSS_GROWTH_MB, (before_mb, after_mb)
