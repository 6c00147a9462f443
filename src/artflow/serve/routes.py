"""The service's POST endpoints in one table: what the request guard checks before BentoML
parses a body, and the `endpoint` label their requests and refusals are counted under.

A new upload or JSON endpoint is one line here (beside its `@bentoml.api` method); the guard's
upload fields, raw-body fields and JSON paths, and the refusal counter's label, all derive
from it, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    path: str  # exact, or a prefix for `prefix=True` (every /admin/... endpoint)
    label: str  # the `endpoint` label of artflow_requests_total, artflow_rejected_inputs_total
    uploads: tuple[str, ...] = ()  # file fields, checked as real file parts before parsing
    raw: str | None = None  # a file field that may also be sent as the body itself
    json: bool = False  # a JSON body: size and depth checked before any parser
    prefix: bool = False


ROUTES = (
    Route("/classify", "classify", uploads=("image",), raw="image"),
    Route("/stylize", "stylize", uploads=("content", "style")),
    Route("/gatys/jobs", "gatys_jobs", uploads=("content", "style")),
    Route("/monet", "monet", uploads=("photo",)),
    Route("/feedback", "feedback", json=True),
    Route("/ratings", "ratings", json=True),
    Route("/admin", "admin", json=True, prefix=True),
)


def upload_fields() -> dict[str, tuple[str, ...]]:
    return {r.path: r.uploads for r in ROUTES if r.uploads}


def raw_fields() -> dict[str, str]:
    return {r.path: r.raw for r in ROUTES if r.raw}


def json_paths() -> list[str]:
    return [r.path for r in ROUTES if r.json]


def label(path: str) -> str:
    """The metric label of a request path ("other" for the page app's routes and the rest)."""
    path = path.rstrip("/") or "/"
    for route in ROUTES:
        if path == route.path or (route.prefix and path.startswith(route.path + "/")):
            return route.label
    return "other"
