"""A second server (batching off, low admin-failure limit) beside the session's one:

* served /classify equals the registered model's offline prediction, batching on (the
  session server) and off (this one);
* a Gatys request that times out (504) stops its optimisation, the one-at-a-time guard is
  free only after it stopped, and the cancellation is counted;
* failed admin tokens are rate-limited per client (429, even for the right token);
* SIGTERM to `artflow serve` lets the request in flight finish, then leaves no server process
  and frees the port;
* its serving store is down (a PostgreSQL URL nothing listens on): /classify still answers
  200 with an id that takes no feedback, feedback answers 503 naming the store.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import pytest

from tests.serve import images
from tests.serve.conftest import ADMIN_TOKEN, params_with, start_server, stop_server

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MAX_FAILURES = 4


def gatys(url: str, steps: int, timeout_s: float | None = None) -> httpx.Response:
    data = {"method": "gatys", "steps": str(steps), "size": "64"}
    if timeout_s:
        data["timeout_s"] = str(timeout_s)
    files = {
        "content": ("c.png", images.png(1, w=64, h=64), "image/png"),
        "style": ("s.png", images.png(2, w=64, h=64), "image/png"),
    }
    return httpx.post(f"{url}/stylize", files=files, data=data, timeout=120)


def gatys_state(url: str) -> dict:
    return httpx.get(f"{url}/status", headers=ADMIN, timeout=10).json()["gatys"]


def cancelled_total(url: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "artflow_cancelled_work_total" and s.labels.get("endpoint") == "stylize"
    )


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory, serve_models):
    tmp = tmp_path_factory.mktemp("second")
    params = params_with(
        tmp,
        admin_max_failures=MAX_FAILURES,
        gatys_max_steps=2000,
        gatys_step_s=0.001,  # the estimate lets 2000 steps start: the timeout must stop them
        shutdown_grace_s=60,
        batching=False,
    )
    down = f"postgresql://artflow_serving@127.0.0.1:{_closed_port()}/artflow_serving"
    srv = start_server(tmp, {"ARTFLOW_SERVING_STORE": down}, params=params)
    srv.versions = serve_models
    try:
        wait_until(lambda: _ready(srv.url), 240, f"/readyz of the second server\n{srv.log_tail()}")
        yield srv
    finally:
        stop_server(srv)


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_outage_serves_classify_and_refuses_feedback_clearly(bare_server) -> None:
    r = httpx.post(
        f"{bare_server.url}/classify",
        files={"image": ("x.png", images.png(7), "image/png")},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prediction_id"].startswith("unstored-")
    assert body["feedback"]["accepted"] is False and "store" in body["feedback"]["reason"]
    fb = httpx.post(
        f"{bare_server.url}/feedback",
        json={"prediction_id": body["prediction_id"], "correct": True},
        timeout=30,
    )
    assert fb.status_code == 409 and "store was down" in fb.json()["error"]
    fresh = httpx.post(
        f"{bare_server.url}/feedback",
        json={"prediction_id": "0" * 32, "correct": True},
        timeout=30,
    )
    assert fresh.status_code == 503 and "serving store unavailable" in fresh.json()["error"]
    assert fresh.headers.get("retry-after")
    weight = httpx.post(
        f"{bare_server.url}/admin/weight", json={"weight": 0.2}, headers=ADMIN, timeout=30
    )
    assert weight.status_code == 503 and "not changed" in weight.json()["error"]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def champion_key() -> str:
    from artflow.serve.router import CHAMPION, Router

    router = Router(0.1)  # serve.challenger_weight of both servers
    return next(k for i in range(100) if router.assign(k := f"equal-{i}") == CHAMPION)


def served_probs(url: str, data: bytes, n: int) -> list[dict[str, float]]:
    """n concurrent identical requests (so batches form when batching is on)."""
    from concurrent.futures import ThreadPoolExecutor

    key = champion_key()

    def one(_: int) -> dict[str, float]:
        r = httpx.post(
            f"{url}/classify",
            files={"image": ("x.bin", data)},
            data={"top_k": "100"},
            headers={"X-Client-Key": key},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.json()["variant"] == "champion"
        return {row["artist"]: row["probability"] for row in r.json()["top"]}

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_served_classify_equals_the_offline_prediction(server, bare_server):
    """The same image, served (batching on and off) and predicted offline from the registry.

    An image up to twice the model's input decodes exactly as training does, and the
    service's resize to the input size (Pillow) equals training's (TensorFlow) up to
    rounding, at most 1 of 255 per pixel (tests/serve/test_inference.py): close. A larger
    one is also reduced while decoding (DCT scaling, box filter): close."""
    from artflow.classify.io import load_classifier
    from artflow.imageio import load_rgb

    model = load_classifier(server.versions["v2"])
    small, large = images.jpeg(21), images.png(22, w=400, h=300)
    for data, atol in ((small, 0.005), (large, 0.02)):
        offline = model.predict([load_rgb(data)])[0]
        expected = dict(zip(model.labels, offline.tolist(), strict=True))
        for srv in (server, bare_server):  # batching on, then off
            for answer in served_probs(srv.url, data, n=6):
                for artist, p in expected.items():
                    assert abs(answer[artist] - p) <= atol, (srv.url, artist, answer, expected)


def test_a_timed_out_gatys_run_stops_and_frees_the_guard(bare_server):
    url = bare_server.url
    r = gatys(url, steps=2000, timeout_s=2)
    assert r.status_code == 504 and "stopped" in r.json()["error"], r.text
    wait_until(lambda: not gatys_state(url)["running"], 90, "the Gatys run to stop")
    stopped = gatys_state(url)
    assert 0 < stopped["steps_done"] < 2000 and stopped["cancelled"] == 1
    time.sleep(1.0)
    assert gatys_state(url)["steps_done"] == stopped["steps_done"]  # nothing runs on
    assert cancelled_total(url) == 1
    after = gatys(url, steps=1)
    assert after.status_code != 429, after.text  # the guard is free again


def test_failed_admin_tokens_are_rate_limited(bare_server):
    url = bare_server.url
    wrong = {"Authorization": "Bearer guess"}
    codes = [httpx.post(f"{url}/admin/reload", headers=wrong).status_code for _ in range(4)]
    assert codes == [403] * MAX_FAILURES
    limited = httpx.post(f"{url}/admin/weight", json={"weight": 0.2}, headers=ADMIN)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "too many" in limited.json()["error"]
    assert httpx.get(f"{url}/status", headers=ADMIN).status_code == 429
    assert httpx.get(f"{url}/livez").status_code == 200  # the public side is unaffected


def test_sigterm_drains_the_request_in_flight_and_frees_the_port(bare_server):
    port = int(bare_server.url.rsplit(":", 1)[1])
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.update(r=gatys(bare_server.url, steps=20)))
    request.start()
    time.sleep(2.0)  # the request is in the server (the admin view is rate-limited by now)
    os.kill(bare_server.proc.pid, signal.SIGTERM)  # `artflow serve` itself, as systemd would
    request.join(timeout=120)
    assert result["r"].status_code == 200, result["r"].text  # finished, not cut off
    assert bare_server.proc.wait(timeout=60) is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(bare_server.proc.pid, 0)  # no worker left in its process group
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # nothing listens
    with socket.socket() as s:  # and a new server can bind it (as servers do: SO_REUSEADDR,
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # which still fails while
        s.bind(("127.0.0.1", port))  # another socket listens there)
