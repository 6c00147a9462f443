"""The degraded-stylizer scenario (docs/drift.md, "Style quality"), through the session server,
whose params score every stylization (serve.quality_sample 1.0).

1. A stylizer the gate measured and passed (its run logs the gate's measures of its answers
   to the test's image pairs, tag gate.decision=passed) is made champion, and the service
   picks it up through the admin path (`infra/scripts/serving-admin.sh reload`, with a
   `kubectl` that runs the in-pod command here); stylizations are scored and rated 4 and 5.
2. A deliberately degraded version, the same network with its decoder's output layer zeroed
   (every answer black: nothing of the content is kept), is registered and made champion past
   the gate the same way; stylizations are scored and rated 1 and 2.
3. /metrics shows the scores and the ratings fall, per version; `artflow drift --check style
   --act` reports both versions beside the gate's measures (the degraded one is held to the
   version the gate passed) and starts the style pipeline once for the stylizer's families;
   a second run is held back by the cool-down.

The pipeline runner is a recording runner put in place of artflow.commands.pipeline's
retrain_runner: the real local runner is exercised by tests/monitor/test_trigger.py. At the
end the champion alias is put back as it was and the service reloaded, so the session's
tiny stylizer (a challenger) serves the other tests again. Thresholds are the smoke ones but for the
window sizes (2 scored answers, 2 ratings), kept tiny for the suite's time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from artflow import cli
from artflow.config import PROJECT_ROOT
from artflow.registry import tracking
from tests.monitor.recording import RecordingRunner
from tests.serve.conftest import ADMIN_TOKEN, wait_for_scoring_room, wait_scored

pytestmark = pytest.mark.slow

PAIRS = 2  # stylizations per version (= the window's minimum here)
HEADER = "x-artflow-answer-id"


def smooth(seed: int, n: int = 64) -> np.ndarray:
    """A smooth, structured picture (SSIM against random noise says nothing)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    wave = np.sin((x * rng.uniform(2, 6) + y * rng.uniform(1, 4)) * np.pi) * 0.5 + 0.5
    img = np.stack([wave, x, np.sqrt(x * y) * rng.uniform(0.5, 1.0)], -1)
    return (img * 255).clip(0, 255).astype(np.uint8)


