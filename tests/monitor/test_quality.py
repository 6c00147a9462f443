"""The quality trigger: served stylizations' scores and ratings against the gate's measures.

The judging is a pure function of rows (fed here as the serving store returns them); the
reference, the champion and the trigger's state are read from and written to a real MLflow
store (an empty one per test: the real registered names are used). The style pipeline is
started through a recording runner; the real local runner is exercised by
tests/monitor/test_trigger.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from artflow.data.layout import Workdir
from artflow.families import CYCLEGAN, STYLIZER
from artflow.monitor import quality
from artflow.monitor.quality_check import check_quality, gate_reference
from artflow.monitor.trigger import trigger_style_retrain
from artflow.registry import tracking
from tests.monitor.recording import RecordingRunner

GOOD = {"content_loss": 0.5, "style_loss": 2.0, "ssim": 0.6}


def rows(
    version: str,
    n: int,
    scores: dict[str, float] | None,
    rating: int | None,
    t0: float = 0.0,
    model: str = STYLIZER,
) -> list[dict[str, Any]]:
    return [
        {
            "answer_id": f"{model}-{version}-{t0}-{i}",
            "at": t0 + i,
            "endpoint": "stylize",
            "model_name": model,
            "model_version": version,
            "method": "adain",
            "scores": dict(scores) if scores else None,
            "rating": rating,
        }
        for i in range(n)
    ]


def ref(version: str = "1", metrics: dict[str, float] = GOOD) -> quality.Reference:
    return quality.Reference(STYLIZER, version, dict(metrics), f"gate v{version}")


def test_a_loss_that_grew_past_max_drop_degrades_with_a_reason(smoke_settings) -> None:
    cfg = smoke_settings.drift.style_quality  # max_drop 0.15, min_scored 30
    worse = {**GOOD, "content_loss": 0.59}  # +18%
    verdict = quality.judge(
        rows("2", 40, worse, None), {(STYLIZER, "2"): ref()}, {STYLIZER: "2"}, cfg, 500
    )
    [v] = verdict["versions"]
    assert v["degraded"] and verdict["degraded"] == [{"model_name": STYLIZER, "version": "2"}]
    m = v["scores"]["measures"]["content_loss"]
    assert m["drop"] == pytest.approx(0.18) and m["degraded"]
    assert not v["scores"]["measures"]["ssim"]["degraded"]
    assert v["reasons"] == [
        "content preservation -18% over the last 40 scored answers "
        "(content_loss 0.59 vs 0.5 at the gate, v1)"
    ]


def test_ssim_degrades_when_it_shrinks_and_better_is_never_a_drop(smoke_settings) -> None:
    cfg = smoke_settings.drift.style_quality
    better = {"content_loss": 0.3, "style_loss": 1.0, "ssim": 0.45}  # ssim -25%, losses fell
    [v] = quality.judge(
        rows("1", 30, better, None), {(STYLIZER, "1"): ref()}, {STYLIZER: "1"}, cfg, None
    )["versions"]
    measures = v["scores"]["measures"]
    assert measures["ssim"]["drop"] == pytest.approx(0.25) and measures["ssim"]["degraded"]
    assert measures["content_loss"]["drop"] < 0 and not measures["content_loss"]["degraded"]
    assert [r.split(" -")[0] for r in v["reasons"]] == ["structural similarity"]


def test_too_few_answers_or_no_reference_judge_nothing(smoke_settings) -> None:
    cfg = smoke_settings.drift.style_quality
    bad = {**GOOD, "content_loss": 5.0}
    few = quality.judge(rows("2", 19, bad, 1), {(STYLIZER, "2"): ref()}, {STYLIZER: "2"}, cfg, 500)
    [v] = few["versions"]
    assert not v["judged"] and not v["degraded"] and few["degraded"] == []
    assert v["scores"]["measures"]["content_loss"]["window"] == 5.0  # still shown
    unknown = quality.judge(
        rows("9", 50, bad, None), {(STYLIZER, "9"): None}, {STYLIZER: "9"}, cfg, 500
    )
    assert unknown["versions"][0]["reference"] is None and unknown["degraded"] == []


def test_the_window_is_the_newest_answers_and_ratings_have_a_floor(smoke_settings) -> None:
    cfg = smoke_settings.drift.style_quality  # min_ratings 20, floor 2.5
    old = rows("2", 100, {**GOOD, "content_loss": 5.0}, 5, t0=0)
    new = rows("2", 30, GOOD, 2, t0=1000)
    [v] = quality.judge(old + new, {(STYLIZER, "2"): ref()}, {STYLIZER: "2"}, cfg, 30)["versions"]
    assert v["scores"]["scored"] == 30 and not v["scores"]["degraded"]  # the old ones left out
    assert v["ratings"] == {**v["ratings"], "count": 30, "mean": 2.0, "degraded": True}
    assert v["reasons"] == ["mean rating 2.00 under the floor 2.5 over the last 30 ratings"]


def test_only_a_degraded_champion_is_a_retrain(smoke_settings) -> None:
    cfg = smoke_settings.drift.style_quality
    bad = {**GOOD, "style_loss": 3.0}
    refs = {(STYLIZER, "1"): ref(), (STYLIZER, "2"): ref()}
    both = (
        rows("1", 40, GOOD, 4)
        + rows("2", 40, bad, 4)
        + [{**rows("3", 1, GOOD, 4)[0], "model_name": ""}]
    )
    verdict = quality.judge(both, refs, {STYLIZER: "1"}, cfg, 500)
    assert [(v["version"], v["champion"], v["degraded"]) for v in verdict["versions"]] == [
        ("1", True, False),
        ("2", False, True),
    ]
    assert verdict["degraded"] == []  # the challenger loses its A/B test instead


def _version(name: str, metrics: dict[str, float], settings: Any, passed: bool) -> str:
    """A registered version whose run logged the gate's measures (as test_*)."""
    import mlflow

    client = tracking.client()
    if tracking.ask(name, lambda: client.get_registered_model(name)) is None:
        client.create_registered_model(name)
    with tracking.start_run("artflow-quality-tests", "style-version", settings) as run:
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    mv = client.create_model_version(name, f"file:///tmp/{run.info.run_id}", run_id=run.info.run_id)
    if passed:
        client.set_model_version_tag(name, mv.version, "gate.decision", "passed")
    return str(mv.version)


