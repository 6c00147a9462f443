"""The web page, GET /status and POST /classify: a small Starlette app mounted into the
BentoML service.

The page (static/index.html + app.js + style.css) calls the service's own endpoints; it
loads nothing from a CDN. `app.state.service` is set by the service instance at start-up.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from artflow.serve import gallery
from artflow.serve.admin import presented_token

STATIC = Path(__file__).parent / "static"


async def page(_: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def to_page(_: Request) -> Response:
    return RedirectResponse("/ui")


async def status(request: Request) -> Response:
    """The health view for anyone; the full view (errors, registry, log path) with the admin
    token. A wrong token is refused like on the admin endpoints (and counted)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        return JSONResponse({"state": "starting", "ready": False}, status_code=503)
    body = service.public_status()
    if presented_token(request.headers):
        client = request.client.host if request.client else "unknown"
        refused = service.admin_refusal(request.headers, client)
        if refused is not None:
            code, message, headers = refused
            return JSONResponse({"error": message}, status_code=code, headers=headers)
        body = service.full_status()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def gatys_progress(request: Request) -> Response:
    """GET /gatys/progress?job=ID: step, steps and losses of a running (or recent) Gatys run."""
    job = _job(request)
    if job is None:
        return JSONResponse({"error": "unknown job"}, status_code=404)
    return JSONResponse(job.describe())


async def gatys_cancel(request: Request) -> Response:
    """POST /gatys/cancel?job=ID: stop that run at its next step (its /stylize answers 409)."""
    service = getattr(request.app.state, "service", None)
    job = service.gatys_jobs.cancel(request.query_params.get("job", "")) if service else None
    if job is None:
        return JSONResponse({"error": "unknown job"}, status_code=404)
    return JSONResponse({**job.describe(), "cancel_requested": True})


async def classify(request: Request) -> Response:
    """POST /classify: the service's classifier endpoint (Artflow.classify_request)."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        return JSONResponse({"error": "the service is starting"}, status_code=503)
    return await service.classify_request(request)


def _gallery_dir(request: Request) -> Path | None:
    service = getattr(request.app.state, "service", None)
    # beside the prediction log's root folder (which holds one sub-folder per pod), where
    # `artflow gallery` writes it
    return service.predictions.root.parent / gallery.FOLDER if service else None


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


def _job(request: Request):  # noqa: ANN202 - a Job or None
    service = getattr(request.app.state, "service", None)
    return service.gatys_jobs.get(request.query_params.get("job", "")) if service else None


web_app = Starlette(
    routes=[
        Route("/classify", classify, methods=["POST"]),
        Route("/gatys/progress", gatys_progress),
        Route("/gallery", gallery_list),
        Route("/gallery/{name}", gallery_file),
        Route("/gatys/cancel", gatys_cancel, methods=["POST"]),
        Route("/ui", page),
        Route("/ui/", to_page),
        Route("/status", status),
        Mount("/ui/assets", StaticFiles(directory=STATIC), name="assets"),
    ]
)
