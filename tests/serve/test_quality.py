"""The quality measures and the rating rules on their own (no server): the Monet distance,
the worker's scores, and a store outage's answers."""

from __future__ import annotations

import numpy as np
import pytest

from artflow.serve.quality_worker import score
from artflow.serve.ratings import StyleBook
from artflow.serve.store import ServingStore
from artflow.serve.validation import ApiError
from artflow.style.metrics import monet_distance, monet_reference


def _smooth(seed: int) -> np.ndarray:
    """A "painting": smooth colour fields (what a CycleGAN's Monet set looks like to VGG)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (4, 4, 3)).astype(np.uint8)
    return np.kron(small, np.ones((16, 16, 1), np.uint8))


def test_monet_distance_is_larger_for_what_does_not_look_like_the_set():
    reference = monet_reference([_smooth(s) for s in range(4)], "none")
    assert reference["n"] == 4 and len(reference["mean"]) == len(reference["var"]) == 1472
    near = np.mean([monet_distance(_smooth(s), reference) for s in range(10, 12)])
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert monet_distance(noise, reference) > 3 * near


def test_the_worker_scores_a_stylization_and_a_monet_painting():
    content, style = _smooth(1), _smooth(2)
    stylized = score({"result": content, "content": content, "style": style}, "none")
    assert set(stylized) == {"content_loss", "style_loss", "ssim"}
    assert stylized["content_loss"] == pytest.approx(0) and stylized["ssim"] == pytest.approx(1)
    reference = monet_reference([_smooth(s) for s in range(4)], "none")
    job = {"result": _smooth(5), "content": content, "style": None, "reference": reference}
    assert set(score(job, "none")) == {"content_loss", "ssim", "monet_distance"}
    job["reference"] = None  # a version trained before the statistics: no distance
    assert set(score(job, "none")) == {"content_loss", "ssim"}


def test_a_store_outage_serves_unrateable_ids_and_answers_503():
    book = StyleBook(ServingStore("postgresql://nobody@127.0.0.1:1/none", "p", "single"))
    answer = book.remember("stylize", "m", "1", "fast")
    assert answer.startswith("unstored-")
    with pytest.raises(ApiError) as refused:
        book.rate(answer, 3)
    assert refused.value.status == 409
    with pytest.raises(ApiError) as down:
        book.rate("a" * 32, 3)
    assert down.value.status == 503


def _state(pid: int, want: str) -> str:
    """The process's state once it is `want` (signals apply asynchronously), else the last."""
    import time
    from pathlib import Path

    for _ in range(100):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == want:
            break
        time.sleep(0.01)
    return state


def test_the_worker_is_frozen_while_requests_are_in_flight():
    import subprocess
    import time

    from artflow.serve.quality_pause import Pause

    pause, proc = Pause(), subprocess.Popen(["sleep", "30"])
    try:
        pause.attach(proc.pid)
        pause.enter()
        pause.enter()  # two requests in flight
        assert _state(proc.pid, "T") == "T"
        pause.leave()
        time.sleep(0.05)
        assert _state(proc.pid, "T") == "T"  # one still in flight
        pause.leave()
        assert _state(proc.pid, "S") == "S" and pause.paused_s > 0
        pause.enter()
        pause.attach(None)  # it exited: nothing to signal, nothing fails
        pause.leave()
    finally:
        proc.kill()
        proc.wait()
