"""POST /ratings: how good was a stylization or a Monet painting (1..5)? Stored beside its
answer in the serving store (any pod's), one rating per answer (artflow.serve.ratings)."""

import time
from typing import Annotated, Any

import anyio
import bentoml
from pydantic import Field

from artflow.serve.endpoints.parts import Parts
from artflow.serve.store import RATINGS
from artflow.serve.validation import ApiError

LOW, HIGH = RATINGS


class RatingTaking:
    def __init__(self, parts: Parts) -> None:
        self.book, self.answers = parts.style_answers.book, parts.answers

    async def rate(self, ctx: bentoml.Context, answer_id: str, rating: int) -> Any:
        started = time.perf_counter()
        try:
            body = await anyio.to_thread.run_sync(self.book.rate, answer_id, rating)
        except ApiError as exc:
            return self.answers.fail(ctx, "ratings", "none", exc, started)
        self.answers.count("ratings", "none", 200, started)
        return body


class RatingsApi:
    """The /ratings declaration; its work in `RatingTaking` (the service's `rating_taking`)."""

    rating_taking: RatingTaking

    @bentoml.api(route="/ratings")
    async def ratings(
        self,
        ctx: bentoml.Context,
        answer_id: Annotated[str, Field(min_length=1, max_length=64)],
        rating: Annotated[int, Field(ge=LOW, le=HIGH)],
    ) -> dict[str, Any]:
        """Rate the stylization or Monet painting `answer_id` (its X-Artflow-Answer-Id) 1..5."""
        return await self.rating_taking.rate(ctx, answer_id, rating)
