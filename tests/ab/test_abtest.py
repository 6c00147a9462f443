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


def test_feedback_book_records_outcomes_and_refuses_bad_ones(tmp_path) -> None:
    """Answers and feedback in the serving store: a second book on the same store (another
    pod) finds every answer and refuses a second feedback; bad ids get clear statuses."""
    from artflow.serve.feedback import (
        Answer,
        FeedbackBook,
        FeedbackError,
        ab_outcomes,
        new_id,
        unstored_id,
    )
    from artflow.serve.store import ServingStore

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    book = FeedbackBook(ServingStore(url, "pod-a", "single"))
    other = FeedbackBook(ServingStore(url, "pod-b", "single"))  # another pod, same store
    ids = [new_id() for _ in range(4)]
    for i, variant in enumerate(["champion", "challenger", "champion", "challenger"]):
        v = "7" if variant == "champion" else "8"
        assert book.remember(Answer(ids[i], variant, v, "Monet", model_name="m"))
    assert other.add(ids[0], correct=False)["correct"] is False
    assert other.add(ids[1], correct=True)["correct"] is True
    assert book.add(ids[2], artist="Rembrandt")["correct"] is False  # the true artist differs
    rec = other.add(ids[3], artist="Monet")
    assert rec["correct"] is True and rec["true_artist"] == "Monet"
    for bad_id, bad, status in (
        (ids[1], dict(correct=True), 409),  # twice, from the other pod
        (ids[1], dict(), 422),
        (new_id(), dict(correct=True), 404),
        ("nope", dict(correct=True), 404),
        (unstored_id(), dict(correct=True), 409),
    ):
        with pytest.raises(FeedbackError) as exc:
            book.add(bad_id, **bad)
        assert exc.value.status == status
    rows = book.store.feedback_rows()
    assert len(rows) == 4 and all("image" not in k for r in rows for k in r)
    assert {r["pod"] for r in rows} == {"pod-a", "pod-b"}
    out = ab_outcomes(rows)
    assert out["champion"] == [False, False] and out["challenger"] == [True, True]
    assert out["versions"] == {"challenger": "8", "champion": "7"}
    from artflow.serve.feedback import OnlineAccuracy

    online = OnlineAccuracy(other.store, 0.95)  # what every pod's /metrics shows
    online.refresh()
    snap = online.snapshot()
    assert snap["champion"]["n"] == 2 and snap["champion"]["correct"] == 0
    assert snap["challenger"]["accuracy"] == 1.0 and snap["challenger"]["model_version"] == "8"


def test_store_outage_gives_503_and_unstored_answers(tmp_path) -> None:
    from artflow.serve.feedback import Answer, FeedbackBook, FeedbackError, new_id
    from artflow.serve.store import ServingStore

    down = FeedbackBook(ServingStore("postgresql://nobody@127.0.0.1:1/none", "p", "single"))
    assert down.remember(Answer(new_id(), "champion", "1", "Monet")) is False
    with pytest.raises(FeedbackError) as exc:
        down.add(new_id(), correct=True)
    assert exc.value.status == 503 and "unavailable" in str(exc.value)


def _plant_feedback(url: str, rows: list[dict]) -> None:
    """Feedback rows straight into a migrated store, in order (one transaction)."""
    import sqlalchemy as sa

    from artflow.serve import store

    store.migrate(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            store.feedback.insert(),
            [
                {"created": float(i), "model_name": "m", "pod": "p", "true_artist": None, **r}
                for i, r in enumerate(rows)
            ],
        )
    engine.dispose()


def test_ab_report_cli_concludes_on_simulated_feedback(tmp_path, capsys) -> None:
    """The command reads the serving store with known true accuracies per variant, writes
    the Markdown + JSON report and an MLflow run, and reaches the right conclusion."""
    from artflow.cli import run
    from artflow.registry import tracking

    rng = random.Random(5)
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
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    _plant_feedback(url, rows[-300:] + rows[:-300])
    out = tmp_path / "report.md"
    code = run(["ab", "report", "--store", url, "--out", str(out), "--profile", "smoke"])
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
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert run(["ab", "report", "--store", missing, "--out", str(out)]) == 2
    assert "serving store" in capsys.readouterr().err


def test_ab_report_shows_ratings_per_stylizer_version_and_compares_two(tmp_path) -> None:
    """Two stylizer versions served in the window (v1 rated 4-5, v2 rated 1-2) and a Monet
    generator with one: the report's ratings table per version, and v2 rated lower."""
    from artflow.cli import run
    from artflow.serve import store

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    store.migrate(url)
    db = store.ServingStore(url, "pod", "single", auto_migrate=False)
    for i in range(40):
        version, rating = ("1", 4 + i % 2) if i < 20 else ("2", 1 + i % 2)
        answer = f"{i:032x}"
        db.style_answer(answer, "stylize", "artflow-style-transfer", version, "fast")
        if i % 4:  # not every answer is rated
            db.style_rating(answer, rating)
    db.style_answer("f" * 32, "monet", "artflow-monet-cyclegan", "7", "cyclegan")
    out = tmp_path / "report.md"
    args = ["ab", "report", "--store", url, "--out", str(out), "--no-track", "--days", "1"]
    assert run([*args, "--profile", "smoke"]) == 0
    text = out.read_text()
    assert "| v1 | 20 | 15 | 4.67 |" in text and "| v2 | 20 | 15 | 1.67 |" in text
    assert "v2 against v1: v2 rated lower" in text
    ratings = json.loads(out.with_suffix(".json").read_text())["ratings"]
    monet = next(r for r in ratings if r["model_name"] == "artflow-monet-cyclegan")
    assert monet["versions"] == [{"version": "7", "answers": 1, "n": 0, "mean": None}]
    assert monet["comparison"] is None
