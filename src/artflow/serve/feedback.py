"""User feedback on classifications: "was this right?", stored with what was answered.

Every /classify answer carries a `prediction_id`. The service remembers the last
`capacity` answers (id -> variant, model version, family, predicted artist) in memory; POST
/feedback with that id and either `correct` or the true artist appends one JSON line to the
feedback log beside the prediction log: the prediction's fields plus the outcome, never the
image. `artflow ab report` and /metrics read the outcomes from there.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

FILE_NAME = "feedback.jsonl"


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Answer:
    prediction_id: str
    variant: str  # champion | challenger | family:<name>
    model_version: str
    artist: str  # predicted top-1
    family: str | None = None


class FeedbackError(ValueError):
    """A feedback request that cannot be stored; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FeedbackStore:
    def __init__(self, path: str | Path, capacity: int = 50_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._given: set[str] = set()
        self._lock = threading.Lock()

    def remember(self, answer: Answer) -> None:
        with self._lock:
            self._answers[answer.prediction_id] = answer
            while len(self._answers) > self.capacity:  # bounded: oldest answers age out
                old, _ = self._answers.popitem(last=False)
                self._given.discard(old)

    def add(
        self, prediction_id: str, correct: bool | None = None, artist: str | None = None
    ) -> dict[str, Any]:
        """Store one outcome; raises FeedbackError (404 unknown id, 409 twice, 422 neither)."""
        if correct is None and not (artist or "").strip():
            raise FeedbackError(422, "feedback needs correct=true/false or the true artist")
        with self._lock:
            answer = self._answers.get(prediction_id)
            if answer is None:
                raise FeedbackError(
                    404, f"unknown prediction_id {prediction_id!r} (expired or never answered)"
                )
            if prediction_id in self._given:
                raise FeedbackError(409, f"feedback for {prediction_id} was already given")
            true_artist = (artist or "").strip() or None
            right = (true_artist == answer.artist) if true_artist else bool(correct)
            record = {
                "timestamp": time.time(),
                **asdict(answer),
                "correct": right,
                "true_artist": true_artist or (answer.artist if right else None),
            }
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._given.add(prediction_id)
        return record


def read(path: str | Path) -> list[dict[str, Any]]:
    """All feedback records (oldest first), skipping torn lines; [] when there is no file."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def ab_outcomes(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Outcomes of the current experiment: per A/B variant, the feedback on its latest version.

    Feedback on a version that has since been replaced belongs to an earlier experiment and
    is left out; family-chosen answers (not routed by the A/B split) are left out too.
    """
    rows = [r for r in records if r.get("variant") in ("champion", "challenger")]
    latest: dict[str, str] = {}
    for r in rows:
        latest[r["variant"]] = str(r.get("model_version"))
    out: dict[str, Any] = {"versions": latest}
    for variant in ("champion", "challenger"):
        out[variant] = [
            bool(r["correct"])
            for r in rows
            if r["variant"] == variant and str(r.get("model_version")) == latest.get(variant)
        ]
    return out


@dataclass(frozen=True)
class StudyMetrics:
    feedback: Any  # Counter: artflow_feedback_total{variant, outcome}
    accuracy: Any  # Gauge: artflow_online_accuracy{variant, model_version, bound}
    novelty: Any  # Counter: artflow_novelty_checks_total{variant, novel}


@cache
def study_metrics() -> StudyMetrics:
    """Built on first use, after BentoML set PROMETHEUS_MULTIPROC_DIR (artflow.serve.metrics)."""
    from prometheus_client import Counter, Gauge

    return StudyMetrics(
        feedback=Counter(
            "artflow_feedback",
            "User feedback on classifications, by variant and outcome (correct | wrong).",
            ["variant", "outcome"],
        ),
        accuracy=Gauge(
            "artflow_online_accuracy",
            "Online accuracy from feedback on the variant's current version: the estimate and "
            "the Wilson interval's lower and upper bound (abtest.confidence).",
            ["variant", "model_version", "bound"],
            multiprocess_mode="mostrecent",
        ),
        novelty=Counter(
            "artflow_novelty_checks",
            "Classifications checked for novelty, by variant and verdict (novel=true: the "
            "'does not look like a painting' warning); the warning rate is novel / all.",
            ["variant", "novel"],
        ),
    )


class OnlineAccuracy:
    """Per-variant accuracy of the current A/B experiment, kept in the Prometheus gauges.

    Restored from the feedback log at start-up, so a restart keeps the experiment's numbers.
    """

    def __init__(self, path: Path, confidence: float) -> None:
        self.confidence = confidence
        self._lock = threading.Lock()
        self._outcomes: dict[str, tuple[str, list[bool]]] = {}
        for record in read(path):
            self._add(record)
        self._publish_all()

    def _add(self, record: dict[str, Any]) -> str | None:
        variant, version = record.get("variant"), str(record.get("model_version"))
        if variant is None:
            return None
        current = self._outcomes.get(variant)
        if current is None or current[0] != version:  # a new version: a new experiment
            current = self._outcomes[variant] = (version, [])
        current[1].append(bool(record.get("correct")))
        return variant

    def add(self, record: dict[str, Any]) -> None:
        outcome = "correct" if record.get("correct") else "wrong"
        study_metrics().feedback.labels(variant=record.get("variant"), outcome=outcome).inc()
        with self._lock:
            variant = self._add(record)
            if variant:
                self._publish(variant)

    def _publish_all(self) -> None:
        for variant in self._outcomes:
            self._publish(variant)

    def _publish(self, variant: str) -> None:
        from artflow.abtest import accuracy

        version, outcomes = self._outcomes[variant]
        acc = accuracy(outcomes, self.confidence)
        gauge = study_metrics().accuracy
        for bound, value in (
            ("estimate", acc.accuracy),
            ("lower", acc.lower),
            ("upper", acc.upper),
        ):
            gauge.labels(variant=variant, model_version=version, bound=bound).set(value)
        gauge.labels(variant=variant, model_version=version, bound="n").set(acc.n)

    def snapshot(self) -> dict[str, Any]:
        from artflow.abtest import accuracy

        with self._lock:
            return {
                v: {"model_version": ver, **asdict(accuracy(o, self.confidence))}
                for v, (ver, o) in self._outcomes.items()
            }
