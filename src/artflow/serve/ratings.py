"""Stylization and Monet answers: their ids, remembered before the answer is sent, and the
users' ratings of them (1..5), stored in the serving store so a rating to any pod finds its
answer, and shown per model version in /metrics (`artflow_style_ratings`).

Every /stylize and /monet answer gets an id (the `X-Artflow-Answer-Id` header); POST /ratings
with that id and a rating stores it beside the answer. Errors in the project's envelope:
an unknown or malformed id 404, an out-of-range rating 422 (the signature's bounds), a
classification's id 409 pointing at /feedback, an answer rated twice 409, the store down 503.
"""

from __future__ import annotations

import logging
from typing import Any

from artflow.serve.feedback import PREDICTION_ID, UNSTORED, new_id, unstored_id
from artflow.serve.store import (
    Duplicate,
    NotStyleAnswer,
    ServingStore,
    StoreUnavailable,
    UnknownAnswer,
)
from artflow.serve.validation import ApiError

log = logging.getLogger(__name__)

ANSWER_HEADER = "X-Artflow-Answer-Id"


class StyleBook:
    """The style answers' ids and ratings in the serving store, shared by every pod."""

    def __init__(self, store: ServingStore) -> None:
        self.store = store

    def remember(self, endpoint: str, model_name: str, model_version: str, method: str) -> str:
        """Store a new answer before it is sent; its id, or an `unstored-` one when the store
        is down (the answer is still served, and its id says it cannot take a rating)."""
        answer_id = new_id()
        try:
            self.store.style_answer(answer_id, endpoint, model_name, model_version, method)
            return answer_id
        except (StoreUnavailable, Duplicate) as exc:
            log.warning("artflow: %s answer not stored (it takes no rating): %s", endpoint, exc)
            return unstored_id()

    def rate(self, answer_id: str, rating: int) -> dict[str, Any]:
        """Store one rating; ApiError in the envelope's shape when it cannot be."""
        if answer_id.startswith(UNSTORED):
            raise ApiError(
                409,
                f"answer {answer_id} was served while the serving store was down and cannot "
                "take a rating",
                "answer_id",
                "not_rateable",
            )
        if not PREDICTION_ID.match(answer_id):
            raise ApiError(
                404, f"unknown answer_id {answer_id!r} (malformed: 32 hex digits)", "answer_id"
            )
        try:
            row = self.store.style_rating(answer_id, rating)
        except NotStyleAnswer as exc:
            raise ApiError(
                409,
                str(exc),
                "answer_id",
                "classification_id",
                "rate a classification with POST /feedback {prediction_id, correct | artist}",
            ) from None
        except UnknownAnswer as exc:
            raise ApiError(404, str(exc), "answer_id") from None
        except ValueError as exc:  # out of range: the signature's bounds catch it first
            raise ApiError(422, str(exc), "rating", "invalid_parameter") from None
        except Duplicate:
            raise ApiError(409, f"answer {answer_id} was already rated", "answer_id") from None
        except StoreUnavailable as exc:
            raise ApiError(503, f"the rating cannot be stored now: {exc}") from None
        return {
            "stored": True,
            "answer_id": answer_id,
            "rating": rating,
            "endpoint": row["endpoint"],
            "model_version": row["model_version"],
        }


class StyleRatings:
    """`artflow_style_ratings{endpoint, model_version, stat}` from the store's counts over
    every pod; `refresh` is called by the service's sync loop."""

    def __init__(self, store: ServingStore) -> None:
        self.store = store
        self.last: list[dict[str, Any]] = []

    def refresh(self) -> None:
        from artflow.serve.quality import quality_metrics

        rows = self.store.style_rating_counts()
        gauge = quality_metrics()["ratings"]
        for row in rows:
            n = int(row["n"])
            labels = dict(endpoint=row["endpoint"], model_version=str(row["model_version"]))
            gauge.labels(**labels, stat="n").set(n)
            gauge.labels(**labels, stat="mean").set(float(row["total"] or 0) / max(n, 1))
        self.last = rows
