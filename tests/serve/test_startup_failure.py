"""The serving tests' start-up watch: a worker that fails to start fails the test at once,
with the server's log; a running service that logs handled exceptions does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serve.conftest import Server, _wait, free_port, stop_server

SERVICE = """
import logging
import os

import bentoml


@bentoml.service
class Probe:
    def __init__(self) -> None:
        if os.environ.get("PROBE_CRASH"):
            raise RuntimeError("probe: deliberately broken at start-up")
        try:  # a handled, logged exception, as a fallback logs it
            raise ConnectionError("registry unreachable")
        except ConnectionError:
            for _ in range(5):
                logging.getLogger("probe").exception("Traceback (most recent call last):")

    @bentoml.api
    def ping(self) -> str:
        return "pong"
"""


def _serve(tmp: Path, crash: bool) -> Server:
    (tmp / "probe_service.py").write_text(SERVICE)
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(tmp / "home"), "BENTOML_DO_NOT_TRACK": "true"}
    if crash:
        env["PROBE_CRASH"] = "1"
    log_path = tmp / "server.log"
    bentoml = Path(sys.executable).parent / "bentoml"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(bentoml), "serve", "probe_service:Probe", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(f"http://127.0.0.1:{port}", proc, log_path, tmp / "predictions", {})


def test_start_up_watch_tells_a_crashing_worker_from_handled_exceptions(tmp_path):
    # Both servers start at once: the suite pays for one start-up, not two.
    (tmp_path / "crash").mkdir()
    (tmp_path / "ok").mkdir()
    crashing, healthy = _serve(tmp_path / "crash", crash=True), _serve(tmp_path / "ok", crash=False)
    try:
        started = time.monotonic()
        with pytest.raises(pytest.fail.Exception) as failed:
            _wait(crashing, "/readyz")
        assert time.monotonic() - started < 120  # not the 240 s ready deadline
        assert "failed at start-up" in str(failed.value)
        assert "probe: deliberately broken at start-up" in str(failed.value)

        _wait(healthy, "/readyz")
        assert healthy.log_path.read_text().count("Traceback") >= 3  # the old heuristic's bar
    finally:
        stop_server(crashing)
        stop_server(healthy)
