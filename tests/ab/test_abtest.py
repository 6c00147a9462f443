"""The A/B test's statistics by simulation, the feedback log and `artflow ab report`."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from artflow import abtest
from artflow.config import AbTestCfg

CFG = AbTestCfg(min_samples=400, alpha=0.05, confidence=0.95)
EXPERIMENTS = 20_000


def test_false_positive_rate_is_the_configured_alpha() -> None:
    """Equal true accuracies: the test finds a difference in ~alpha of the experiments and
    promotes the challenger in ~alpha/2 (only one direction promotes)."""
    sim = abtest.simulate(0.7, 0.7, CFG, EXPERIMENTS, seed=1)
    # Binomial sd of a rate near 0.05 over 20k experiments is 0.0015: allow ~4 sd.
    assert abs(sim["significant"] - CFG.alpha) < 0.008
    assert abs(sim["promote"] - CFG.alpha / 2) < 0.006


def test_a_better_challenger_is_promoted_and_a_worse_one_kept() -> None:
    from scipy.stats import norm

    better = abtest.simulate(0.70, 0.80, CFG, 4_000, seed=2)
    worse = abtest.simulate(0.80, 0.70, CFG, 4_000, seed=3)
    # The textbook power of n=400 per arm for +10 points: Phi(d / se - z_{alpha/2}) ~ 0.9.
    se = np.sqrt((0.7 * 0.3 + 0.8 * 0.2) / CFG.min_samples)
    power = norm.cdf(0.1 / se - norm.ppf(1 - CFG.alpha / 2))
    assert better["promote"] == pytest.approx(power, abs=0.03) and power > 0.85
    assert worse["promote"] < 0.001 and worse["keep"] > 0.999


@pytest.mark.parametrize(
    ("p_champ", "p_chall", "n", "expected"),
    [
        (0.70, 0.85, 400, abtest.PROMOTE),
        (0.85, 0.70, 400, abtest.KEEP),
        (0.75, 0.75, 400, abtest.KEEP),
        (0.70, 0.85, 399, abtest.NOT_ENOUGH),
    ],
)
def test_verdict_on_simulated_feedback(p_champ, p_chall, n, expected) -> None:
    rng = np.random.default_rng(7)
    champion = list(rng.random(n + 50) < p_champ)
    challenger = list(rng.random(n) < p_chall)
    v = abtest.verdict(champion, challenger, CFG)
    assert v.decision == expected, v.reason
    assert v.champion.n == n + 50 and v.challenger.n == n
    assert v.champion.lower < v.champion.accuracy < v.champion.upper
    assert "Wilson" in abtest.markdown(v) and expected in abtest.markdown(v)


def test_wilson_interval_matches_the_closed_form() -> None:
    k, n, z = 30, 40, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = abtest.wilson(k, n, 0.95)
    assert low == pytest.approx(centre - half, abs=1e-9) and high == pytest.approx(
        centre + half, abs=1e-9
    )
    assert abtest.wilson(0, 0, 0.95) == (None, None)


def test_feedback_store_records_outcomes_and_refuses_bad_ones(tmp_path) -> None:
    from artflow.serve.feedback import Answer, FeedbackError, FeedbackStore, ab_outcomes, read

    store = FeedbackStore(tmp_path / "feedback.jsonl", capacity=3)
    for i, variant in enumerate(["champion", "challenger", "champion", "challenger"]):
        store.remember(Answer(f"id{i}", variant, "7" if variant == "champion" else "8", "Monet"))
    with pytest.raises(FeedbackError) as exc:
        store.add("id0", correct=True)  # aged out of the bounded memory
    assert exc.value.status == 404
    assert store.add("id1", correct=True)["correct"] is True
    assert store.add("id2", artist="Rembrandt")["correct"] is False  # the true artist differs
    rec = store.add("id3", artist="Monet")
    assert rec["correct"] is True and rec["true_artist"] == "Monet"
    for bad, status in ((dict(correct=True), 409), (dict(), 422)):
        with pytest.raises(FeedbackError) as exc:
            store.add("id1", **bad)
        assert exc.value.status == status
    lines = read(store.path)
    assert len(lines) == 3 and all("image" not in r for r in lines)
    out = ab_outcomes(lines)
    assert out["champion"] == [False] and out["challenger"] == [True, True]
    assert out["versions"] == {"challenger": "8", "champion": "7"}


def test_ab_report_cli_concludes_on_simulated_feedback(tmp_path, capsys) -> None:
    """The command reads a feedback log with known true accuracies per variant, writes the
    Markdown + JSON report and an MLflow run, and reaches the right conclusion."""
    from artflow.cli import run
    from artflow.registry import tracking

    rng = random.Random(5)
    path = tmp_path / "feedback.jsonl"
    rows = []
    for i in range(900):
        variant = "champion" if i % 2 else "challenger"
        right = rng.random() < (0.6 if variant == "champion" else 0.8)
        rows.append(
            {
                "prediction_id": f"p{i}",
                "variant": variant,
                "correct": right,
                "model_version": "3" if variant == "champion" else "4",
                "artist": "Monet",
            }
        )
    # An earlier experiment's challenger (v2) must not count.
    rows += [
        {
            "prediction_id": f"old{i}",
            "variant": "challenger",
            "correct": False,
            "model_version": "2",
            "artist": "Monet",
        }
        for i in range(300)
    ]
    rng.shuffle(rows[-300:])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[-300:] + rows[:-300]))
    out = tmp_path / "report.md"
    code = run(["ab", "report", "--feedback", str(path), "--out", str(out), "--profile", "smoke"])
    assert code == 0
    body = json.loads(out.with_suffix(".json").read_text())
    assert body["decision"] == abtest.PROMOTE and body["versions"] == {
        "champion": "3",
        "challenger": "4",
    }
    assert body["challenger"]["n"] == 450 and 0.7 < body["challenger"]["accuracy"] < 0.9
    assert "promote challenger" in out.read_text()
    runs = tracking.client().search_runs(
        [tracking.client().get_experiment_by_name("artflow-ab").experiment_id]
    )
    assert runs[0].data.tags["artflow.ab_decision"] == abtest.PROMOTE
    assert runs[0].data.metrics["challenger_n"] == 450
    assert run(["ab", "report", "--feedback", str(tmp_path / "none.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err
