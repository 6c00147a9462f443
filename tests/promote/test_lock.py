"""The registry lock against a holder that outlives its lease or dies (real processes, the
session's SQLite store; tests/prod/test_identities.py runs the same through the MLflow
server on PostgreSQL).

A holder process whose heartbeat stalls (as a long pause or a frozen node would stall it)
keeps working past its lease while this process takes the lock; then it tries what a stale
gate would: move `champion` and release.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from artflow.registry import tracking

LEASE_S = 1.0

HOLDER = """
import sys
from artflow.errors import LockLost
from artflow.registry import tracking

name, version, stall = sys.argv[1], sys.argv[2], sys.argv[4] == "stall"
if stall:  # the heartbeat never renews: the lease runs out while this process works on
    tracking.RegistryLock._heartbeat = lambda self: None
with tracking.registry_lock(name, lease_s=float(sys.argv[3])) as lock:
    print("held", lock.fence, flush=True)
    sys.stdin.readline()  # stopped here until told to go on
    try:
        lock.set_alias(tracking.CHAMPION, version, expect=None)
        print("moved", flush=True)
    except LockLost as exc:
        print("refused", exc.message, flush=True)
    print("released", lock.release(), flush=True)
"""


@pytest.fixture
def versions(model_name: str) -> list[str]:
    client = tracking.client()
    client.create_registered_model(model_name)
    return [
        str(client.create_model_version(model_name, f"file:///tmp/v{i}").version) for i in (1, 2)
    ]


def start_holder(name: str, version: str, stall: bool) -> subprocess.Popen:
    """A process holding the lock `name` with a LEASE_S lease (once it said "held")."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name, version, str(LEASE_S), "stall" if stall else "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    line = proc.stdout.readline()
    assert line.startswith("held"), line
    return proc


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_a_holder_past_its_lease_cannot_move_or_release(model_name, versions, processes):
    first = start_holder(model_name, versions[0], stall=True)
    processes.append(first)
    with tracking.registry_lock(model_name, wait_s=10, lease_s=5) as second:
        assert second.fence == 2  # a new epoch: the first holder's token is dead
        out, _ = first.communicate("go\n", timeout=30)  # the first one carries on
        assert "refused" in out and "moved" not in out, out
        assert "released False" in out  # its release left the second one's lock alone
        assert tracking.lock_backend().holder(model_name)["fence"] == 2
        assert tracking.alias_version(model_name, tracking.CHAMPION) is None
        second.set_alias(tracking.CHAMPION, versions[1], expect=None)
    # exactly one move: the second holder's
    assert str(tracking.alias_version(model_name, tracking.CHAMPION).version) == versions[1]
    assert tracking.lock_backend().holder(model_name) is None  # released on exit


def test_a_killed_holder_delays_the_next_one_by_at_most_its_lease(model_name, versions, processes):
    holder = start_holder(model_name, versions[0], stall=False)  # renewing its lease
    processes.append(holder)
    time.sleep(LEASE_S)  # renewed at least once: what counts is the time since the last one
    os.kill(holder.pid, signal.SIGKILL)  # no release, no clean-up
    holder.wait(timeout=30)
    killed = time.monotonic()
    with tracking.registry_lock(model_name, wait_s=10):
        waited = time.monotonic() - killed
    assert waited <= LEASE_S + 2 * tracking.LOCK_POLL_S, waited
