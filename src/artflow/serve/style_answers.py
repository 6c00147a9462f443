"""What /stylize and /monet do with each answer before sending it: remember it in the serving
store under a new id (the `X-Artflow-Answer-Id` header, for POST /ratings from any pod), and
draw its quality sample (artflow.serve.quality), scored later by the worker process.
"""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np

from artflow.serve.feedback import UNSTORED
from artflow.serve.quality import QualityScorer, Sample
from artflow.serve.ratings import ANSWER_HEADER, StyleBook, StyleRatings
from artflow.serve.store import ServingStore


class StyleAnswers:
    """The style endpoints' answers: ids, ratings (`book`, `ratings`) and sampled scores."""

    def __init__(self, store: ServingStore, share: float, queue_size: int, weights: str) -> None:
        self.book = StyleBook(store)
        self.ratings = StyleRatings(store)
        self.scorer = QualityScorer(store, share, weights, queue_size)

    async def answered(
        self,
        endpoint: str,
        model: tuple[str, str, str],  # registered name, version, method
        result: np.ndarray,
        content: np.ndarray,
        style: np.ndarray | None = None,
        reference: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Remember the answer (a store write, in a worker thread) and offer its sample;
        the headers to send with it."""
        name, version, method = model
        answer_id = await anyio.to_thread.run_sync(
            self.book.remember, endpoint, name, version, method
        )
        if not answer_id.startswith(UNSTORED) and self.scorer.wanted():
            sample = Sample(answer_id, endpoint, name, version, method, result, content, style)
            sample.reference = reference
            self.scorer.offer(sample)
        return {ANSWER_HEADER: answer_id}

    def describe(self) -> dict[str, Any]:
        return self.scorer.describe()
