"""The quality worker is frozen while the service answers a request.

Nice 19 and SCHED_IDLE leave the worker only the CPU the requests do not use, but on 2 cores
it still ran beside every request's single-threaded parts (decode, encode, HTTP), sharing
the caches and memory bandwidth: /stylize's p50 was up to 7% slower with every answer
sampled (benchmarks/bench_quality.py). So an ASGI middleware counts the requests in flight
and the worker gets SIGSTOP when the first one starts and SIGCONT when the last one ends
(one signal per busy period, microseconds); under sustained traffic it scores nothing, the
queue fills and samples are dropped and counted, which is the trade the sampling accepts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class Pause:
    """Requests in flight in this process, and the worker process to freeze meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight = 0
        self._pid: int | None = None
        self.paused_s = 0.0  # how long the worker has been frozen in all
        self._since: float | None = None

    @property
    def paused(self) -> bool:
        return self._inflight > 0

    def attach(self, pid: int | None) -> None:
        """The worker to freeze (None: it exited); a new one starts frozen if requests run."""
        with self._lock:
            self._pid = pid
            if pid is not None and self._inflight:
                self._send(signal.SIGSTOP)

    def enter(self) -> None:
        with self._lock:
            self._inflight += 1
            if self._inflight == 1:
                self._since = time.monotonic()
                self._send(signal.SIGSTOP)

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self.paused_s += time.monotonic() - (self._since or time.monotonic())
                self._send(signal.SIGCONT)

    def _send(self, sig: signal.Signals) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it exited: restarted on demand
                os.kill(self._pid, sig)


PAUSE = Pause()  # one service process, one worker: artflow.serve.quality attaches it


class PauseWhileServing:
    """ASGI middleware: every HTTP request freezes the quality worker until it is answered."""

    def __init__(self, app: ASGIApp, pause: Pause = PAUSE) -> None:
        self.app, self.pause = app, pause

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.pause.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.pause.leave()
