"""Load: 32 concurrent clients for 15 s on loopback, every answer a 200 (each answer is
also committed to the serving store before it is sent)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from tests.serve import images

pytestmark = pytest.mark.slow

CLIENTS, SECONDS = 32, 15.0  # ~500 requests at ~35/s: sustained concurrency, half the time


async def _client(url: str, i: int, stop: float, statuses: Counter, latencies: list) -> None:
    body = images.png(i)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                r = await client.post(
                    "/classify",
                    files={"image": ("x.png", body, "image/png")},
                    headers={"X-Client-Key": f"load-{i}"},
                )
                statuses[r.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.monotonic() - started)


def test_32_concurrent_clients_for_15_seconds_without_errors(server):
    statuses: Counter = Counter()
    latencies: list[float] = []

    async def main() -> None:
        stop = time.monotonic() + SECONDS
        await asyncio.gather(
            *(_client(server.url, i, stop, statuses, latencies) for i in range(CLIENTS))
        )

    asyncio.run(main())
    total = sum(statuses.values())
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"\nload: {total} requests, {total / SECONDS:.1f}/s, p99 {p99 * 1000:.0f} ms, {statuses}")
    assert statuses == Counter({200: total}), statuses
    assert total >= CLIENTS  # every client got answers
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
