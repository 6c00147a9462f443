"""The web page, GET /status, the gallery and the Gatys job routes: a small Starlette app
mounted into the BentoML service (POST /classify, /stylize, ... are its BentoML APIs).

The page (static/index.html + app.js + style.css) calls the service's own endpoints; it
loads nothing from a CDN. The routes reach the service only through the `PageBackend` that
the service instance sets as `app.state.backend` at start-up.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from artflow import families
from artflow.serve import gallery
from artflow.serve.admin import presented_token
from artflow.serve.gatys_jobs import JobBoard, JobError
from artflow.serve.store import StoreUnavailable

CLIENT_COOKIE = "artflow_client"  # read by the service as the A/B client key

STATIC = Path(__file__).parent / "static"


FAMILY_OPTIONS = "<!-- artflow:families"


@dataclass(frozen=True)
class PageBackend:
    """What the page app's routes use of the service (artflow.serve.service wires it)."""

    public_status: Callable[[], dict[str, Any]]  # the health view for anyone
    full_status: Callable[[], dict[str, Any]]  # with the admin token
    # None when the request's admin token is accepted; else (status, message, headers)
    refusal: Callable[[Request], tuple[int, str, dict[str, str]] | None]
    gatys_jobs: JobBoard
    gallery: Path  # the folder `artflow gallery` writes


def _backend(request: Request) -> PageBackend | None:
    return getattr(request.app.state, "backend", None)


def page_html() -> str:
    """The page, its model choice filled with the classifier families of artflow.families."""
    text = (STATIC / "index.html").read_text()
    start = text.index(FAMILY_OPTIONS)
    end = text.index("-->", start) + len("-->")
    options = "\n            ".join(
        f'<option value="{html.escape(f.name)}">{html.escape(f.label or f.name)}</option>'
        for f in map(families.get, families.names("classifier"))
    )
    return text[:start] + options + text[end:]


async def page(request: Request) -> Response:
    """The page; a first visit gets a random client key in a cookie, so the A/B assignment
    of its requests is sticky whichever pod answers (artflow.serve.router)."""
    response = HTMLResponse(page_html())
    if CLIENT_COOKIE not in request.cookies:
        response.set_cookie(
            CLIENT_COOKIE, uuid.uuid4().hex, max_age=365 * 86400, httponly=True, samesite="lax"
        )
    return response


async def to_page(_: Request) -> Response:
    return RedirectResponse("/ui")


async def status(request: Request) -> Response:
    """The health view for anyone; the full view (errors, registry, log path) with the admin
    token. A wrong token is refused like on the admin endpoints (and counted)."""
    backend = _backend(request)
    if backend is None:
        return JSONResponse({"state": "starting", "ready": False}, status_code=503)
    body = backend.public_status()
    if presented_token(request.headers):
        refused = backend.refusal(request)
        if refused is not None:
            code, message, headers = refused
            return JSONResponse({"error": message}, status_code=code, headers=headers)
        body = backend.full_status()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def gatys_progress(request: Request) -> Response:
    """GET /gatys/progress?job=ID: step, steps and losses of a running (or recent) Gatys run,
    read from the serving store (any pod answers for any pod's run)."""
    return await _job_call(request, "describe", request.query_params.get("job", ""))


async def gatys_cancel(request: Request) -> Response:
    """POST /gatys/cancel?job=ID: stop that run at its next step (its /stylize answers 409)."""
    return await _job_call(request, "cancel", request.query_params.get("job", ""))


async def job_progress(request: Request) -> Response:
    """GET /gatys/jobs/{id}: the job's state, step, steps and losses."""
    return await _job_call(request, "describe", request.path_params["job"])


async def job_cancel(request: Request) -> Response:
    """POST /gatys/jobs/{id}/cancel: its worker (on whichever pod) stops at the next step."""
    return await _job_call(request, "cancel", request.path_params["job"])


async def job_result(request: Request) -> Response:
    """GET /gatys/jobs/{id}/result: the PNG once the job is done (409 before, 404 unknown)."""
    backend = _backend(request)
    if backend is None:
        return JSONResponse({"error": "the service is starting"}, status_code=503)
    try:
        png = await anyio.to_thread.run_sync(backend.gatys_jobs.result, request.path_params["job"])
    except JobError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except StoreUnavailable as exc:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "2"})
    return Response(png, media_type="image/png")


async def _job_call(request: Request, what: str, job_id: str) -> Response:
    backend = _backend(request)
    if backend is None:
        return JSONResponse({"error": "the service is starting"}, status_code=503)
    try:
        job = await anyio.to_thread.run_sync(getattr(backend.gatys_jobs, what), job_id)
    except StoreUnavailable as exc:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "2"})
    if job is None:
        return JSONResponse({"error": f"unknown job {job_id!r}"}, status_code=404)
    return JSONResponse(job)


def _gallery_dir(request: Request) -> Path | None:
    backend = _backend(request)
    return backend.gallery if backend else None


async def gallery_list(request: Request) -> Response:
    """GET /gallery: one style image per artist of the data [{artist, url}]."""
    folder = _gallery_dir(request)
    return JSONResponse(gallery.listing(folder) if folder else [])


async def gallery_file(request: Request) -> Response:
    folder = _gallery_dir(request)
    path = gallery.file_for(folder, request.path_params["name"]) if folder else None
    if path is None:
        return JSONResponse({"error": "no such gallery image"}, status_code=404)
    return FileResponse(path, media_type="image/jpeg")


web_app = Starlette(
    routes=[
        Route("/gatys/progress", gatys_progress),
        Route("/gallery", gallery_list),
        Route("/gallery/{name}", gallery_file),
        Route("/gatys/cancel", gatys_cancel, methods=["POST"]),
        Route("/gatys/jobs/{job}", job_progress),
        Route("/gatys/jobs/{job}/result", job_result),
        Route("/gatys/jobs/{job}/cancel", job_cancel, methods=["POST"]),
        Route("/ui", page),
        Route("/ui/", to_page),
        Route("/status", status),
        Mount("/ui/assets", StaticFiles(directory=STATIC), name="assets"),
    ]
)
