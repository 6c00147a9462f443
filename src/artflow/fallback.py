"""A per-key cache of things asked from a service that may not answer (the MLflow registry).

The service resolves some things once and keeps them (a version's novelty model, the Gatys
settings). When the registry cannot be asked, serving goes on with a designed fallback;
that is not a crash, so it is logged as one warning line (what, why, what is used instead)
when the state changes, not as a traceback on every request, and it is asked again after
`retry_s` instead of being remembered as "none" for good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from artflow.errors import ArtflowError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def reason(exc: BaseException) -> str:
    """One line: an ArtflowError's own message, else the exception's type and first line."""
    if isinstance(exc, ArtflowError):
        return exc.message
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:400]


class Resolved(Generic[K, V]):
    """Values by key, loaded once; a failed load serves `fallback` and is retried later."""

    def __init__(self, what: str, retry_s: float = 60.0) -> None:
        self.what = what  # "Gatys settings", "novelty model": the subject of the log line
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._values: dict[K, V] = {}
        self._failed: dict[K, tuple[str, float]] = {}  # key -> (why, when)

    def get(self, key: K, load: Callable[[], V], fallback: V, instead: str) -> V:
        """`load()` once per key; while it fails, `fallback` (described by `instead`)."""
        with self._lock:
            if key in self._values:
                return self._values[key]
            why, since = self._failed.get(key, ("", 0.0))
            if why and time.monotonic() - since < self.retry_s:
                return fallback
            try:
                value = load()
            except Exception as exc:  # noqa: BLE001 - the designed fallback serves instead
                self._fail(key, exc, why, instead)
                return fallback
            if key in self._failed:
                log.info("artflow: %s of %s resolved again", self.what, _name(key))
                self._failed.pop(key)
            self._values[key] = value
            return value

    def _fail(self, key: K, exc: Exception, before: str, instead: str) -> None:
        why = reason(exc)
        if why != before:  # one line per change of state, not one per request
            log.warning(
                "artflow: %s of %s could not be resolved: %s; using %s, asking again in %.0f s",
                self.what,
                _name(key),
                why,
                instead,
                self.retry_s,
            )
            log.debug("artflow: %s of %s: details", self.what, _name(key), exc_info=exc)
        self._failed[key] = (why, time.monotonic())

    def known(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when `key` was loaded, (False, None) when not (yet, or it failed)."""
        with self._lock:
            return (True, self._values[key]) if key in self._values else (False, None)

    def unresolved(self) -> dict[str, str]:
        """Per key still on its fallback: why (for /admin/status)."""
        with self._lock:
            return {_name(key): why for key, (why, _) in self._failed.items()}

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._failed.clear()


def _name(key: Hashable) -> str:
    return " v".join(map(str, key)) if isinstance(key, tuple) else str(key)
