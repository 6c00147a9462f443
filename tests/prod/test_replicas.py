"""Serving at the replica counts it is deployed with (docs/serving.md, "State across pods"):
three `artflow serve` replicas (two champion, one challenger on another registered version)
behind HAProxy round-robin with no affinity, sharing the serving store in PostgreSQL.

Through the balancer: classify with user keys and send feedback while one champion replica
is SIGKILLed; the A/B report over the store; a share change and a rollback (by the gate's
identity: the replicas' own may move no alias) seen by every replica; a Gatys job polled and
cancelled from replicas other than the one running it.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from artflow.cli import run as cli
from artflow.config import PROJECT_ROOT
from artflow.registry import tracking
from tests.prod.replicas import SYNC_S, kill_replica, replicas  # noqa: F401 - the fixture
from tests.promote.conftest import LABELS
from tests.serve.conftest import ADMIN_TOKEN

pytestmark = [pytest.mark.prod, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
N_FEEDBACK = 330  # >= 300 acknowledged through the balancer
USERS = 48
MIN_SAMPLES = 100  # abtest.min_samples of the report here (params: 200)
RETRIED = (502, 503, 504)
KILL_AFTER = 120  # feedback sent before one champion replica is SIGKILLed


def colour_png(label: int, seed: int) -> bytes:
    """An image of class `label` for the colour classifiers (its channel dominates)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
    img[..., label] = rng.integers(150, 255, (32, 32), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _post(client: httpx.Client, url: str, **kwargs) -> httpx.Response | None:
    """POST with the client's retry of a failed connection or a balancer 5xx (at most 5)."""
    for attempt in range(5):
        try:
            r = client.post(url, **kwargs)
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code not in RETRIED:
            return r
        time.sleep(0.2 * (attempt + 1))
    return r


def _report(tmp_path, replicas, name: str) -> dict:  # noqa: F811
    """`artflow ab report` over the serving store, as the CronJob runs it."""
    import json

    from artflow.cli import run

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["abtest"]["min_samples"] = MIN_SAMPLES
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / f"{name}.md"
    code = run(
        ["ab", "report", "--store", replicas.store_url, "--out", str(out), "--params", str(path)]
    )
    assert code == 0
    return json.loads(out.with_suffix(".json").read_text())


def test_feedback_through_the_balancer_survives_a_sigkill_and_the_report_concludes(
    replicas,  # noqa: F811
    tmp_path,
) -> None:
    lb = replicas.balancer.url
    started = time.monotonic()
    with httpx.Client(timeout=60) as c:
        r = _post(c, f"{lb}/admin/weight", json={"weight": 0.5}, headers=AUTH)
        assert r is not None and r.status_code == 200, r
    time.sleep(SYNC_S + 0.5)  # every replica has the share
    keys = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(USERS)]
    seen: dict[str, set[str]] = {k: set() for k in keys}
    acked, not_found, lost, sent = [], [], [], [0]
    lock = threading.Lock()
    killed = threading.Event()

    def one(i: int) -> None:
        key, label = keys[i % USERS], i % len(LABELS)
        with httpx.Client(timeout=60) as c:
            files = {"image": ("x.png", colour_png(label, i), "image/png")}
            answer = _post(c, f"{lb}/classify", files=files, headers={"X-Client-Key": key})
            assert answer is not None and answer.status_code == 200, answer
            body = answer.json()
            fb = {"prediction_id": body["prediction_id"], "artist": LABELS[label]}
            r = _post(c, f"{lb}/feedback", json=fb)
        with lock:
            seen[key].add(body["variant"])
            sent[0] += 1
            if r is not None and r.status_code == 200 or r is not None and r.status_code == 409:
                acked.append(body["prediction_id"])
            elif r is not None and r.status_code == 404:
                not_found.append(body["prediction_id"])
            else:
                lost.append((body["prediction_id"], None if r is None else r.status_code))

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(one, i) for i in range(N_FEEDBACK)]
        while not killed.is_set():
            with lock:
                if sent[0] >= KILL_AFTER:
                    kill_replica(replicas.servers[1])  # a champion replica, mid-traffic
                    killed.set()
            time.sleep(0.05)
        for f in futures:
            f.result()
    seconds = time.monotonic() - started
    print(f"\n{N_FEEDBACK} classify + feedback through haproxy: {seconds:.1f} s")
    assert not_found == [] and lost == []
    assert len(acked) >= 300
    stored = {row[0] for row in replicas.query("select prediction_id from serving_feedback")}
    assert set(acked) <= stored  # every acknowledged one survived the SIGKILL
    assert all(len(v) == 1 for v in seen.values()), seen  # one variant per user key
    variants = {v for s in seen.values() for v in s}
    assert variants == {"champion", "challenger"}
    pods = {row[0] for row in replicas.query("select distinct pod from serving_answers")}
    assert len(pods) == 3  # every replica answered
    deadline = time.monotonic() + 10  # assignments are recorded off the request's path
    while (
        len(assigned := replicas.query("select client, variant from serving_assignments")) < USERS
    ):
        assert time.monotonic() < deadline, f"{len(assigned)} assignments recorded"
        time.sleep(0.2)
    by_client: dict[str, set[str]] = {}
    for client, variant in assigned:
        by_client.setdefault(client, set()).add(variant)
    assert all(len(v) == 1 for v in by_client.values())  # one variant per client and share

    verdict = _report(tmp_path, replicas, "ab")
    assert verdict["decision"] == "keep champion" and "worse" in verdict["reason"]
    assert verdict["versions"] == {
        "champion": replicas.versions["champion"],
        "challenger": replicas.versions["challenger"],
    }
    deadline = time.monotonic() + SYNC_S + 5
    url = replicas.servers[2].url
    while (
        'artflow_ab_verdict{decision="keep champion"} 1.0'
        not in httpx.get(f"{url}/metrics", timeout=10).text
    ):
        assert time.monotonic() < deadline, "verdict not in the replica's /metrics"
        time.sleep(0.2)


