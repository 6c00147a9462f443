"""What every endpoint group shares: decoding behind the large-decode gate, threaded work
with the request's timeout and cancel, answers and their metrics, who is calling, and
handing freed heap memory back to the OS."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import bentoml
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from artflow.config import ServeCfg
from artflow.errors import ArtflowError
from artflow.serve.inference import Cancelled, Pending, encode_image
from artflow.serve.metrics import Metrics
from artflow.serve.router import client_key
from artflow.serve.shared import caller_identity
from artflow.serve.validation import (
    ApiError,
    DecodedImage,
    Fit,
    Limits,
    decode_upload,
    inspect_upload,
)
from artflow.serve.web import CLIENT_COOKIE

MIN_SIDE = 32  # the style networks pool 3-5 times (artflow.style.inference.MIN_SIDE)
TRIM_EVERY_S = 5.0  # under traffic, hand freed heap memory back to the OS this often


class Decoder:
    """Header check, then decode at the size a `Fit` asks for; decodes estimated over
    serve.large_decode_mb wait for one of serve.large_decodes slots."""

    def __init__(self, serve: ServeCfg) -> None:
        self.limits = Limits(serve.max_pixels, serve.max_aspect_ratio, serve.max_decode_mb)
        self.large_mb, self.large_at_once = serve.large_decode_mb, serve.large_decodes
        self._gate: asyncio.Semaphore | None = None  # made on the event loop, on first use

    def _gate_for(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.large_at_once)
        return self._gate

    async def decode(self, upload: Path, field: str, fit: Fit) -> DecodedImage:
        return (await self.decode_bytes(upload, field, fit))[0]

    async def decode_bytes(
        self,
        source: bytes | Path,
        field: str,
        fit: Fit,
        then: Callable[[np.ndarray], Any] | None = None,
    ) -> tuple[DecodedImage, Any]:
        """Read (an upload BentoML wrote to a file), header check, decode and `then(rgb)` (the
        classifier's resize) in ONE worker thread hop; a decode estimated over
        serve.large_decode_mb waits for one of serve.large_decodes slots first."""
        data = source if isinstance(source, bytes) else b""
        limits = self.limits

        def small() -> tuple[DecodedImage | None, Any]:
            nonlocal data
            if not isinstance(source, bytes):
                data = read_upload(source, field)
            header = inspect_upload(data, field, limits, fit)
            if header.decode_mb > self.large_mb:
                return None, None
            decoded = decode_upload(data, field, limits, fit)
            return decoded, then(decoded.rgb) if then is not None else None

        decoded, extra = await anyio.to_thread.run_sync(small)
        if decoded is not None:
            return decoded, extra
        async with self._gate_for():
            try:
                decoded = await anyio.to_thread.run_sync(decode_upload, data, field, limits, fit)
            finally:
                await anyio.to_thread.run_sync(release_freed_memory)
        extra = await anyio.to_thread.run_sync(then, decoded.rgb) if then is not None else None
        return decoded, extra


class Worker:
    """Work in a worker thread within the request's timeout (serve.timeout_s, 504)."""

    def __init__(self, timeout_s: float, metrics: Metrics) -> None:
        self.timeout_s, self.metrics = timeout_s, metrics

    async def run(
        self,
        endpoint: str,
        fn: Callable[[threading.Event], Any],
        timeout_s: float | None = None,
        on_done: Callable[[], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> Any:
        """Run `fn(cancel)` in a worker thread with the endpoint's timeout (504).

        On timeout (or when the request is dropped) `cancel` is set; `fn` checks it between
        steps and stops there. `on_done` runs when the thread has really finished,
        `on_cancelled` before it when `fn` stopped on `cancel`."""
        cancel = threading.Event()

        def guarded() -> Any:
            if cancel.is_set():  # timed out while waiting for a thread
                raise Cancelled
            try:
                return fn(cancel)
            except ArtflowError as exc:  # an image too small for the network, ...: 422
                raise ApiError(422, exc.message) from None

        task = asyncio.ensure_future(anyio.to_thread.run_sync(guarded))

        def done(t: asyncio.Future) -> None:
            if not t.cancelled() and isinstance(t.exception(), Cancelled):
                self.metrics.cancelled.labels(endpoint=endpoint).inc()
                if on_cancelled is not None:
                    on_cancelled()
            if on_done is not None:
                on_done()

        task.add_done_callback(done)
        timeout = min(timeout_s or self.timeout_s, self.timeout_s)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except TimeoutError:
            cancel.set()
            raise ApiError(504, f"{endpoint} took longer than {timeout:g} s; stopped") from None
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def within_timeout(self, awaitable: Any, endpoint: str, item: Pending) -> Any:
        """`awaitable` within serve.timeout_s (504); a request that gives up (timeout, or the
        client went away) marks `item` dropped, so a batch still queued leaves it out."""
        try:
            return await asyncio.wait_for(awaitable, timeout=self.timeout_s)
        except TimeoutError:
            item.dropped = True
            raise ApiError(504, f"{endpoint} took longer than {self.timeout_s} s") from None
        except asyncio.CancelledError:
            item.dropped = True
            raise


class Answers:
    """Set an answer's status and headers on the request's context, and count it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def count(self, endpoint: str, variant: str, status: int, started: float) -> None:
        self.metrics.observe(endpoint, variant, status, time.perf_counter() - started)

    def fail(
        self, ctx: bentoml.Context, endpoint: str, variant: str, exc: ApiError, started: float
    ) -> JSONResponse:
        ctx.response.status_code = exc.status
        if exc.status in (429, 503):
            ctx.response.metadata["Retry-After"] = "1"
        self.count(endpoint, variant, exc.status, started)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def image(
        self,
        ctx: bentoml.Context,
        endpoint: str,
        variant: str,
        started: float,
        result: np.ndarray,
        fmt: str,
        version: str | None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = await anyio.to_thread.run_sync(encode_image, result, fmt)
        latency_ms = (time.perf_counter() - started) * 1000
        ctx.response.status_code = 200
        ctx.response.metadata.update(
            {
                "X-Artflow-Variant": variant,
                "X-Artflow-Model-Version": str(version),
                "X-Artflow-Latency-Ms": f"{latency_ms:.1f}",
                **(headers or {}),  # the answer's id (artflow.serve.style_answers)
            }
        )
        self.count(endpoint, variant, 200, started)
        return Response(body, media_type=f"image/{fmt}")


class Callers:
    """Who is calling: behind a trusted proxy (serve.trusted_proxies), the address it
    forwards for; and the A/B routing key of a request."""

    def __init__(self, trusted_proxies: list[str]) -> None:
        self.trusted = trusted_proxies

    def caller(self, request: Any) -> str:
        # every X-Forwarded-For line: a proxy may add its own line rather than append
        hops = ", ".join(request.headers.getlist("x-forwarded-for"))
        headers = {"x-forwarded-for": hops} if hops else {}
        return caller_identity(client_host(request), headers, self.trusted)

    def client_key(self, request: Request) -> str:
        """X-Client-Key, else the cookie the page sets, else the caller's address."""
        header = request.headers.get("x-client-key") or request.cookies.get(CLIENT_COOKIE)
        return client_key(header, self.caller(request))


class Trimmer:
    """Every TRIM_EVERY_S, if requests were answered since (`served()`), hand freed memory
    back to the OS (release_freed_memory)."""

    def __init__(self) -> None:
        self._served = False

    def served(self) -> None:
        self._served = True

    def start(self) -> None:
        threading.Thread(target=self._loop, name="artflow-trim", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(TRIM_EVERY_S)
            if self._served:
                self._served = False
                release_freed_memory()


class locked:  # noqa: N801 - a context manager that reads like a function
    """Hold `lock`, giving up (Cancelled) if the request times out while waiting for it."""

    def __init__(self, lock: threading.Lock, cancel: threading.Event) -> None:
        self.lock, self.cancel = lock, cancel

    def __enter__(self) -> None:
        while not self.lock.acquire(timeout=0.1):
            if self.cancel.is_set():
                raise Cancelled
        if self.cancel.is_set():
            self.lock.release()
            raise Cancelled

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_freed_memory() -> None:
    """Hand the freed pages of a large decode back to the OS.

    glibc keeps freed heap memory in its arenas (one per thread that allocated) for reuse;
    after a burst of 40-megapixel decodes the process stayed ~0.5 GiB larger for good, and
    under sustained load it kept growing (benchmarks/bench_serve_memory.py). malloc_trim
    returns it; it costs a few ms: run after decodes over serve.large_decode_mb, and every
    TRIM_EVERY_S while requests are answered (so also once after the last one).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def read_upload(path: Path, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ApiError(400, f"{field}: cannot read the upload: {exc}", field) from None


def client_host(request: Any) -> str:
    return request.client.host if request.client else "unknown"
