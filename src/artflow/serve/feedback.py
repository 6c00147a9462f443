"""User feedback on classifications: "was this right?", stored with what was answered.

Every /classify answer carries a `prediction_id`; the answer (variant, model version,
family, predicted artist) is stored in the serving store (artflow.serve.store) before the
answer is sent. POST /feedback to any pod with that id and either `correct` or the true
artist stores the outcome beside it, never the image; the store's primary key makes a
second feedback a 409 on every pod. `artflow ab report` and /metrics read the outcomes
from the store, so every pod and the report see the same experiment.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from artflow.serve.store import Duplicate, ServingStore, StoreUnavailable

UNSTORED = "unstored-"  # prefix of the id of an answer the store did not take
PREDICTION_ID = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return uuid.uuid4().hex


def unstored_id() -> str:
    """The id of an answer served while the store was down: it says it takes no feedback."""
    return UNSTORED + uuid.uuid4().hex


@dataclass(frozen=True)
class Answer:
    prediction_id: str
    variant: str  # champion | challenger | family:<name>
    model_version: str
    artist: str  # predicted top-1
    family: str | None = None
    model_name: str = ""


class FeedbackError(ValueError):
    """A feedback request that cannot be stored; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FeedbackBook:
    """Answers and their feedback in the serving store, shared by every pod."""

    def __init__(self, store: ServingStore) -> None:
        self.store = store

    def remember(self, answer: Answer) -> bool:
        """Store the answer before it is sent; False when the store is down (the answer is
        still served, with an id that says it cannot take feedback)."""
        try:
            self.store.add_answer(
                dict(
                    id=answer.prediction_id,
                    variant=answer.variant,
                    model_name=answer.model_name,
                    model_version=answer.model_version,
                    family=answer.family,
                    artist=answer.artist,
                )
            )
            return True
        except (StoreUnavailable, Duplicate):
            return False

    def add(
        self, prediction_id: str, correct: bool | None = None, artist: str | None = None
    ) -> dict[str, Any]:
        """Store one outcome; FeedbackError 404 unknown or malformed id, 409 given twice,
        never stored or a stylization's id, 422 neither field, 503 store down."""
        if correct is None and not (artist or "").strip():
            raise FeedbackError(422, "feedback needs correct=true/false or the true artist")
        if prediction_id.startswith(UNSTORED):
            raise FeedbackError(
                409,
                f"prediction {prediction_id} was answered while the serving store was down "
                "and cannot take feedback",
            )
        if not PREDICTION_ID.match(prediction_id):
            raise FeedbackError(
                404, f"unknown prediction_id {prediction_id!r} (malformed: 32 hex digits)"
            )
        try:
            answer = self.store.answer(prediction_id)
            if answer is None and self.store.is_style_answer(prediction_id):
                raise FeedbackError(
                    409,
                    f"{prediction_id} is a stylization's answer_id: rate it with POST /ratings",
                )
            if answer is None:
                raise FeedbackError(
                    404, f"unknown prediction_id {prediction_id!r} (expired or never answered)"
                )
            true_artist = (artist or "").strip() or None
            right = (true_artist == answer["artist"]) if true_artist else bool(correct)
            record = {
                "prediction_id": prediction_id,
                "variant": answer["variant"],
                "model_name": answer["model_name"],
                "model_version": answer["model_version"],
                "family": answer["family"],
                "artist": answer["artist"],
                "correct": right,
                "true_artist": true_artist or (answer["artist"] if right else None),
            }
            self.store.add_feedback(record)
        except Duplicate:
            raise FeedbackError(409, f"feedback for {prediction_id} was already given") from None
        except StoreUnavailable as exc:
            raise FeedbackError(503, f"feedback cannot be stored now: {exc}") from None
        return {"timestamp": time.time(), **record}


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
            "Online accuracy from feedback on the variant's current version (all pods, from "
            "the serving store): the estimate and the Wilson interval's lower and upper bound "
            "(abtest.confidence).",
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
    """Per-variant accuracy of the current A/B experiment over every pod's feedback, kept in
    the Prometheus gauges; `refresh` re-reads the store's counts (the service's sync loop).

    The experiment of a variant is its version with the newest feedback: feedback on a
    version since replaced is left out, as in `ab_outcomes` and `artflow ab report`."""

    def __init__(self, store: ServingStore, confidence: float) -> None:
        self.store = store
        self.confidence = confidence
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[str, int, int]] = {}  # variant -> (version, n, k)

    def refresh(self) -> None:
        """Re-read the experiment's counts from the store (StoreUnavailable passes up)."""
        newest: dict[str, dict[str, Any]] = {}
        for row in self.store.feedback_counts(("champion", "challenger")):
            seen = newest.get(row["variant"])
            if seen is None or row["last"] > seen["last"]:
                newest[row["variant"]] = row
        with self._lock:
            self._counts = {
                v: (str(r["model_version"]), int(r["n"]), int(r["k"] or 0))
                for v, r in newest.items()
            }
            for variant in self._counts:
                self._publish(variant)

    def add(self, record: dict[str, Any]) -> None:
        outcome = "correct" if record.get("correct") else "wrong"
        study_metrics().feedback.labels(variant=record.get("variant"), outcome=outcome).inc()
        variant, version = record.get("variant"), str(record.get("model_version"))
        if variant not in ("champion", "challenger"):
            return
        with self._lock:  # seen at once here; every pod's next refresh counts it too
            current = self._counts.get(variant)
            n, k = (0, 0) if current is None or current[0] != version else current[1:]
            self._counts[variant] = (version, n + 1, k + bool(record.get("correct")))
            self._publish(variant)

    def _accuracy(self, variant: str) -> Any:
        from artflow.abtest import counted

        version, n, k = self._counts[variant]
        return version, counted(k, n, self.confidence)

    def _publish(self, variant: str) -> None:
        version, acc = self._accuracy(variant)
        gauge = study_metrics().accuracy
        for bound, value in (
            ("estimate", acc.accuracy),
            ("lower", acc.lower),
            ("upper", acc.upper),
        ):
            gauge.labels(variant=variant, model_version=version, bound=bound).set(value)
        gauge.labels(variant=variant, model_version=version, bound="n").set(acc.n)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out = {}
            for variant in self._counts:
                version, acc = self._accuracy(variant)
                out[variant] = {"model_version": version, **asdict(acc)}
            return out