def png(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def register(model: Any, gate_metrics: dict[str, float] | None, settings: Any) -> str:
    """A stylizer version; with `gate_metrics`, logged on its run and passed by "the gate"."""
    import mlflow

    with tracking.start_run("artflow-serve-tests", "scenario-stylizer", settings):
        if gate_metrics:
            mlflow.log_metrics({f"test_{k}": v for k, v in gate_metrics.items()})
        version = str(tracking.log_keras_model(model, tracking.STYLIZER).registered_model_version)
    if gate_metrics:
        tracking.client().set_model_version_tag(
            tracking.STYLIZER, version, "gate.decision", "passed"
        )
    return version


def gate_measures(model: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """What the gate logs for a stylizer: the shared measures of its answers, averaged."""
    from artflow.style.inference import Stylizer
    from artflow.style.metrics import mean_metrics, style_metrics

    stylizer = Stylizer(model)
    rows = [style_metrics(stylizer.stylize(c, s, 1.0), c, s, "none") for c, s in pairs]
    return mean_metrics(rows)


def admin_reload(server, tmp: Path) -> None:
    """serving-admin.sh reload as an operator runs it, `kubectl exec` replaced by a shim that
    runs the in-pod command here against the session server."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        '#!/usr/bin/env bash\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n'
    )
    kubectl.chmod(0o755)
    if not (bin_dir / "python").exists():
        (bin_dir / "python").symlink_to(sys.executable)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ARTFLOW_ADMIN_URL": server.url,
        "ARTFLOW_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    script = PROJECT_ROOT / "infra" / "scripts" / "serving-admin.sh"
    proc = subprocess.run([str(script), "reload"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def make_champion(server, tmp: Path, version: str) -> None:
    tracking.set_alias(tracking.STYLIZER, tracking.CHAMPION, version)
    admin_reload(server, tmp)


def stylize_and_rate(client, pairs, version: str, ratings: list[int]) -> list[str]:
    ids = []
    for (content, style), rating in zip(pairs, ratings, strict=True):
        files = {"content": ("c.png", png(content)), "style": ("s.png", png(style))}
        answer = client.post("/stylize", files=files)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-artflow-model-version"] == version
        ids.append(answer.headers[HEADER])
        rated = client.post("/ratings", json={"answer_id": ids[-1], "rating": rating})
        assert rated.status_code == 200, rated.text
    return ids


def metric(text: str, name: str, version: str, **labels: str) -> float:
    """One sample of /metrics for `version` (labels in any order)."""
    for line in text.splitlines():
        wanted = {"model_version": version, **labels}
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in wanted.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} for v{version} in /metrics")


def drift_params(tmp: Path) -> Path:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["drift"]["style_quality"].update(min_scored=PAIRS, min_ratings=PAIRS)
    path = tmp / "drift-params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_a_degraded_stylizer_is_seen_and_retrained_once(
    client, server, tmp_path: Path, monkeypatch, capsys, smoke_settings
) -> None:
    import keras

    from artflow.commands import pipeline
    from artflow.style.adain.networks import build_decoder, build_encoder, build_stylizer

    pairs = [(smooth(i), smooth(100 + i)) for i in range(PAIRS)]
    keras.utils.set_random_seed(5)
    model = build_stylizer(build_encoder("none"), build_decoder())
    good = register(model, gate_measures(model, pairs), smoke_settings)
    rgb = model.get_layer("decoder").get_layer("to_rgb")
    rgb.set_weights([np.zeros_like(w) for w in rgb.get_weights()])  # black answers
    bad = register(model, None, smoke_settings)
    before = tracking.alias_version(tracking.STYLIZER, tracking.CHAMPION)
    try:
        make_champion(server, tmp_path, good)
        wait_for_scoring_room(client, PAIRS)  # earlier tests' samples may still wait
        good_ids = stylize_and_rate(client, pairs, good, [4, 5])
        good_rows = wait_scored(server, good_ids)
        make_champion(server, tmp_path, bad)
        wait_for_scoring_room(client, PAIRS)
        bad_ids = stylize_and_rate(client, pairs, bad, [1, 2])
        bad_rows = wait_scored(server, bad_ids)
        text = ""
        for _ in range(30):  # the sync loop exports the store's rating counts
            text = client.get("/metrics").text
            if f'model_version="{bad}",stat="mean"' in text:
                break
            time.sleep(1)
        _check_metrics(text, good, bad, good_rows, bad_rows)

        runner = RecordingRunner()
        monkeypatch.setattr(pipeline, "retrain_runner", runner)
        store = f"sqlite:///{server.prediction_log.parent / 'serving.db'}"
        wd = tmp_path / "wd"
        args = ["drift", "--check", "style", "--window", "1d", "--store", store, "--act"]
        args += ["--workdir", str(wd), "--params", str(drift_params(tmp_path)), "-p", "smoke"]
        assert cli.run(args) == 0, capsys.readouterr()
        first = capsys.readouterr().out
        assert cli.run(args) == 0
        second = capsys.readouterr().out
    finally:  # the champion as it was (none: the session's challenger serves)
        if before is None:
            tracking.client().delete_registered_model_alias(tracking.STYLIZER, tracking.CHAMPION)
        else:
            tracking.set_alias(tracking.STYLIZER, tracking.CHAMPION, str(before.version))
        admin_reload(server, tmp_path)

    assert f"DEGRADED {tracking.STYLIZER} v{bad}" in first and "style pipeline started" in first
    assert "not started again" in second and "quality" in second
    [(name, kwargs)] = runner.calls  # once within the cool-down
    assert name == "style" and kwargs["families_only"] == "stylizer,fast_stylizer"
    reports = sorted((wd / "reports" / "quality").iterdir())
    verdict = json.loads((reports[0] / "verdict.json").read_text())
    by = {v["version"]: v for v in verdict["versions"] if v["model_name"] == tracking.STYLIZER}
    assert verdict["degraded"] == [{"model_name": tracking.STYLIZER, "version": bad}]
    assert not by[good]["degraded"] and by[good]["judged"]
    assert by[bad]["reference"]["version"] == good  # held to the version the gate passed
    assert by[bad]["ratings"]["mean"] == pytest.approx(1.5)
    assert by[bad]["scores"]["measures"]["ssim"]["degraded"]
    assert any(r.startswith("structural similarity -") for r in by[bad]["reasons"])
    page = (reports[0] / "report.html").read_text()
    assert f"v{bad} (champion): DEGRADED" in page and f"v{good} (not champion): ok" in page


def _check_metrics(text: str, good: str, bad: str, good_rows: dict, bad_rows: dict) -> None:
    """Per version in /metrics: the SSIM histogram's mean and the mean rating both fall."""

    def mean_ssim(version: str) -> float:
        labels = {"endpoint": "stylize", "measure": "ssim"}
        total = metric(text, "artflow_style_quality_sum", version, **labels)
        return total / metric(text, "artflow_style_quality_count", version, **labels)

    def rating(version: str) -> float:
        return metric(text, "artflow_style_ratings", version, stat="mean")

    stored = [
        np.mean([r["scores"]["ssim"] for r in rows.values()]) for rows in (good_rows, bad_rows)
    ]
    assert mean_ssim(good) == pytest.approx(stored[0]) and mean_ssim(bad) == pytest.approx(
        stored[1]
    )
    assert mean_ssim(bad) < 0.5 * mean_ssim(good)
    assert rating(good) == pytest.approx(4.5) and rating(bad) == pytest.approx(1.5)
    assert re.search(rf'artflow_style_quality_bucket\{{[^}}]*model_version="{bad}"', text)
