"""Registry errors are errors: "not set" is told from "could not ask", and `champion` moves
as a compare-and-swap whose history survives a crash between two writes."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from artflow import promote as gate
from artflow.errors import GateFailed, RegistryUnavailable
from artflow.registry import tracking

from .conftest import register_color_model


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 503

    def _reply(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>upstream unavailable</html>")

    do_GET = do_POST = do_PATCH = do_DELETE = _reply

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on: connections are refused, as with a stopped server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=[503, 401, 404])
def broken_server(request, monkeypatch) -> Iterator[str]:
    """A proxy in front of a dead MLflow: answers every request with one HTTP status."""
    handler = type("Handler", (_Answer,), {"status": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://user:secret@127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    server.shutdown()


def test_unreachable_registry_raises_quickly(monkeypatch, free_port):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port}")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="could not be asked for alias 'champion'"):
        tracking.alias_version("any-model", "champion")
    assert time.monotonic() - started < 20  # seconds, not MLflow's default minutes


def test_error_statuses_are_not_read_as_not_set(broken_server):
    with pytest.raises(RegistryUnavailable) as err:
        tracking.alias_version("any-model", "champion")
    assert "secret" not in str(err.value) and "user:***@" in str(err.value)
    with pytest.raises(RegistryUnavailable):
        tracking.model_version("any-model", "1")


def test_not_set_is_none(model_name):
    assert tracking.alias_version(model_name, "champion") is None  # no such model
    assert tracking.model_version(model_name, "7") is None
    assert tracking.get_run(uuid.uuid4().hex) is None


def test_gate_stops_when_registry_is_down(smoke_settings, color_workdir, monkeypatch, free_port):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port}")
    with pytest.raises(RegistryUnavailable) as err:
        gate.promote(smoke_settings, color_workdir, "artflow-artist-classifier", "challenger")
    assert err.value.exit_code == 3 and "nothing was decided" in str(err.value)


def test_champion_moved_while_deciding_is_not_overwritten(
    smoke_settings, color_workdir, model_name
):
    v1 = register_color_model(smoke_settings, model_name)
    v2 = register_color_model(smoke_settings, model_name)

    def evaluate_while_another_gate_promotes(settings, wd, ref):
        result = gate._evaluate(settings, wd, ref)
        tracking.set_alias(model_name, tracking.CHAMPION, v1)  # the other gate won meanwhile
        return result

    with pytest.raises(GateFailed, match=f"champion is now v{v1}"):
        gate.promote(
            smoke_settings,
            color_workdir,
            model_name,
            v2,
            evaluator=evaluate_while_another_gate_promotes,
        )
    assert str(tracking.alias_version(model_name, "champion").version) == v1
    assert tracking.model_version(model_name, v2).tags["gate.decision"] == "stale"
    saved = json.loads((color_workdir.reports / "gate" / f"{model_name}-v{v2}.json").read_text())
    assert not saved["promoted"] and "another gate" in saved["reason"]


def _versions(name: str, n: int) -> list[str]:
    client = tracking.client()
    client.create_registered_model(name)
    return [
        str(client.create_model_version(name, f"file:///tmp/{name}/{i}").version) for i in range(n)
    ]


def _crash_on_history_write(monkeypatch) -> None:
    """The process dies right after moving the alias, before the history is written."""
    real = tracking.RegistryLock.set_tag

    def crash_on_history(lock: tracking.RegistryLock, key: str, value: str) -> None:
        if key == gate.HISTORY_TAG:
            raise RuntimeError("killed")
        real(lock, key, value)

    monkeypatch.setattr(tracking.RegistryLock, "set_tag", crash_on_history)


def test_crash_after_alias_move_keeps_history_consistent(model_name, monkeypatch):
    v1, v2 = _versions(model_name, 2)
    gate._move_champion(model_name, v1, expected=None)
    _crash_on_history_write(monkeypatch)
    with pytest.raises(RuntimeError):
        gate._move_champion(model_name, v2, expected=v1)
    monkeypatch.undo()
    assert gate.history(model_name) == [v1, v2]  # the alias moved: the history follows it
    log = gate._tags(model_name)[1]
    assert log[-1]["status"] == "pending" and log[-1]["version"] == v2
    assert gate.rollback(model_name) == (v2, v1)
    assert gate.history(model_name) == [v1]


def test_crash_before_alias_move_changes_nothing(model_name, monkeypatch):
    v1, v2 = _versions(model_name, 2)
    gate._move_champion(model_name, v1, expected=None)

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(tracking.RegistryLock, "set_alias", crash)
    with pytest.raises(RuntimeError):
        gate._move_champion(model_name, v2, expected=v1)
    monkeypatch.undo()
    assert gate.history(model_name) == [v1]
    assert str(tracking.alias_version(model_name, "champion").version) == v1
    assert tracking.lock_backend().holder(model_name) is None  # released


def test_interrupted_rollback_is_completed_on_read(model_name, monkeypatch):
    v1, v2 = _versions(model_name, 2)
    gate._move_champion(model_name, v1, expected=None)
    gate._move_champion(model_name, v2, expected=v1)
    _crash_on_history_write(monkeypatch)
    with pytest.raises(RuntimeError):
        gate.rollback(model_name)
    monkeypatch.undo()
    assert str(tracking.alias_version(model_name, "champion").version) == v1
    assert gate.history(model_name) == [v1]  # not [v1, v2, v1]


def test_held_lock_waits_then_fails_and_a_crashed_holder_expires(model_name):
    with (
        tracking.registry_lock(model_name),
        pytest.raises(RegistryUnavailable, match="held for more than 0.5 s"),
        tracking.registry_lock(model_name, wait_s=0.5),
    ):
        pass
    tracking.lock_backend().acquire(model_name, "crashed", 0.5)  # taken, never renewed
    started = time.monotonic()
    with tracking.registry_lock(model_name, wait_s=5):
        assert time.monotonic() - started < 0.5 + 2 * tracking.LOCK_POLL_S
