"""The registry lock with fencing, where the registry's database is.

MLflow has no compare-and-swap on aliases, and a lease judged by the clients can outlive a
paused holder. So the lock and every alias write it guards run next to the database, as
conditional statements over one small table (`artflow_registry_locks`, in MLflow's own
backend store):

- take: succeed only when the row is free or its lease has run out; a new random token and
  a fencing number one higher than the last (the epoch) are written with the lease;
- renew / release: only with the token held; a holder that lost the lock changes nothing;
- a fenced write (set or delete an alias, set a registered-model tag): under the row's
  mutual exclusion, refused unless the token still holds an unexpired lease and, for a
  compare-and-swap, the alias still points where the caller expects.

Mutual exclusion is a row lock (`SELECT ... FOR UPDATE`) held until the write is done on
PostgreSQL, and an exclusive file lock beside the database on SQLite (one machine by
nature). Expiry is judged by this process's clock only: the MLflow server's when clients go
through it (artflow.registry.server), the local process's for the embedded SQLite store.

This module runs inside `mlflow server --app-name artflow` and in-process for a local store;
clients call it through artflow.registry.tracking.registry_lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

TABLE = "artflow_registry_locks"
MIN_LEASE_S, MAX_LEASE_S = 0.2, 300.0

_metadata = MetaData()
_locks = Table(
    TABLE,
    _metadata,
    Column("name", String(256), primary_key=True),
    Column("token", String(64), nullable=True),  # None: free
    Column("fence", Integer, nullable=False, default=0),  # +1 at every take
    Column("holder", String(256), nullable=True),  # who, for messages: identity@host:pid
    Column("expires_at", Float, nullable=False, default=0.0),
)


class LockConflict(Exception):
    """A lock operation or fenced write refused: `code` says why (held, lost, changed)."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


HELD, LOST, CHANGED = "LOCK_HELD", "LOCK_LOST", "ALIAS_CHANGED"


def lease(value: Any) -> float:
    """A requested lease in seconds, clamped to what the store accepts."""
    return min(MAX_LEASE_S, max(MIN_LEASE_S, float(value)))


