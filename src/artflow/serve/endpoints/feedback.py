"""POST /feedback: was a classification right? Stored in the serving store (any pod's
answer), counted into the online accuracy of the variant that answered."""

import functools
from typing import Annotated, Any

import anyio
import bentoml
from pydantic import Field
from starlette.responses import JSONResponse

from artflow.serve.endpoints.parts import Parts
from artflow.serve.feedback import FeedbackError


class FeedbackTaking:
    def __init__(self, parts: Parts) -> None:
        self.book, self.online = parts.book, parts.online

    async def feedback(
        self, ctx: bentoml.Context, prediction_id: str, correct: bool | None, artist: str | None
    ) -> Any:
        try:
            record = await anyio.to_thread.run_sync(
                functools.partial(self.book.add, prediction_id, correct=correct, artist=artist)
            )
        except FeedbackError as exc:
            ctx.response.status_code = exc.status
            headers = {"Retry-After": "2"} if exc.status == 503 else None
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        self.online.add(record)
        return {"stored": True, "prediction_id": prediction_id, "correct": record["correct"]}


class FeedbackApi:
    """The /feedback declaration; its work in `FeedbackTaking` (the service's `feedback_taking`)."""

    feedback_taking: FeedbackTaking

    @bentoml.api(route="/feedback")
    async def feedback(
        self,
        ctx: bentoml.Context,
        prediction_id: Annotated[str, Field(min_length=1, max_length=64)],
        correct: bool | None = None,
        artist: Annotated[str, Field(max_length=200)] | None = None,
    ) -> dict[str, Any]:
        """Was classification `prediction_id` right? `correct`, or the true `artist`."""
        return await self.feedback_taking.feedback(ctx, prediction_id, correct, artist)