def test_a_degraded_champion_past_the_gate_is_held_to_the_gate_passed_one_and_retrained_once(
    fresh_store, tmp_path: Path, smoke_settings
) -> None:
    """v1 passed the gate; v2 (an untrained decoder, say) was made champion past it: its
    answers are judged against v1's measures, the report shows both versions beside them,
    and the style pipeline starts once for the stylizer's families within the cool-down."""
    good = _version(STYLIZER, GOOD, smoke_settings, passed=True)
    bad = _version(
        STYLIZER,
        {"content_loss": 9.0, "style_loss": 90.0, "ssim": 0.01},
        smoke_settings,
        passed=False,
    )
    monet = _version(CYCLEGAN, {"cycle_l1": 0.1}, smoke_settings, passed=True)
    tracking.client().set_registered_model_alias(STYLIZER, "champion", bad)
    tracking.client().set_registered_model_alias(CYCLEGAN, "champion", monet)
    import time

    now = time.time() - 100
    served = (
        rows(good, 40, GOOD, 4, t0=now)
        + rows(bad, 40, {**GOOD, "content_loss": 0.6, "ssim": 0.4}, 1, t0=now + 50)
        + rows(monet, 40, {"cycle_l1": 0.1}, None, t0=now, model=CYCLEGAN)
    )
    asked: list[tuple[float, str | None]] = []

    def reader(since: float, model_name: str | None) -> list[dict[str, Any]]:
        asked.append((since, model_name))
        return [r for r in served if r["at"] >= since]

    wd = Workdir.at(tmp_path / "wd")
    verdict = check_quality(smoke_settings, wd, reader, "500")
    assert asked and asked[0][0] < now  # a count window reads back drift.style_quality.lookback_h
    assert verdict["degraded"] == [{"model_name": STYLIZER, "version": bad}]
    by = {(v["model_name"], v["version"]): v for v in verdict["versions"]}
    judged = by[(STYLIZER, bad)]
    assert (
        judged["reference"]["version"] == good
        and "not passed by the gate" in judged["reference"]["source"]
    )
    assert judged["ratings"]["mean"] == 1.0 and judged["ratings"]["degraded"]
    assert (
        by[(STYLIZER, good)]["reference"]["version"] == good
        and not by[(STYLIZER, good)]["degraded"]
    )
    assert by[(CYCLEGAN, monet)]["judged"] and not by[(CYCLEGAN, monet)]["degraded"]
    page = Path(verdict["report"]["html"]).read_text()
    assert "content preservation -20%" in page and f"{STYLIZER} v{bad} (champion): DEGRADED" in page
    assert (
        json.loads(Path(verdict["report"]["json"]).read_text())["mlflow_run_id"]
        == verdict["mlflow_run_id"]
    )
    logged = tracking.client().get_run(verdict["mlflow_run_id"]).data
    assert logged.metrics["stylizer.content_loss"] == pytest.approx(0.6)
    assert logged.metrics["stylizer.rating"] == 1.0 and logged.tags["artflow.degraded"] == "true"

    runner = RecordingRunner()
    [first] = trigger_style_retrain(smoke_settings, wd, verdict, runner, source="dvc://r?path=d")
    [second] = trigger_style_retrain(smoke_settings, wd, verdict, runner)
    assert first["triggered"] and not second["triggered"] and len(runner.calls) == 1
    [(name, kwargs)] = runner.calls
    assert name == "style" and kwargs["families_only"] == "stylizer,fast_stylizer"
    assert kwargs["source"] == "dvc://r?path=d"
    assert (
        kwargs["trigger_report"] == f"runs:/{verdict['mlflow_run_id']}/quality_report/verdict.json"
    )
    assert first["trigger_key"] == f"{STYLIZER}/v{bad}/quality" == second["trigger_key"]
    assert "content preservation -20%" in first["reason"] and "mean rating 1.00" in first["reason"]
    assert "not started again" in second["reason"]
    tags = tracking.client().get_run(first["trigger_run_id"]).data.tags
    assert tags["artflow.trigger"] == "quality" and tags["artflow.retrain_status"] == "finished"


def test_gate_reference_reads_the_gates_lookup(fresh_store, smoke_settings) -> None:
    version = _version(STYLIZER, GOOD, smoke_settings, passed=False)  # never gated
    got = gate_reference(STYLIZER, version, {"monet_distance"})
    assert got is not None and got.metrics == GOOD and "no version" in got.source
    assert gate_reference(STYLIZER, "99", set()) is None


def test_the_section_goes_at_the_top_of_the_drift_report(tmp_path: Path, smoke_settings) -> None:
    from artflow.monitor.quality_page import inject

    cfg = smoke_settings.drift.style_quality
    verdict = quality.judge(
        rows("2", 30, GOOD, 3), {(STYLIZER, "2"): ref()}, {STYLIZER: "2"}, cfg, 500
    )
    html = tmp_path / "report.html"
    html.write_text('<html><head></head><body class="x"><div id="evidently"></div></body></html>')
    inject(html, verdict)
    text = html.read_text()
    assert text.index("Style quality of served answers") < text.index('id="evidently"')
    assert text.index('<body class="x">') < text.index("Style quality")
    assert f"{STYLIZER} v2 (champion): ok" in text and "<td>3.00</td>" in text