class LockStore:
    """The lock table and fenced writes over a registry store's SQLAlchemy engine."""

    _ready: set[str] = set()
    _ready_lock = threading.Lock()

    def __init__(self, registry_store: Any) -> None:
        self.store = registry_store
        self.engine: Engine = registry_store.engine
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._create_table()

    def _create_table(self) -> None:
        key = str(self.engine.url)
        with self._ready_lock:
            if key in self._ready:
                return
            for attempt in range(3):  # two workers creating it at once: one of them wins
                try:
                    _metadata.create_all(self.engine, checkfirst=True)
                    break
                except (IntegrityError, OperationalError):
                    if attempt == 2:
                        raise
                    time.sleep(0.2)
            self._ready.add(key)

    # ----------------------------------------------------------------- mutual exclusion
    @contextlib.contextmanager
    def _critical(self, name: str) -> Iterator[tuple[Connection, Any]]:
        """(connection, row) with every other operation on `name` excluded until the block
        ends, including a fenced write the block makes through MLflow's own store."""
        if self.sqlite:
            with _file_lock(self._lock_path()), self.engine.begin() as conn:
                yield conn, conn.execute(select(_locks).where(_locks.c.name == name)).first()
        else:
            with self.engine.begin() as conn:
                query = select(_locks).where(_locks.c.name == name).with_for_update()
                yield conn, conn.execute(query).first()

    def _lock_path(self) -> Path:
        return Path(f"{self.engine.url.database}-artflow-lock")  # beside it (git-ignored)

    # ----------------------------------------------------------------- the lock
    def acquire(self, name: str, holder: str, lease_s: float) -> dict[str, Any]:
        """Take `name` for `lease_s` seconds: {token, fence, lease_s}; LockConflict(HELD)
        while another holds it."""
        lease_s = lease(lease_s)
        try:
            with self._critical(name) as (conn, row):
                now = time.time()
                if row is not None and row.token and row.expires_at > now:
                    raise LockConflict(
                        HELD,
                        f"{name} is held by {row.holder} for {row.expires_at - now:.1f} s more",
                        holder=row.holder,
                        expires_in=row.expires_at - now,
                    )
                grant = {
                    "token": uuid.uuid4().hex,
                    "fence": (row.fence if row is not None else 0) + 1,
                    "lease_s": lease_s,
                }
                values = {
                    "token": grant["token"],
                    "fence": grant["fence"],
                    "holder": holder[:256],
                    "expires_at": now + lease_s,
                }
                if row is None:
                    conn.execute(_locks.insert().values(name=name, **values))
                else:
                    conn.execute(_locks.update().where(_locks.c.name == name).values(**values))
                return grant
        except IntegrityError as exc:  # PostgreSQL: another taker inserted the first row
            raise LockConflict(HELD, f"{name} was just taken by another holder") from exc

    def renew(self, name: str, token: str, lease_s: float) -> float:
        """Extend the lease of `token`; LockConflict(LOST) when it no longer holds `name`."""
        lease_s = lease(lease_s)
        with self._critical(name) as (conn, row):
            self._check(name, token, row)
            conn.execute(
                _locks.update()
                .where(_locks.c.name == name, _locks.c.token == token)
                .values(expires_at=time.time() + lease_s)
            )
        return lease_s

    def release(self, name: str, token: str) -> bool:
        """Free `name` if `token` holds it; False (nothing changed) when it does not."""
        with self._critical(name) as (conn, _row):
            done = conn.execute(
                _locks.update()
                .where(_locks.c.name == name, _locks.c.token == token)
                .values(token=None, expires_at=0.0)
            )
            return done.rowcount == 1

    def holder(self, name: str) -> dict[str, Any] | None:
        """Who holds `name` now (None when free): for messages and tests."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_locks).where(_locks.c.name == name)).first()
        if row is None or not row.token or row.expires_at <= time.time():
            return None
        return {
            "holder": row.holder,
            "fence": row.fence,
            "expires_in": row.expires_at - time.time(),
        }

    @staticmethod
    def _check(name: str, token: str, row: Any) -> None:
        if row is None or row.token != token or row.expires_at <= time.time():
            taken = row is not None and row.token and row.token != token
            raise LockConflict(
                LOST,
                f"the lock {name} is no longer held by this holder "
                + (
                    f"(taken by {row.holder}, epoch {row.fence})"
                    if taken
                    else "(its lease ran out)"
                ),
            )

    # ----------------------------------------------------------------- fenced writes
    def fenced(self, name: str, token: str, write: Callable[[], Any]) -> Any:
        """Run `write` (an MLflow store call on model `name`) only while `token` holds the
        lock `name`; nothing else on `name` runs meanwhile."""
        with self._critical(name) as (_conn, row):
            self._check(name, token, row)
            return write()

    def set_alias(
        self,
        name: str,
        token: str,
        alias: str,
        version: str | None,
        expect: str | None = None,
        check: bool = False,
    ) -> None:
        """Point `alias` of `name` at `version` (delete it when None), fenced; with `check`,
        only if it still points at `expect` (None: not set) — the compare-and-swap."""

        def write() -> None:
            if check:
                now = self.alias_target(name, alias)
                if now != expect:
                    raise LockConflict(
                        CHANGED,
                        f"{alias} of {name} is {_v(now)}, not {_v(expect)} as expected",
                        now=now,
                    )
            if version is None:
                if self.alias_target(name, alias) is not None:
                    self.store.delete_registered_model_alias(name, alias)
            else:
                self.store.set_registered_model_alias(name, alias, str(version))

        self.fenced(name, token, write)

    def set_tag(self, name: str, token: str, key: str, value: str) -> None:
        from mlflow.entities.model_registry import RegisteredModelTag

        self.fenced(
            name,
            token,
            lambda: self.store.set_registered_model_tag(name, RegisteredModelTag(key, value)),
        )

    def alias_target(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.store.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise


def _v(version: str | None) -> str:
    return f"v{version}" if version else "unset"


_THREAD_LOCKS: dict[str, threading.Lock] = {}


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock) and between this process's threads."""
    guard = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
    with guard, open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
