"""Gatys that completes, on the session's real service: the synchronous call at its served
defaults, at the upload's own size; bounds refused with a 422 that names them; runs that cannot
end within the request refused with a pointer to the job endpoint; a job at the documented
maximum runs to the end, showing progress."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from artflow.config import load_settings
from tests.serve import images

pytestmark = pytest.mark.slow

SERVE = load_settings(profile="smoke").serve


def _pair(side: int) -> dict:
    return {
        "content": ("c.png", images.png(61, w=side, h=side), "image/png"),
        "style": ("s.png", images.png(62, w=side, h=side), "image/png"),
    }


def test_sync_gatys_at_its_defaults_works_at_the_uploads_own_size(client) -> None:
    r = client.post("/stylize", files=_pair(40), data={"method": "gatys"})
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (40, 40)  # not upscaled to 256 first
    status = client.get("/status", headers={"Authorization": "Bearer test-admin-token"}).json()
    assert status["gatys"]["steps_done"] == SERVE.gatys_steps  # the served default


def test_gatys_bounds_are_refused_naming_them(client) -> None:
    over = client.post("/stylize", files=_pair(40), data={"method": "gatys", "steps": "1000000000"})
    assert over.status_code == 422 and over.json()["field"] == "steps"
    assert f"less than or equal to {SERVE.gatys_max_steps}" in over.json()["error"]
    big = client.post("/stylize", files=_pair(40), data={"method": "gatys", "size": "512"})
    assert big.status_code == 422 and str(SERVE.gatys_max_size) in big.json()["error"]
    # the maximum at full size does not fit a request: refused before it starts
    long = client.post(
        "/stylize", files=_pair(256), data={"method": "gatys", "steps": SERVE.gatys_max_steps}
    )
    assert long.status_code == 422 and long.json()["code"] == "use_job", long.text
    assert "POST /gatys/jobs" in long.json()["error"]
    job = client.post("/gatys/jobs", files=_pair(40), data={"steps": SERVE.gatys_max_steps + 1})
    assert job.status_code == 422 and job.json()["field"] == "steps"


def test_a_job_at_the_maximum_completes_with_progress(client) -> None:
    submitted = client.post(
        "/gatys/jobs", files=_pair(32), data={"steps": str(SERVE.gatys_max_steps)}
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["steps"] == SERVE.gatys_max_steps
    seen, deadline = set(), time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(job["progress"]).json()
        seen.add(state["step"])
        if state["state"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert state["state"] == "done" and state["step"] == SERVE.gatys_max_steps, state
    assert len(seen) >= 3  # progress was reported along the way
    result = client.get(job["result"])
    assert result.status_code == 200 and Image.open(io.BytesIO(result.content)).size == (32, 32)
