"""Admin access: a bearer token from the environment (ARTFLOW_ADMIN_TOKEN, or the file named
by ARTFLOW_ADMIN_TOKEN_FILE: a mounted Secret on a cluster), compared in constant time, and a
limit on failed attempts per client.

No token configured -> admin is disabled (403) rather than open: an operator must opt in.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

TOKEN_ENV = "ARTFLOW_ADMIN_TOKEN"
TOKEN_FILE_ENV = "ARTFLOW_ADMIN_TOKEN_FILE"


def configured_token() -> str:
    """ARTFLOW_ADMIN_TOKEN, else the stripped content of ARTFLOW_ADMIN_TOKEN_FILE ('' if
    neither; an unreadable file too, so admin stays disabled rather than open)."""
    token = os.environ.get(TOKEN_ENV, "")
    path = os.environ.get(TOKEN_FILE_ENV, "")
    if token or not path:
        return token
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except OSError:
        return ""


def presented_token(headers: Mapping[str, str]) -> str:
    """The token from `Authorization: Bearer <t>` or `X-Admin-Token: <t>` ('' if none)."""
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (headers.get("x-admin-token") or "").strip()


def check(headers: Mapping[str, str], expected: str | None = None) -> tuple[int, str] | None:
    """None when allowed; else (status, message): 403 disabled, 401 missing, 403 wrong."""
    expected = configured_token() if expected is None else expected
    given = presented_token(headers)
    if not expected:
        return 403, f"admin is disabled: set {TOKEN_ENV} or {TOKEN_FILE_ENV} on the server"
    if not given:
        return 401, "admin token required (Authorization: Bearer <token>)"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return 403, "wrong admin token"
    return None


class FailureLimiter:
    """Failed admin attempts per client in a sliding window; over the limit -> refused (429)
    before the token is even compared, so guessing it costs a minute per `max_failures`."""

    def __init__(
        self,
        max_failures: int,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = int(max_failures)
        self.window_s = float(window_s)
        self.max_clients = max_clients  # bounded memory however many addresses try
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None when it may try now."""
        with self._lock:
            times = self._recent(client)
            if len(times) < self.max_failures:
                return None
            return max(1.0, times[0] + self.window_s - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            times = self._recent(client)
            times.append(self.clock())
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client, deque())
        horizon = self.clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times
