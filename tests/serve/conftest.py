"""One real `bentoml serve` per test session, on a free 127.0.0.1 port, over tiny models
registered in the session's MLflow store (the root conftest's autouse fixture sets the env).

Registered here: three untrained CNN classifier versions (champion v2 with a champion history
[1, 2] for rollback, challenger v3) and, when the style helper's API is present, a tiny
stylizer and Monet generator. Start-up failures fail fast with the server's log: a BentoML
worker that cannot start is restarted forever, so /readyz is polled with a short timeout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artflow.config import PROJECT_ROOT

LABELS = ["Claude_Monet", "Pablo_Picasso", "Vincent_van_Gogh", "Rembrandt"]
IMAGE_SIZE = 32
ADMIN_TOKEN = "test-admin-token"
READY_DEADLINE_S = 240
# What BentoML and uvicorn print when a worker fails to start (BentoML then restarts it
# forever); a handled exception logged by a running service prints neither.
STARTUP_FAILED = ("Initializing service error", "Application startup failed")


def png_bytes(seed: int = 0, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode) if mode != "RGB" else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def register_classifiers() -> dict[str, str]:
    """v1, v2, v3 of a tiny CNN: champion v2 (history [1, 2]), challenger v3."""
    import keras

    from artflow.classify.cnn import build_cnn
    from artflow.classify.io import register_classifier
    from artflow.config import load_settings
    from artflow.registry import tracking

    settings = load_settings(profile="smoke")
    versions = []
    for seed in (1, 2, 3):
        keras.utils.set_random_seed(seed)
        model = build_cnn(len(LABELS), IMAGE_SIZE, dense_units=8)
        with tracking.start_run("artflow-serve-tests", f"tiny-cnn-{seed}", settings):
            versions.append(register_classifier(model, LABELS, IMAGE_SIZE, "cnn").version)
    v1, v2, v3 = versions
    set_champion(v2, history=[v1, v2])
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHALLENGER, v3)
    return {"v1": v1, "v2": v2, "v3": v3}


def set_champion(version: str, history: list[str]) -> None:
    """Point champion at `version` with the gate's history tag (artflow.promote's format)."""
    from artflow import promote
    from artflow.registry import tracking

    client = tracking.client()
    client.set_registered_model_tag(tracking.CLASSIFIER, promote.HISTORY_TAG, json.dumps(history))
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHAMPION, version)


def register_style_models() -> dict[str, str]:
    """Tiny stylizer and Monet generator through the style helper's API, when it exists."""
    try:
        from artflow.style import inference  # noqa: F401
    except ImportError:
        return {}
    from tests.serve.style_models import register_tiny_style_models

    return register_tiny_style_models()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path
    prediction_log: Path
    versions: dict[str, str]

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _wait(server: Server, path: str) -> None:
    """Poll `path` until 200, failing fast (with the server's log) when the server died or its
    worker keeps crashing at start-up."""
    import httpx

    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"bentoml serve exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        log = server.log_path.read_text(errors="replace")
        if any(marker in log for marker in STARTUP_FAILED):
            pytest.fail(f"a bentoml worker failed at start-up:\n{log[-6000:]}")
        time.sleep(0.5)
    pytest.fail(f"{path} not 200 after {READY_DEADLINE_S} s:\n{server.log_tail()}")


def params_with(tmp: Path, **serve: object) -> Path:
    """A copy of params.yaml with `serve:` settings overridden, for a server under test.
    Quality sampling is off unless asked for: a sampled answer starts a scoring process, at
    random with the default share (the session server asks for every answer)."""
    import yaml

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["serve"].update({"quality_sample": 0.0, **serve})
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def start_server(
    tmp: Path,
    env_extra: dict[str, str] | None = None,
    params: Path | None = None,
    port: int | None = None,
) -> Server:
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    params = params or params_with(tmp, admin_max_failures=1000)  # tests fail tokens on purpose
    env = {
        **os.environ,
        "ARTFLOW_PROFILE": "smoke",
        "ARTFLOW_PREDICTION_LOG": str(tmp / "predictions"),  # a folder: one sub-folder per pod
        "ARTFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
        "BENTOML_HOME": str(tmp / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env_extra or {}),
    }
    log_path = tmp / "server.log"
    artflow = Path(sys.executable).parent / "artflow"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(artflow), "serve", "--port", str(port), "--host", "127.0.0.1"]
            + ["--params", str(params)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group; teardown also stops its workers
        )
    return Server(f"http://127.0.0.1:{port}", proc, log_path, tmp / "predictions", {})


