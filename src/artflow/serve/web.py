"""The web page and GET /status, as a small Starlette app mounted into the BentoML service.

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


web_app = Starlette(
    routes=[
        Route("/ui", page),
        Route("/ui/", to_page),
        Route("/status", status),
        Mount("/ui/assets", StaticFiles(directory=STATIC), name="assets"),
    ]
)
