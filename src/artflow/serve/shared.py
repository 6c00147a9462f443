"""Admin changes every pod sees: the challenger share and reloads, through the serving store.

`POST /admin/weight`, `/admin/reload` and `/admin/rollback` reach one pod behind the
balancer. That pod writes the change to the store (`serving_admin`: `challenger_weight`,
`reload`) and applies it at once; every other pod's sync loop reads the table every
`serve.sync_interval_s` and applies what is newer than what it applied last: a weight
within one interval, a reload within one interval plus the time to load what moved.
The same loop refreshes the online accuracy from every pod's feedback and applies the
store's retention once an hour. One mechanism: the route sends traffic to every pod alike
and never carries a weight of its own.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from artflow.serve.store import ServingStore, StoreUnavailable

log = logging.getLogger(__name__)

WEIGHT, RELOAD, VERDICT = "challenger_weight", "reload", "ab_verdict"
PRUNE_EVERY_S = 3600.0


class SharedAdmin:
    """Applies the store's admin state to this pod; `publish_*` are the admin endpoints' half."""

    def __init__(
        self,
        store: ServingStore,
        set_weight: Callable[[float], Any],
        reload: Callable[[], Any],
        refresh_online: Callable[[], Any],
        interval_s: float,
        retention_days: float,
    ) -> None:
        self.store = store
        self._set_weight, self._reload, self._refresh_online = set_weight, reload, refresh_online
        self.interval_s = interval_s
        self.retention_days = retention_days
        # key -> stamp applied on this pod; reloads asked before it started are its start-up load
        self.applied: dict[str, float] = {RELOAD: time.time()}
        self.last_sync: float | None = None
        self._pruned = 0.0
        self._lock = threading.Lock()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="artflow-shared-admin", daemon=True)
        thread.start()
        return thread

    def publish_weight(self, weight: float) -> None:
        """Store the share (StoreUnavailable passes up: the admin call answers 503)."""
        stamp = self.store.admin_set(WEIGHT, weight)
        with self._lock:
            self.applied[WEIGHT] = stamp

    def publish_reload(self) -> None:
        stamp = self.store.admin_set(RELOAD, time.time())
        with self._lock:
            self.applied[RELOAD] = stamp

    def sync_once(self) -> None:
        """Apply what changed in the store since the last sync."""
        state = self.store.admin_get()
        with self._lock:
            todo = {k: v for k, v in state.items() if v[1] > self.applied.get(k, 0.0)}
            self.applied.update({k: v[1] for k, v in todo.items()})
        if WEIGHT in todo:
            weight = float(json.loads(todo[WEIGHT][0]))
            self._set_weight(weight)
            log.warning("artflow: challenger weight %.3f (from the serving store)", weight)
        if VERDICT in todo:
            _export_verdict(json.loads(todo[VERDICT][0]))
        if RELOAD in todo:
            log.warning("artflow: reload asked through the serving store")
            self._reload()
        self._refresh_online()
        self.last_sync = time.time()
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            self._pruned = time.monotonic()
            deleted = self.store.prune(self.retention_days)
            if any(deleted.values()):
                log.info("artflow serving store retention: deleted %s", deleted)

    def _loop(self) -> None:
        while True:
            try:
                self.sync_once()
            except StoreUnavailable as exc:
                log.warning("artflow: admin sync skipped: %s", exc)
            except Exception:  # never let the loop die: the next interval tries again
                log.exception("artflow: admin sync failed")
            time.sleep(self.interval_s)

    def describe(self) -> dict[str, Any]:
        return {
            "sync_interval_s": self.interval_s,
            "last_sync": self.last_sync,
            "applied": dict(self.applied),
        }


def _export_verdict(verdict: dict[str, Any]) -> None:
    """artflow_ab_verdict{decision} = 1 for the latest `artflow ab report`'s, 0 the others."""
    from artflow.abtest import KEEP, NOT_ENOUGH, PROMOTE
    from artflow.serve.metrics import ab_verdict_gauge

    gauge = ab_verdict_gauge()
    for decision in (KEEP, PROMOTE, NOT_ENOUGH):
        gauge.labels(decision=decision).set(1 if verdict.get("decision") == decision else 0)


def caller_identity(peer: str | None, headers: Mapping[str, str], trusted: Iterable[str]) -> str:
    """Who is calling, for the failed-token limit: the peer address, or, when the peer is a
    trusted proxy (serve.trusted_proxies), the nearest address in X-Forwarded-For that is not
    one of them. An untrusted peer's X-Forwarded-For is ignored (anyone can send one)."""
    nets = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in n for n in nets)

    peer = peer or "unknown"
    if not nets or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in (headers.get("x-forwarded-for") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop[:128]
    return hops[0][:128] if hops else peer