def test_the_report_says_not_enough_data_below_the_stopping_rule(
    replicas,  # noqa: F811
    tmp_path,
) -> None:
    """The same store with a stopping rule above what was collected: not enough data."""
    import json

    from artflow.cli import run

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["abtest"]["min_samples"] = 10_000
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / "early.md"
    args = ["ab", "report", "--store", replicas.store_url, "--out", str(out), "--no-track"]
    assert run([*args, "--params", str(path)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["decision"] == "not enough data"


def _live(replicas) -> list:  # noqa: ANN001, F811
    return [s for s in replicas.servers if s.proc.poll() is None]


def _variants(url: str, n: int = 8) -> set[str]:
    with httpx.Client(timeout=60) as c:
        return {
            c.post(
                f"{url}/classify",
                files={"image": ("x.png", colour_png(2, i), "image/png")},
                headers={"X-Client-Key": f"fresh-{uuid.uuid4().hex}"},
            ).json()["variant"]
            for i in range(n)
        }


def _until(check, bound_s: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound_s, f"not seen within {bound_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_share_change_and_rollback_reach_every_replica(replicas) -> None:  # noqa: F811
    lb = replicas.balancer.url
    live = _live(replicas)
    timings = {}
    for weight, expected in ((0.0, {"champion"}), (1.0, {"challenger"})):
        with httpx.Client(timeout=60) as c:
            assert _post(c, f"{lb}/admin/weight", json={"weight": weight}, headers=AUTH).is_success
        timings[weight] = _until(
            lambda exp=expected: all(_variants(s.url) == exp for s in live), SYNC_S + 10
        )
    with httpx.Client(timeout=240) as c:
        r = _post(c, f"{lb}/admin/rollback", json={"model": "classifier"}, headers=AUTH)
        # the replicas are `serving`, which reads the registry and moves no alias
        assert r.status_code == 409 and "not allowed: serving may not" in r.json()["error"]
        # the gate's identity rolls back (this process: `artflow rollback`); one reload
        assert cli(["rollback", tracking.CLASSIFIER]) == 0
        r = _post(c, f"{lb}/admin/reload", headers=AUTH)
    assert r.status_code == 200, r.text
    old = replicas.versions["old"]

    def rolled_back() -> bool:
        versions = [
            httpx.get(f"{s.url}/status", timeout=10).json()["models"]["classifier:champion"]
            for s in live
        ]
        return all(v["version"] == old for v in versions)

    timings["rollback"] = _until(rolled_back, SYNC_S + 60)
    print(f"\nseen by every replica after (s): {timings}")


def test_gatys_job_progress_and_cancel_from_any_replica(replicas) -> None:  # noqa: F811
    live = _live(replicas)
    lb = replicas.balancer.url
    files = {
        "content": ("c.png", colour_png(0, 1), "image/png"),
        "style": ("s.png", colour_png(2, 2), "image/png"),
    }
    with httpx.Client(timeout=60) as c:
        short = _post(c, f"{lb}/gatys/jobs", files=files, data={"steps": "2", "size": "32"})
        assert short.status_code == 202, short.text
        job = short.json()["job"]

        def done() -> bool:
            return c.get(f"{lb}/gatys/jobs/{job}").json()["state"] == "done"

        _until(done, 180)
        for s in live:  # the result from every replica
            png = c.get(f"{s.url}/gatys/jobs/{job}/result")
            assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        long = _post(c, f"{lb}/gatys/jobs", files=files, data={"steps": "50", "size": "32"})
        assert long.status_code == 202, long.text
        job = long.json()["job"]
        _until(lambda: c.get(f"{lb}/gatys/jobs/{job}").json()["step"] >= 2, 180)
        views = [c.get(f"{s.url}/gatys/jobs/{job}").json() for s in live]
        assert {v["job"] for v in views} == {job} and views[0]["state"] == "running"
        runner = views[0]["pod"]
        other = next(s for s in live if replicas.pods[replicas.servers.index(s)] != runner)
        cancel = c.post(f"{other.url}/gatys/jobs/{job}/cancel")
        assert cancel.status_code == 200 and cancel.json()["cancel_requested"]
        _until(lambda: c.get(f"{lb}/gatys/jobs/{job}").json()["state"] == "cancelled", 60)
        final = c.get(f"{live[-1].url}/gatys/jobs/{job}").json()
        assert final["step"] < 50
        missing = c.get(f"{lb}/gatys/jobs/{uuid.uuid4().hex}")
        assert missing.status_code == 404 and "unknown job" in missing.json()["error"]


def test_failed_admin_tokens_are_limited_per_caller_over_every_replica(replicas) -> None:  # noqa: F811
    """Bad tokens from one caller, spread by the balancer over the replicas, lock out that
    caller (named by X-Forwarded-For through the trusted balancer), not every admin."""
    from tests.prod.replicas import MAX_FAILURES

    lb = replicas.balancer.url
    guesser, admin = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    with httpx.Client(timeout=30) as c:
        for _ in range(MAX_FAILURES):
            bad = c.post(f"{lb}/admin/status", headers={**guesser, "X-Admin-Token": "guess"})
            assert bad.status_code == 403
        locked = c.post(f"{lb}/admin/status", headers={**guesser, **AUTH})
        assert locked.status_code == 429 and "Retry-After" in locked.headers
        assert c.post(f"{lb}/admin/status", headers={**admin, **AUTH}).status_code == 200