def server_store(server: Server):  # noqa: ANN201 - artflow.serve.store.ServingStore
    """The server's serving store: the SQLite file beside its prediction log (the default)."""
    from artflow.serve.store import ServingStore

    url = f"sqlite:///{server.prediction_log.parent / 'serving.db'}"
    return ServingStore(url, "tests", "single", auto_migrate=False)


def descendants(pid: int) -> list:  # psutil.Process; psutil comes with BentoML
    """Every process below `pid`. BentoML's process manager (circus) starts each worker in a
    session of its own, so signalling the server's process group does not reach them."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_tree(proc: subprocess.Popen, processes: list | None = None) -> None:
    """SIGKILL `proc`, its process group and every worker below it, as a node loss would."""
    import psutil

    below = descendants(proc.pid) if processes is None else processes
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in below:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.wait(timeout=10)
    psutil.wait_procs(below, timeout=10)


def stop_server(server: Server) -> None:
    """SIGTERM (the manager stops its workers), then SIGKILL whatever is left below it."""
    below = descendants(server.proc.pid)
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout=20)
    kill_tree(server.proc, below)


@pytest.fixture(scope="session")
def serve_models(mlflow_store: str) -> dict[str, str]:
    return {**register_classifiers(), **register_style_models()}


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, mlflow_store: str, tmp_path_factory):
    """Start the server first, register the models while it imports TensorFlow (the two
    slowest steps overlap), then make it pick them up with POST /admin/reload: the same
    path an operator takes after a promotion."""
    import httpx

    from artflow.registry import tracking

    tracking.client().search_registered_models()  # create the store's tables before the server
    tmp = tmp_path_factory.mktemp("serve")
    # every stylization and Monet answer scored (the worst case; a small queue bounds the work)
    params = params_with(tmp, admin_max_failures=1000, quality_sample=1.0, quality_queue=4)
    srv = start_server(tmp, params=params)
    try:
        srv.versions = request.getfixturevalue("serve_models")
        _wait(srv, "/livez")
        reload = httpx.post(
            f"{srv.url}/admin/reload",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=READY_DEADLINE_S,
        )
        assert reload.status_code == 200, reload.text
        _wait(srv, "/readyz")
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture()
def client(server: Server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


SCORED_WITHIN_S = 240  # the scoring worker (nice 19) may first import TensorFlow, busy machine


def wait_scored(server: Server, ids: list[str]) -> dict[str, dict]:
    """The style answers `ids` once the quality worker has scored every one of them."""
    db = server_store(server)
    deadline, rows = time.monotonic() + SCORED_WITHIN_S, {}
    while time.monotonic() < deadline:
        rows = {r["answer_id"]: r for r in db.style_window(0) if r["answer_id"] in ids}
        if len(rows) == len(ids) and all(r["scores"] for r in rows.values()):
            return rows
        time.sleep(0.5)
    pytest.fail(f"not scored within {SCORED_WITHIN_S} s: {rows}\n{server.log_tail(3000)}")


def wait_for_scoring_room(client, need: int) -> None:  # noqa: ANN001 - an httpx.Client
    """Earlier tests' samples may still wait (the worker scores between requests): a queue
    without room for `need` more would drop this test's."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline, quality = time.monotonic() + SCORED_WITHIN_S, {}
    while time.monotonic() < deadline:
        quality = client.post("/admin/status", headers=headers).json()["quality"]
        if quality["queued"] <= quality["queue_size"] - need:
            return
        time.sleep(1)
    pytest.fail(f"the scoring queue stayed full: {quality}")


@pytest.fixture()
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
