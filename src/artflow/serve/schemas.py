"""The shapes of the service's JSON answers, for the OpenAPI document (`/docs.json`).

The endpoints build their answers as dicts (the hot path of /classify serialises once, with
`JSONResponse`); these models are what the schema declares for them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """An answer object that may grow fields (clients must ignore what they do not know)."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(_Open):
    """Every refusal: a message for people, a code for programs, the input at fault."""

    error: str
    # Not required: BentoML's own traffic limits (429 over traffic.max_concurrency, 504 past
    # traffic.timeout) answer {"error"} before the service's middleware sees the request.
    code: str | None = Field(
        None,
        description="machine-readable (bad_request, invalid_parameter, invalid_input, "
        "unauthorized, forbidden, not_found, conflict, too_large, unsupported_media_type, "
        "too_many_requests, unavailable, timeout, use_job, ...); present in every answer of "
        "the service itself",
    )
    field: str | None = None
    hint: str | None = None


class Ranked(BaseModel):
    artist: str
    probability: float


class ModelRef(_Open):
    name: str
    version: str | None
    alias: str | None = None
    role: str | None = None


class NoveltyVerdict(BaseModel):
    score: float
    threshold: float
    novel: bool


class Bounds(BaseModel):
    x: int
    y: int
    width: int
    height: int


class Explanation(_Open):
    """Where the classifier looked (Grad-CAM of the predicted artist)."""

    method: str
    artist: str
    layer: str
    overlay_png: str = Field(description="data:image/png;base64,... RGBA, laid over the upload")
    overlay_size: list[int] = Field(description="[width, height] of the overlay PNG")
    bounds: Bounds = Field(description="where the overlay goes on the upload, in its pixels")
    grid: list[int] = Field(description="[rows, columns] of the feature map")
    heatmap: list[list[float]] = Field(description="the heat per grid cell, 0..1")


class Neighbour(BaseModel):
    """One of the nearest training paintings in the classifier's embedding space."""

    artist: str
    distance: float
    thumbnail: str = Field(description="data:image/jpeg;base64,...")


class FeedbackState(BaseModel):
    accepted: bool
    reason: str


class ClassifyAnswer(_Open):
    top: list[Ranked]
    artist: str
    confidence: float
    variant: str
    model: ModelRef
    latency_ms: float
    prediction_id: str
    family: str | None = None
    novelty: NoveltyVerdict | None = None
    warning: str | None = None
    feedback: FeedbackState | None = None
    explanation: Explanation | None = None
    neighbours: list[Neighbour] | None = None


class JobSubmitted(_Open):
    job: str
    state: str
    steps: int
    size: int
    progress: str
    result: str
    cancel: str


def component_schemas() -> dict[str, Any]:
    """JSON schemas (refs under #/components/schemas) of the answers declared here."""
    from pydantic.json_schema import models_json_schema

    models = [(m, "serialization") for m in (ErrorBody, ClassifyAnswer, JobSubmitted)]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    return top.get("$defs", {})
